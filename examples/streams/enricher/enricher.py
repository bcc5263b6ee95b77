"""An example program for a StreamingJob's `container` processing, on the consumer library.

It adds each trade's notional (price x volume) and publishes the trades above a threshold to
another stream. Its image holds Python, `dataworks[streams]` and this file; the StreamingJob
(container-streamingjob.yaml) runs it as `python -m enricher --out REDIS_URL`. The library
gives it each batch before acknowledging it: what `handle` published is never lost, and a
batch handed over again after a crash is published again (at least once: readers dedupe on
`message_id`).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import redis

from dataworks.consumer import run


def main() -> int:
    p = argparse.ArgumentParser(prog="enricher")
    p.add_argument("--out", required=True, help="redis://HOST:PORT/DB (the password from REDIS_PASSWORD)")
    p.add_argument("--stream", default="big-trades", help="where the large trades go")
    p.add_argument("--above", type=float, default=500_000.0, help="the notional a trade must reach")
    args = p.parse_args()
    out = redis.Redis.from_url(args.out, password=os.environ.get("REDIS_PASSWORD") or None)

    def handle(messages: list[dict[str, Any]]) -> None:
        pipe = out.pipeline(transaction=False)
        for m in messages:
            if m.get("type") == "trade" and m["price"] * m["volume"] >= args.above:
                enriched = {**m, "notional": round(m["price"] * m["volume"], 2)}
                pipe.xadd(args.stream, {"data": json.dumps(enriched)})
        pipe.execute()  # before the batch is acknowledged: raises, and the batch comes again

    return run(handle)


if __name__ == "__main__":
    raise SystemExit(main())
