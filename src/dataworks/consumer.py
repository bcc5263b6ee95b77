"""The consumer library of the `container` processing (edge layer): a user's program that
processes a StreamingJob's messages its own way.

```python
from dataworks.consumer import run

def handle(messages: list[dict]) -> None:
    for m in messages:
        ...  # enrich, store, call a service; raise to have the batch delivered again

if __name__ == "__main__":
    raise SystemExit(run(handle))
```

Its image needs Python and `dataworks[streams]`. The operator runs the program with the
consumer's arguments in the environment (`DATAWORKS_CONSUMER`, JSON): the broker, the stream or
topic, the group, the consumer's name (its pod's), the batch size of the active strategy.
`run` is `dataworks consume` with `handle` as the processing: it reads a batch, counts and
checks it as the `count` processing does (duplicates by `message_id` dropped before `handle`
sees them), calls `handle` with the batch's decoded messages, and acknowledges the batch only
after `handle` returns. Everything else is the same as for the other processings: claims of a
dead consumer's entries, the per-second figures the autoscaler reads, the liveness file,
SIGTERM handling. If `handle` raises, the consumer stops with the error, nothing of the batch
acknowledged, and the kubelet restarts it: the batch comes again (at least once).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

from dataworks.api.streamingjob import CONSUMER_ENV as ENV

Handle = Callable[[list[dict[str, Any]]], None]


class _Handler:
    def __init__(self, handle: Handle) -> None:
        self.handle = handle

    def write(self, messages: list[dict[str, Any]]) -> None:
        self.handle(messages)

    def close(self) -> None:
        return None


def run(handle: Handle, argv: list[str] | None = None) -> int:
    """Consume as the StreamingJob says (or as `argv`, `dataworks consume`'s arguments, say),
    handing each batch to `handle`; the exit code."""
    if argv is None:
        raw = os.environ.get(ENV)
        if not raw:
            print(f"error: {ENV} is not set: the StreamingJob's operator sets it in the pod", file=sys.stderr)
            return 2
        argv = list(json.loads(raw))
    from dataworks.cli.consume import run_with

    return run_with(argv, _Handler(handle))
