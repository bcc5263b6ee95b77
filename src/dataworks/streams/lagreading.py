"""Reads a consumer group's lag from Redis (edge layer): the facts, then core's answer.

Two `XINFO` calls, and an `XRANGE` of at most `limit` entries only when Redis's own lag is
null and the cheap answers do not apply (core/streamingjobs/lag.py says which).
"""

from __future__ import annotations

from typing import Any

from dataworks.core.streamingjobs import lag as lags

PROBE_LIMIT = 1000


def read(r: Any, stream: str, group: str, *, limit: int = PROBE_LIMIT) -> lags.Lag:
    """The lag of `group` on `stream`, through a redis-py client `r`."""
    facts = stream_facts(r.xinfo_stream(stream))
    group_facts = group_facts_of(r.xinfo_groups(stream), stream, group)
    if not lags.needs_probe(facts, group_facts):
        return lags.lag(facts, group_facts)
    found = r.xrange(stream, min=f"({group_facts.last_delivered}", max="+", count=limit)
    return lags.lag(facts, group_facts, lags.Probe(len(found), limit))


def stream_facts(info: dict[str, Any]) -> lags.Stream:
    """What redis-py's `xinfo_stream` returned, as core's facts."""
    first = info.get("first-entry")
    return lags.Stream(
        length=int(info["length"]),
        last_generated=lags.StreamId.parse(info["last-generated-id"]),
        entries_added=int(info["entries-added"]),
        first_entry=lags.StreamId.parse(first[0]) if first else None,
    )


def group_facts_of(groups: list[dict[str, Any]], stream: str, group: str) -> lags.Group:
    """The facts of `group` among what redis-py's `xinfo_groups` returned; LookupError if absent."""
    mine = [g for g in groups if _text(g["name"]) == group]
    if not mine:
        raise LookupError(f"stream {stream} has no consumer group {group}")
    g = mine[0]
    return lags.Group(
        last_delivered=lags.StreamId.parse(g["last-delivered-id"]),
        entries_read=None if g.get("entries-read") is None else int(g["entries-read"]),
        lag=None if g.get("lag") is None else int(g["lag"]),
        pending=int(g["pending"]),
    )


def _text(v: str | bytes) -> str:
    return v.decode() if isinstance(v, bytes) else v
