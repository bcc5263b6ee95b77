"""A Redis Streams consumer of a group (edge layer): read, process, then acknowledge.

Delivery is at least once: a batch is acknowledged only after it was processed (its XACK goes
with the next XREADGROUP, in one round trip), so a consumer
that dies leaves its batch pending in the group, and a live consumer claims it (XAUTOCLAIM,
entries idle for `claim_idle_ms`) and processes it again. Duplicates are dropped by
`message_id` within a window of recent ids. On start a consumer first re-reads its own pending
entries (a restart with the same name resumes where it stopped). SIGTERM ends the loop after
the batch in hand is acknowledged. With an alive file, the loop touches it at least once a
second, for a liveness probe.

With a report file, processing commits to it: the report (which counts every processed message)
is written atomically every `commit_every` seconds and the XACKs follow the write, so what was
acknowledged is in a report even if the consumer is then killed.

The `count` processing is the seed's baseline: decode each JSON message and count it per
symbol; a line that is not JSON counts as an error and is acknowledged (it cannot succeed on a
retry). A report says what was processed: counts, and each symbol's sequence numbers as runs,
so a run of many consumers can be checked for loss, duplicates and order afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dataworks.core.streams import latency, sequences

DEFAULT_BATCH, DEFAULT_BLOCK_MS = 100, 1000
CLAIM_COUNT = 1000
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


class Stats:
    """Per-second figures, appended as JSON lines to a file when one is given: messages and
    busy time in the second, and end-to-end latency (wall clock at processing minus the
    message's `timestamp`) as p50, p99 and p99.9 in ms; over the run, a mergeable histogram
    (core/streams/latency.py)."""

    def __init__(self, path: str | None, publish: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.out = open(path, "a", buffering=1) if path else None  # noqa: SIM115 (kept for the run)
        self.publish = publish  # also given each second's row (a StreamingJob's consumers report it)
        self.second: list[np.ndarray] = []
        self.busy = 0.0
        self.count = 0
        self.started = time.monotonic()
        self.histogram = np.zeros(latency.EDGES.size + 1, dtype=np.int64)

    def add(self, stamps_us: list[int], busy: float, now: float) -> None:
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
            }
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
        self.second, self.busy, self.count, self.started = [], 0.0, 0, now


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


class Consumer:
    def __init__(
        self,
        r: Any,
        stream: str,
        group: str,
        name: str,
        *,
        batch: int = DEFAULT_BATCH,
        block_ms: int = DEFAULT_BLOCK_MS,
        dedupe: int = 100_000,
        claim_idle_ms: int = 30_000,
        reconnect_seconds: float = 60.0,
        stats: Stats | None = None,
        commit_path: str | None = None,
        commit_every: float = 1.0,
        claim_every: float | None = None,
        start_from: str = "0",
        alive_path: str | None = None,
    ) -> None:
        self.r, self.stream, self.group, self.name = r, stream, group, name
        self.batch, self.block_ms, self.claim_idle_ms = batch, block_ms, claim_idle_ms
        self.dedupe = Dedupe(dedupe)
        self.report = Report(name)
        self.last_seq: dict[str, int] = {}
        self.stopping = False
        self.unacked: list[bytes] = []
        self.reconnect_seconds = reconnect_seconds
        self.stats = stats or Stats(None)
        self.quiet_since = time.monotonic()
        self.commit_path, self.commit_every = commit_path, commit_every
        self.started = self.committed_at = time.monotonic()
        self.conn: Any = None
        self.outstanding = 0  # replies of a request in flight
        # How often to look for entries to claim (default: half the idle time, at least 0.2 s).
        self.claim_every = claim_every if claim_every is not None else max(0.2, claim_idle_ms / 2000)
        self.start_from = start_from  # where a group this consumer creates starts: "0" or "$"
        # Touched at least once a second while the loop turns (reading, or retrying a lost
        # Redis): a liveness probe that finds it stale restarts a consumer that hangs.
        self.alive_path, self.beat_at = alive_path, 0.0

    def ensure_group(self) -> None:
        import redis

        try:
            self.r.xgroup_create(self.stream, self.group, id=self.start_from, mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def run(self, *, limit: int | None = None, idle_exit: float | None = None) -> Report:
        """Consume until SIGTERM, `limit` messages, or `idle_exit` seconds with nothing to read.
        A lost connection (a Redis restart) is retried for `reconnect_seconds`; the batch whose
        XACK may have been lost is then re-read from this consumer's own pending entries."""
        import redis

        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        started = self.started = time.monotonic()
        self.quiet_since = started
        down_since: float | None = None
        while True:
            try:
                self.ensure_group()
                self._drain_own_pending()
                self._loop(limit, idle_exit)
                if self.outstanding:  # the batch read ahead is ours: process it before stopping
                    reply = self._collect()
                    self._process(list(reply[0][1]) if reply else [])
                self._acknowledge(force=True)
                break
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as e:
                now = time.monotonic()
                down_since = down_since or now
                if now - down_since > self.reconnect_seconds or self.stopping:
                    raise
                self.report.reconnects += 1
                self._beat()
                self.unacked = []  # still pending in the group: re-read from our own pending
                self.outstanding = 0
                if self.conn is not None:
                    self.conn.disconnect()
                log(f"consumer {self.name}: {e}; retrying")
                time.sleep(0.2)
        self.report.wall_seconds = time.monotonic() - started
        self.stats.flush(force=True)
        self._latency_into_report()
        return self.report

    def _beat(self) -> None:
        now = time.monotonic()
        if self.alive_path is None or now - self.beat_at < 1.0:
            return
        self.beat_at = now
        with open(self.alive_path, "a"):
            os.utime(self.alive_path)

    def _latency_into_report(self) -> None:
        self.report.latency_ms = latency.percentiles_ms(self.stats.histogram)
        self.report.latency_histogram = latency.sparse(self.stats.histogram)

    def _loop(self, limit: int | None, idle_exit: float | None) -> None:
        next_claim = time.monotonic() + min(self.claim_every, self.claim_idle_ms / 1000)
        while not self.stopping and (limit is None or self.report.processed < limit):
            if time.monotonic() >= next_claim:
                self._claim()
                next_claim = time.monotonic() + self.claim_every
            self._beat()
            asked = time.perf_counter()
            entries = self._ack_and_read()
            waited = time.perf_counter() - asked
            self.stats.flush()
            if not entries:
                if idle_exit is not None and time.monotonic() - self.quiet_since >= idle_exit:
                    return
                continue
            self.quiet_since = time.monotonic()
            # A full batch means entries were waiting: the read's time was work, not idleness.
            self._process(entries, read_seconds=waited if len(entries) >= self.batch else 0.0)

    def _ack_and_read(self) -> list[Any]:
        """The next batch. Reads run one batch ahead: as soon as a batch arrives the next
        XREADGROUP is sent, with the XACK of what was processed so far (or, when processing
        commits to a report file, with no XACK: those follow each commit), so Redis prepares a
        batch while this one is processed. Replies are read raw, as hiredis parses them:
        redis-py's conversion of each entry to a dict cost as much as processing it."""
        if self.commit_path is not None:
            self._acknowledge()  # only after a commit; what stays unacked waits for the next one
        reply = self._collect() if self.outstanding else self._request(block=True)
        entries = list(reply[0][1]) if reply else []
        if entries and not self.stopping:
            self._request(block=False)
        return entries

    def _read_command(self) -> tuple[Any, ...]:
        return ("XREADGROUP", "GROUP", self.group, self.name, "COUNT", self.batch, "BLOCK", self.block_ms,
                "STREAMS", self.stream, ">")  # fmt: skip

    def _request(self, *, block: bool) -> Any:
        """Send [XACK of the processed entries,] XREADGROUP; wait for its reply when `block`."""
        conn = self._raw()
        commands: list[tuple[Any, ...]] = []
        if self.commit_path is None and self.unacked:
            commands.append(("XACK", self.stream, self.group, *self.unacked))
            self.unacked = []
        commands.append(self._read_command())
        conn.send_packed_command(conn.pack_commands(commands))
        self.outstanding = len(commands)
        return self._collect() if block else None

    def _collect(self) -> Any:
        """The replies of the request in flight; the last is the read's."""
        conn, reply = self._raw(), None
        while self.outstanding:
            reply = conn.read_response()
            self.outstanding -= 1
        return reply

    def _raw(self) -> Any:
        """One connection of the client's pool, kept for the raw reads."""
        if self.conn is None:
            self.conn = self.r.connection_pool.get_connection("XREADGROUP")
        return self.conn

    def _acknowledge(self, *, force: bool = False) -> None:
        """XACK what was processed; with a report file, only once the report that counts it is
        written (every `commit_every` seconds, and when the consumer stops)."""
        if self.commit_path is not None:
            if not force and time.monotonic() - self.committed_at < self.commit_every:
                return
            self.report.wall_seconds = time.monotonic() - self.started
            self._latency_into_report()
            part = self.commit_path + ".part"
            with open(part, "w") as f:
                json.dump(self.report.to_json(), f)
            os.replace(part, self.commit_path)
            self.committed_at = time.monotonic()
        for k in range(0, len(self.unacked), 10_000):
            self.r.xack(self.stream, self.group, *self.unacked[k : k + 10_000])
        self.unacked = []

    def _drain_own_pending(self) -> None:
        """Process the entries this consumer read before and never acknowledged (a restart with
        the same name, or a lost connection), walking its pending list once, oldest first."""
        cursor = "0"
        while True:
            reply = self.r.xreadgroup(self.group, self.name, {self.stream: cursor}, count=self.batch)
            batch = reply[0][1] if reply else []
            if not batch:
                return
            cursor = batch[-1][0]
            self._process(_flat(batch))
            self._acknowledge()
            self._beat()

    def _claim(self) -> None:
        """Take over entries a dead consumer left pending for longer than `claim_idle_ms`. Each
        XAUTOCLAIM scans up to ten times its COUNT of the pending list: with at least
        CLAIM_COUNT, a pass over a busy group's pending list is a call or two, not hundreds
        (with the latency strategy's batch of 10, passes every 0.5 s cost four consumers most of
        their time)."""
        cursor = "0-0"
        while True:
            cursor, entries, *_ = self.r.xautoclaim(
                self.stream,
                self.group,
                self.name,
                self.claim_idle_ms,
                start_id=cursor,
                count=max(self.batch, CLAIM_COUNT),
            )
            entries = _flat(entries)
            if entries:
                self.report.claimed += len(entries)
                self._process(entries)
                self._beat()
            if cursor in (b"0-0", "0-0"):
                return

    def _process(self, entries: list[Any], *, read_seconds: float = 0.0) -> None:
        """Entries as Redis sends them: [id, [field, value, ...]]. The report's busy time is the
        processing alone; the per-second figures' (what the StreamingJob's autoscaler divides
        by) adds `read_seconds`, the read of a full batch, so a saturated consumer's rate is
        what it really achieves, Redis round trips and a shared CPU included."""
        t = time.perf_counter()
        rep = self.report
        stamps: list[int] = []
        for _, fields in entries:
            try:
                raw = fields[1] if fields[0] == b"data" else fields[fields.index(b"data") + 1]
                m = DECODE(raw.decode())  # from str: json.loads(bytes) first guesses the encoding
                message_id, symbol, seq = m["message_id"], m["symbol"], m["sequence_number"]
            except (KeyError, IndexError, ValueError, TypeError, UnicodeDecodeError):
                rep.errors += 1
                continue
            if self.dedupe.seen(message_id):
                rep.duplicates += 1
                continue
            rep.processed += 1
            lasts = rep.seen[symbol].lasts
            if lasts and lasts[-1] + 1 == seq:  # the common case, inline: the next number in order
                lasts[-1] = seq
            else:
                rep.seen[symbol].add(seq)
            stamps.append(m.get("timestamp", 0))
            if seq < self.last_seq.get(symbol, 0):
                rep.out_of_order += 1
            self.last_seq[symbol] = seq
        self.unacked += [e[0] for e in entries]  # acknowledged with the next read, or on stop
        busy = time.perf_counter() - t
        rep.busy_seconds += busy
        self.stats.add(stamps, busy + read_seconds, time.time())


def _flat(entries: list[Any]) -> list[Any]:
    """redis-py's (id, {field: value}) entries as Redis sends them; a deleted entry (no fields,
    as XAUTOCLAIM and a pending read report it) is left out."""
    return [[i, [x for kv in fields.items() for x in kv]] for i, fields in entries if fields]
