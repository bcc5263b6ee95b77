"""A completed step's outputs, from its pods' termination messages (pure layer, Pipeline policy).

A step reports what it produced in its container's termination message
(`/dev/termination-log`, at most 4 KiB, kept by the kubelet in the pod's
status). Built-in steps write a JSON object: `rows`, `rowsIn`, `bytes`,
`files` and `durationSeconds`, and the values a step declares (a
quality-check's `result`, `passed` or `warned`, and its `warnings`). A
container step writes its own JSON object; text that is not one is kept as
`{"message": text}`.

A fan-out's workers each report: their numbers under `rows`, `rowsIn`,
`bytes` and `files` are summed, `durationSeconds` is the longest, and any
other value is worker 0's (the status stays small whatever the worker count).
"""

from __future__ import annotations

import json
from typing import Any

SUMMED = ("rows", "rowsIn", "bytes", "files")


def parse(message: str) -> dict[str, Any]:
    """One container's outputs."""
    text = message.strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"message": text}
    return value if isinstance(value, dict) else {"message": text}


def combine(messages: tuple[str, ...]) -> dict[str, Any]:
    """The step's outputs from its succeeded pods' messages, in completion-index order."""
    each = [parse(m) for m in messages]
    if len(each) <= 1:
        return each[0] if each else {}
    out = dict(each[0])
    for key in SUMMED:
        values = [o.get(key) for o in each]
        if all(_number(v) for v in values):
            out[key] = sum(values)
    durations = [o["durationSeconds"] for o in each if _number(o.get("durationSeconds"))]
    if durations:
        out["durationSeconds"] = max(durations)
    return out


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
