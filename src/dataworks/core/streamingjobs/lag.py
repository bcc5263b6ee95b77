"""How many entries of a Redis stream a consumer group has not been delivered yet (pure layer).

Redis's own answer, `XINFO GROUPS` lag, is null whenever it cannot count exactly: after an
undelivered entry is deleted (XDEL, or XTRIM past it), or after `XGROUP SETID` to an arbitrary
ID. A scaler that reads that null as 0 (KEDA's lag mode) scales a stream with a backlog down to
zero. This module never does: in order, the answer is
1. 0, exactly, when nothing was added after the group's last delivered ID;
2. the stream's length, when the last delivered ID is older than the first entry left (Redis
   7.0's own lag still counts the entries XTRIM removed before the group read them);
3. Redis's lag, when Redis gives one;
4. the count of a bounded probe (`XRANGE (last-delivered + COUNT limit`) when it ran dry;
5. otherwise an estimate, marked inexact, never below the probe's count: the entries added
   since the last delivered one (over-counts deleted ones), or, unknown that, the stream's
   length scaled by the share of its time span after the last delivered ID.
Work per reading is bounded: two XINFO calls and at most one probe of `limit` entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, order=True)
class StreamId:
    """A stream entry ID, `ms-seq`, ordered as Redis orders them."""

    ms: int
    seq: int = 0

    @classmethod
    def parse(cls, raw: str | bytes) -> StreamId:
        text = raw.decode() if isinstance(raw, bytes) else raw
        ms, _, seq = text.partition("-")
        return cls(int(ms), int(seq or 0))

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


@dataclass(frozen=True)
class Stream:
    """What `XINFO STREAM` says."""

    length: int
    last_generated: StreamId
    entries_added: int
    first_entry: StreamId | None  # None when the stream is empty


@dataclass(frozen=True)
class Group:
    """What `XINFO GROUPS` says of one group."""

    last_delivered: StreamId
    entries_read: int | None
    lag: int | None
    pending: int


@dataclass(frozen=True)
class Probe:
    """`XRANGE (last-delivered + COUNT limit`: how many entries it returned."""

    found: int
    limit: int


How = Literal["caught-up", "redis", "whole-stream", "probe", "estimate", "offsets"]


@dataclass(frozen=True)
class Lag:
    entries: int
    exact: bool
    how: How


def needs_probe(stream: Stream, group: Group) -> bool:
    """Whether the cheap answers (1-3) are not enough and a probe must run."""
    return _cheap(stream, group) is None


def lag(stream: Stream, group: Group, probe: Probe | None = None) -> Lag:
    cheap = _cheap(stream, group)
    if cheap is not None:
        return cheap
    if probe is None:
        raise ValueError("the group's lag needs a probe: run XRANGE after its last delivered ID")
    if probe.found < probe.limit:
        return Lag(probe.found, True, "probe")
    if group.entries_read is not None:
        guess = stream.entries_added - group.entries_read
    else:
        assert stream.first_entry is not None  # a non-empty stream, or _cheap had answered
        span = max(1, stream.last_generated.ms - stream.first_entry.ms)
        guess = round(stream.length * (stream.last_generated.ms - group.last_delivered.ms) / span)
    return Lag(max(probe.found, min(guess, stream.length)), False, "estimate")


def _cheap(stream: Stream, group: Group) -> Lag | None:
    if stream.length == 0 or group.last_delivered >= stream.last_generated:
        return Lag(0, True, "caught-up")
    if stream.first_entry is not None and group.last_delivered < stream.first_entry:
        # Before Redis's lag: after XTRIM past the group, Redis still counts the trimmed entries.
        return Lag(stream.length, True, "whole-stream")
    if group.lag is not None:
        return Lag(group.lag, True, "redis")
    return None
