"""What a consumer does with messages, whatever the broker (edge layer, no I/O of its own).

The `count` processing is the seed's baseline: decode each JSON message and count it per
symbol; a message that is not JSON counts as an error (it cannot succeed on a retry).
Duplicates are dropped by `message_id` within a window of recent ids. A Report says what was
processed: counts, and each symbol's sequence numbers as runs, so a run of many consumers can
be checked for loss, duplicates and order afterwards. Stats are the per-second figures a
StreamingJob's autoscaler reads. The Redis consumer (consuming.py) and the Kafka consumer
(kafkaconsuming.py) share all of it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from dataworks.core.streams import latency, sequences
from dataworks.streams.reportstore import ReportStore

DECODE = json.JSONDecoder().decode


@dataclass
class Report:
    """What one consumer processed."""

    consumer: str
    processed: int = 0
    duplicates: int = 0
    errors: int = 0
    claimed: int = 0
    reconnects: int = 0
    busy_seconds: float = 0.0
    wall_seconds: float = 0.0
    out_of_order: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)  # end to end, over the whole run
    latency_histogram: dict[str, int] = field(default_factory=dict)  # core/streams/latency.py
    seen: dict[str, sequences.Runs] = field(default_factory=lambda: defaultdict(sequences.Runs))

    def rate(self) -> float:
        """The true processing rate: messages per second of busy time."""
        return self.processed / self.busy_seconds if self.busy_seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "processed": self.processed,
            "duplicates": self.duplicates,
            "errors": self.errors,
            "claimed": self.claimed,
            "reconnects": self.reconnects,
            "latencyMs": self.latency_ms,
            "latencyHistogram": self.latency_histogram,
            "busySeconds": round(self.busy_seconds, 3),
            "wallSeconds": round(self.wall_seconds, 3),
            "outOfOrder": self.out_of_order,
            "rate": round(self.rate()),
            "sequences": {s: v.as_list() for s, v in sorted(self.seen.items())},
        }


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def own_cpu_stat(proc_cgroup: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup") -> str:
    """The `cpu.stat` of this process's own cgroup: cgroup v1's cpu hierarchy when the process
    is in one, else v2's (in a container, `0::/`: /sys/fs/cgroup/cpu.stat). On this machine a
    container's limits are a group of their own (local/cgroups.py), found the same way."""
    try:
        with open(proc_cgroup) as f:
            lines = [line.rstrip("\n").split(":", 2) for line in f if line.count(":") >= 2]
    except OSError:
        return f"{root}/cpu.stat"
    for _, controllers, path in lines:
        if "cpu" in controllers.split(",") and os.path.isdir(f"{root}/cpu"):
            return f"{root}/cpu{path.rstrip('/')}/cpu.stat"
    v2 = [path for hid, controllers, path in lines if hid == "0" and not controllers]
    return f"{root}{v2[0].rstrip('/')}/cpu.stat" if v2 else f"{root}/cpu.stat"


class Stats:
    """Per-second figures, appended as JSON lines to a file when one is given: messages and
    busy time in the second, and end-to-end latency (wall clock at processing minus the
    message's `timestamp`) as p50, p99 and p99.9 in ms; over the run, a mergeable histogram
    (core/streams/latency.py). Also the messages that were errors, and, under a CPU limit, the
    share of the second's CPU periods the kernel throttled (the operator's anomaly tests)."""

    def __init__(
        self,
        path: str | None,
        publish: Callable[[dict[str, Any]], None] | None = None,
        cpu_stat: str | None = None,
    ) -> None:
        self.out = open(path, "a", buffering=1) if path else None  # noqa: SIM115 (kept for the run)
        self.publish = publish  # also given each second's row (a StreamingJob's consumers report it)
        self.second: list[np.ndarray] = []
        self.busy = 0.0
        self.count = 0
        self.errors = 0
        self.throttling = Throttling(cpu_stat or own_cpu_stat())
        self.cpu_last = os.times()
        self.started = time.monotonic()
        self.histogram = np.zeros(latency.EDGES.size + 1, dtype=np.int64)

    def add(self, stamps_us: list[int], busy: float, now: float, *, errors: int = 0) -> None:
        self.errors += errors
        if stamps_us:
            seconds = now - np.asarray(stamps_us, dtype=np.float64) / 1e6
            self.second.append(seconds)
            self.histogram += latency.bucket(seconds)
        self.busy += busy
        self.count += len(stamps_us)

    def flush(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.started < 1.0:
            return
        if self.out is not None or self.publish is not None:
            row: dict[str, Any] = {
                "t": round(time.time(), 3),
                "processed": self.count,
                "busy": round(self.busy, 4),
                "seconds": round(now - self.started, 3),
                "errors": self.errors,
            }
            throttled = self.throttling.share()
            if throttled is not None:
                row["throttled"] = round(throttled, 3)
            # Its own CPU seconds in the second, and memory: what a benchmark on a cluster, where
            # psutil cannot reach a pod, reads of each consumer.
            cpu = os.times()
            row["cpuUser"] = round(cpu.user - self.cpu_last.user, 4)
            row["cpuSystem"] = round(cpu.system - self.cpu_last.system, 4)
            self.cpu_last = cpu
            rss = resident_bytes()
            if rss is not None:
                row["rss"] = rss
            if self.second:
                p = np.percentile(np.concatenate(self.second) * 1000, [50, 99, 99.9])
                row |= {
                    "p50": round(float(p[0]), 3),
                    "p99": round(float(p[1]), 3),
                    "p999": round(float(p[2]), 3),
                }
            if self.out is not None:
                self.out.write(json.dumps(row) + "\n")
            if self.publish is not None:
                self.publish(row)
        self.second, self.busy, self.count, self.errors, self.started = [], 0.0, 0, 0, now


def resident_bytes(statm: str = "/proc/self/statm") -> int | None:
    """This process's resident memory (Linux's /proc), or None where there is none."""
    try:
        with open(statm) as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return None


class Throttling:
    """The share of CPU periods throttled since the last call, from the `cpu.stat` of this
    process's cgroup (v1 and v2 name the counts alike); None without a CPU limit (no periods)
    or without the file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.last = self._read()

    def _read(self) -> tuple[int, int] | None:
        try:
            with open(self.path) as f:
                fields = dict(line.split() for line in f if line.strip())
            return int(fields["nr_periods"]), int(fields["nr_throttled"])
        except (OSError, KeyError, ValueError):
            return None

    def share(self) -> float | None:
        now, last = self._read(), self.last
        self.last = now
        if now is None or last is None or now[0] <= last[0]:
            return None
        return (now[1] - last[1]) / (now[0] - last[0])


class BatchProcessor(Protocol):
    """What acts on each batch before it is acknowledged: batches.py (sql, sink), alerting.py."""

    def write(self, messages: list[dict[str, Any]]) -> None: ...
    def close(self) -> None: ...  # when the consumer stops: what is still in flight, delivered


class Dedupe:
    """The last `size` message ids seen."""

    def __init__(self, size: int) -> None:
        self.size, self.ids = size, OrderedDict[str, None]()

    def seen(self, message_id: str) -> bool:
        if message_id in self.ids:
            return True
        self.ids[message_id] = None
        if len(self.ids) > self.size:
            self.ids.popitem(last=False)
        return False


class Counting:
    """The `count` processing over one consumer's messages, into its Report."""

    def __init__(self, report: Report, dedupe: int) -> None:
        self.report = report
        self.dedupe = Dedupe(dedupe)
        self.last_seq: dict[str, int] = {}

    def count(self, payloads: list[bytes | None], keep: list[dict[str, Any]] | None = None) -> list[int]:
        """Count each message (None: one without a payload, an error); the timestamps (us) of
        those processed, for the latency figures. `keep` gets each message processed (decoded;
        neither an error nor a duplicate), for a processing that acts on the batch."""
        rep = self.report
        stamps: list[int] = []
        for raw in payloads:
            try:
                m = DECODE(raw.decode())  # type: ignore[union-attr]  # None is an error
                message_id, symbol, seq = m["message_id"], m["symbol"], m["sequence_number"]
            except (KeyError, IndexError, ValueError, TypeError, UnicodeDecodeError, AttributeError):
                rep.errors += 1
                continue
            if self.dedupe.seen(message_id):
                rep.duplicates += 1
                continue
            rep.processed += 1
            if keep is not None:
                keep.append(m)
            lasts = rep.seen[symbol].lasts
            if lasts and lasts[-1] + 1 == seq:  # the common case, inline: the next number in order
                lasts[-1] = seq
            else:
                rep.seen[symbol].add(seq)
            stamps.append(m.get("timestamp", 0))
            if seq < self.last_seq.get(symbol, 0):
                rep.out_of_order += 1
            self.last_seq[symbol] = seq
        return stamps


class Alive:
    """A file touched at least once a second while a consumer's loop turns, for a liveness
    probe: a consumer that hangs stops touching it and is restarted."""

    def __init__(self, path: str | None) -> None:
        self.path, self.at = path, 0.0

    def beat(self) -> None:
        now = time.monotonic()
        if self.path is None or now - self.at < 1.0:
            return
        self.at = now
        with open(self.path, "a"):
            os.utime(self.path)


def finish(report: Report, stats: Stats, started: float) -> None:
    """Bring a report's wall time and latency figures up to now."""
    report.wall_seconds = time.monotonic() - started
    report.latency_ms = latency.percentiles_ms(stats.histogram)
    report.latency_histogram = latency.sparse(stats.histogram)


def commit_report(store: ReportStore, report: Report, stats: Stats, started: float) -> None:
    """Commit the report (reportstore.py): what is acknowledged after this is in it."""
    finish(report, stats, started)
    store.commit(report.to_json())
