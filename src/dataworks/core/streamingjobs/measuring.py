"""A StreamingJob's rates, from what the operator read (pure layer; times are passed in).

- The arrival rate: the growth of the stream's `entries-added` counter over the readings of
  the last `WINDOW` seconds (a counter Redis never decreases, unlike the length, which XDEL,
  XTRIM and acknowledgement-free consumers all move).
- The group's figures, from the consumers' own reports (each publishes one per second, see
  `dataworks consume --publish-stats`): messages processed per second, summed; one
  consumer's true processing rate (messages per second of busy time), the median of theirs;
  end-to-end latency p50 as their median and p99 as their maximum. A report older than
  `STALE` seconds is a consumer that stopped reporting, and is left out.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

WINDOW = 5.0  # seconds of readings the arrival rate is measured over
STALE = 5.0  # seconds after which a consumer's report no longer counts


@dataclass(frozen=True)
class Sample:
    at: float  # seconds, on any clock that only moves forward
    added: int  # the stream's entries-added


def remember(samples: tuple[Sample, ...], new: Sample) -> tuple[Sample, ...]:
    """The readings of the last WINDOW seconds, the new one included (one older reading is kept,
    so the window is always spanned). A counter that went back (the stream was recreated)
    starts over."""
    if samples and new.added < samples[-1].added:
        samples = ()
    kept = [*samples, new]
    while len(kept) > 2 and kept[1].at <= new.at - WINDOW:
        kept.pop(0)
    return tuple(kept)


def arrival_rate(samples: tuple[Sample, ...]) -> float | None:
    """Messages per second added over the window; None until two readings 0.5 s apart exist."""
    if len(samples) < 2 or samples[-1].at - samples[0].at < 0.5:
        return None
    return (samples[-1].added - samples[0].added) / (samples[-1].at - samples[0].at)


@dataclass(frozen=True)
class Report:
    """One consumer's report of its last second."""

    consumer: str
    at: float  # wall-clock seconds when it was written
    processed: int  # messages processed in that second
    busy: float  # seconds spent processing in that second
    seconds: float = 1.0  # how long "that second" lasted (a blocking read may stretch it)
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0  # messages in that second that were errors (not JSON, no id)
    throttled: float | None = None  # share of its CPU periods throttled (None: no CPU limit)
    cpu_user: float | None = None  # its own CPU seconds in that second (a benchmark reads them)
    cpu_system: float | None = None
    rss: int | None = None  # its resident memory, bytes


@dataclass(frozen=True)
class Group:
    processing_rate: float | None  # messages/s the group processed
    consumer_rate: float | None  # messages/s one consumer processes while busy
    p50_ms: float | None
    p99_ms: float | None
    reporting: int  # consumers with a fresh report
    messages: int = 0  # messages the fresh reports read: processed and errors
    error_share: float | None = None  # errors / messages
    throttled_share: float | None = None  # the most throttled consumer's share


MIN_BUSY = 0.01  # seconds: a second busier than this measures a consumer's rate


def group(reports: list[Report], now: float) -> Group:
    fresh = [r for r in reports if now - r.at <= STALE]
    if not fresh:
        return Group(None, None, None, None, 0)
    rates = [r.processed / r.busy for r in fresh if r.busy >= MIN_BUSY]
    p50s = [r.p50_ms for r in fresh if r.p50_ms is not None]
    p99s = [r.p99_ms for r in fresh if r.p99_ms is not None]
    messages = sum(r.processed + r.errors for r in fresh)
    throttled = [r.throttled for r in fresh if r.throttled is not None]
    return Group(
        processing_rate=sum(r.processed / max(r.seconds, 0.001) for r in fresh),
        consumer_rate=statistics.median(rates) if rates else None,
        p50_ms=statistics.median(p50s) if p50s else None,
        p99_ms=max(p99s) if p99s else None,
        reporting=len(fresh),
        messages=messages,
        error_share=sum(r.errors for r in fresh) / messages if messages else None,
        throttled_share=max(throttled) if throttled else None,
    )
