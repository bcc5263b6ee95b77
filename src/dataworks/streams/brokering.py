"""What the operator reads from, and does to, a StreamingJob's Redis stream (edge layer).

One reading, at most once per second per StreamingJob, is one round trip of four commands
(XINFO STREAM, XINFO GROUPS, XINFO CONSUMERS, and HGETALL of the consumers' reports), plus
an XRANGE of at most `PROBE_LIMIT` entries only when Redis's own lag is null
(core/streamingjobs/lag.py): bounded work whatever the stream's size.

Writes, only for consumers whose pods are gone:
- `reclaim`: their pending entries (up to 20,000 a reading) are marked idle for ~24 days
  (XCLAIM to the same consumer with IDLE and JUSTID: no data moves, no delivery count
  changes), so the next XAUTOCLAIM of any live consumer (every 0.5 s,
  manifests/streamingjobs.py) takes them and processes them;
- `forget`: a gone consumer with nothing pending leaves the group (XGROUP DELCONSUMER), and
  its report the hash.

The consumers publish their reports into the hash `stats_key(stream, group)` (see
`dataworks consume --publish-stats`); the operator only reads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dataworks.core.streamingjobs import lag as lags
from dataworks.core.streamingjobs import measuring
from dataworks.streams.lagreading import PROBE_LIMIT, group_facts_of, stream_facts

LONG_IDLE_MS = 2**31 - 1  # what reclaim marks a gone consumer's entries as having waited
RECLAIM_BATCH = 1000
# At most 20,000 entries a reading: a consumer killed at 40K messages/s, whose last second is
# unacknowledged, is handed over in two readings, not forty (one batch a reading was).
RECLAIM_ROUNDS = 20


def stats_key(stream: str, group: str) -> str:
    return f"dataworks:stats:{stream}:{group}"


@dataclass(frozen=True)
class Reading:
    lag: lags.Lag
    pending: int
    added: int  # the stream's entries-added counter
    consumers: dict[str, int]  # name -> pending
    reports: list[measuring.Report]
    partitions: int | None = None  # Kafka's; a Redis stream has none


class RedisBroker:
    """A connection to one Redis, used by every StreamingJob that reads it with one password."""

    def __init__(self, address: str, password: str | None) -> None:
        import redis.asyncio as aioredis

        self.r: Any = aioredis.Redis.from_url(
            address, password=password, socket_timeout=2, socket_connect_timeout=2
        )
        self.reclaim_from: dict[tuple[str, str, str], str] = {}  # (stream, group, consumer) -> id

    async def read(self, stream: str, group: str, *, start_from: str) -> Reading:
        import redis

        pipe = self.r.pipeline(transaction=False)
        pipe.xinfo_stream(stream)
        pipe.xinfo_groups(stream)
        pipe.xinfo_consumers(stream, group)
        pipe.hgetall(stats_key(stream, group))
        info, groups, consumers, reports = await pipe.execute(raise_on_error=False)
        if isinstance(info, redis.ResponseError):  # no stream yet: nothing arrived
            return Reading(lags.Lag(0, True, "caught-up"), 0, 0, {}, [])
        for reply in (info, groups):
            if isinstance(reply, Exception):
                raise reply
        facts = stream_facts(info)
        try:
            g = group_facts_of(groups, stream, group)
        except LookupError:  # the consumers have not created the group yet
            entries = facts.length if start_from == "earliest" else 0
            return Reading(lags.Lag(entries, True, "whole-stream"), 0, facts.entries_added, {}, [])
        if lags.needs_probe(facts, g):
            found = await self.r.xrange(stream, min=f"({g.last_delivered}", max="+", count=PROBE_LIMIT)
            lag = lags.lag(facts, g, lags.Probe(len(found), PROBE_LIMIT))
        else:
            lag = lags.lag(facts, g)
        members = (
            {}
            if isinstance(consumers, Exception)
            else {_text(c["name"]): int(c["pending"]) for c in consumers}
        )
        return Reading(lag, g.pending, facts.entries_added, members, _reports(reports))

    async def reclaim(self, stream: str, group: str, consumer: str) -> int:
        """Mark up to RECLAIM_ROUNDS x RECLAIM_BATCH of `consumer`'s pending entries claimable
        at once (the next reading marks the next ones); how many were newly marked."""
        key = (stream, group, consumer)
        marked, start = 0, self.reclaim_from.pop(key, "-")  # where the last reading stopped
        for _ in range(RECLAIM_ROUNDS):
            rows = await self.r.xpending_range(
                stream, group, min=start, max="+", count=RECLAIM_BATCH, consumername=consumer
            )
            # Entries marked before (and not yet claimed) are left alone: each is counted once.
            ids = [r["message_id"] for r in rows if r["time_since_delivered"] < LONG_IDLE_MS // 2]
            if ids:
                await self.r.xclaim(stream, group, consumer, 0, ids, idle=LONG_IDLE_MS, justid=True)
                marked += len(ids)
            if len(rows) < RECLAIM_BATCH:
                return marked  # the end of its pending list: the next reading starts over
            start = "(" + _text(rows[-1]["message_id"])
        self.reclaim_from[key] = start
        return marked

    async def forget(self, stream: str, group: str, consumer: str) -> None:
        await self.r.xgroup_delconsumer(stream, group, consumer)
        await self.r.hdel(stats_key(stream, group), consumer)

    async def close(self) -> None:
        await self.r.aclose()


def _reports(raw: Any) -> list[measuring.Report]:
    if not isinstance(raw, dict):
        return []
    out = []
    for name, value in raw.items():
        try:
            report = report_of(_text(name), json.loads(value))
        except ValueError:
            continue
        if report is not None:
            out.append(report)
    return out


def report_of(consumer: str, row: Any) -> measuring.Report | None:
    """One consumer's per-second row (`dataworks consume`'s Stats), or None if this version
    cannot read it: such a row is not a figure."""
    try:
        return measuring.Report(
            consumer=consumer,
            at=float(row["t"]),
            processed=int(row["processed"]),
            busy=float(row["busy"]),
            seconds=float(row.get("seconds", 1.0)),
            p50_ms=row.get("p50"),
            p99_ms=row.get("p99"),
            errors=int(row.get("errors") or 0),
            throttled=row.get("throttled"),
            cpu_user=row.get("cpuUser"),
            cpu_system=row.get("cpuSystem"),
            rss=row.get("rss"),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _text(v: str | bytes) -> str:
    return v.decode() if isinstance(v, bytes) else v
