"""A Redis Streams consumer of a group (edge layer): read, process, then acknowledge.

Delivery is at least once: a batch is acknowledged only after it was processed (its XACK goes
with the next XREADGROUP, in one round trip), so a consumer
that dies leaves its batch pending in the group, and a live consumer claims it (XAUTOCLAIM,
entries idle for `claim_idle_ms`) and processes it again. Duplicates are dropped by
`message_id` within a window of recent ids. On start a consumer first re-reads its own pending
entries (a restart with the same name resumes where it stopped). SIGTERM ends the loop after
the batch in hand is acknowledged. With an alive file, the loop touches it at least once a
second, for a liveness probe.

With a report store (reportstore.py: a file, or the broker), processing commits to it: the
report (which counts every processed message) is committed every `commit_every` seconds and
the XACKs follow the commit, so what was acknowledged is in a report even if the consumer is
then killed.

What is done with the messages (the `count` processing, the report, the per-second figures)
is in processing.py, shared with the Kafka consumer; a message that is not JSON counts as an
error and is acknowledged (it cannot succeed on a retry).
"""

from __future__ import annotations

import signal
import time
from typing import Any

from dataworks.streams.processing import (
    Alive,
    BatchProcessor,
    Counting,
    Report,
    Stats,
    commit_report,
    finish,
    log,
)
from dataworks.streams.reportstore import ReportStore

DEFAULT_BATCH, DEFAULT_BLOCK_MS = 100, 1000
CLAIM_COUNT = 1000


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
        reports: ReportStore | None = None,
        commit_every: float = 1.0,
        claim_every: float | None = None,
        start_from: str = "0",
        alive_path: str | None = None,
        batches: BatchProcessor | None = None,
    ) -> None:
        self.r, self.stream, self.group, self.name = r, stream, group, name
        self.batch, self.block_ms, self.claim_idle_ms = batch, block_ms, claim_idle_ms
        self.counting = Counting(Report(name), dedupe)
        self.report = self.counting.report
        self.stopping = False
        self.unacked: list[bytes] = []
        self.reconnect_seconds = reconnect_seconds
        self.stats = stats or Stats(None)
        self.quiet_since = time.monotonic()
        self.reports, self.commit_every = reports, commit_every
        self.started = self.committed_at = time.monotonic()
        self.conn: Any = None
        self.outstanding = 0  # replies of a request in flight
        # How often to look for entries to claim (default: half the idle time, at least 0.2 s).
        self.claim_every = claim_every if claim_every is not None else max(0.2, claim_idle_ms / 2000)
        self.start_from = start_from  # where a group this consumer creates starts: "0" or "$"
        # Touched at least once a second while the loop turns (reading, or retrying a lost
        # Redis): a liveness probe that finds it stale restarts a consumer that hangs.
        self.alive = Alive(alive_path)
        self.batches = batches  # sql, sink (batches.py), alert (alerting.py)

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
                self.alive.beat()
                self.unacked = []  # still pending in the group: re-read from our own pending
                self.outstanding = 0
                if self.conn is not None:
                    self.conn.disconnect()
                log(f"consumer {self.name}: {e}; retrying")
                time.sleep(0.2)
        self.stats.flush(force=True)
        if self.batches is not None:
            self.batches.close()
        finish(self.report, self.stats, started)
        return self.report

    def _loop(self, limit: int | None, idle_exit: float | None) -> None:
        next_claim = time.monotonic() + min(self.claim_every, self.claim_idle_ms / 1000)
        while not self.stopping and (limit is None or self.report.processed < limit):
            if time.monotonic() >= next_claim:
                self._claim()
                next_claim = time.monotonic() + self.claim_every
            self.alive.beat()
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
        commits reports, with no XACK: those follow each commit), so Redis prepares a
        batch while this one is processed. Replies are read raw, as hiredis parses them:
        redis-py's conversion of each entry to a dict cost as much as processing it."""
        if self.reports is not None:
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
        if self.reports is None and self.unacked:
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
        """XACK what was processed; with a report store, only once the report that counts it is
        written (every `commit_every` seconds, and when the consumer stops)."""
        if self.reports is not None:
            if not force and time.monotonic() - self.committed_at < self.commit_every:
                return
            commit_report(self.reports, self.report, self.stats, self.started)
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
            self.alive.beat()

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
                self.alive.beat()
            if cursor in (b"0-0", "0-0"):
                return

    def _process(self, entries: list[Any], *, read_seconds: float = 0.0) -> None:
        """Entries as Redis sends them: [id, [field, value, ...]]. The report's busy time is the
        processing alone; the per-second figures' (what the StreamingJob's autoscaler divides
        by) adds `read_seconds`, the read of a full batch, so a saturated consumer's rate is
        what it really achieves, Redis round trips and a shared CPU included."""
        t = time.perf_counter()
        kept: list[dict[str, Any]] | None = [] if self.batches is not None else None
        errors = self.report.errors
        stamps = self.counting.count([_data(fields) for _, fields in entries], kept)
        if self.batches is not None and kept:
            self.batches.write(kept)  # before the batch's XACK
        self.unacked += [e[0] for e in entries]  # acknowledged with the next read, or on stop
        busy = time.perf_counter() - t
        self.report.busy_seconds += busy
        self.stats.add(stamps, busy + read_seconds, time.time(), errors=self.report.errors - errors)


def _data(fields: list[bytes]) -> bytes | None:
    """The `data` field of an entry's [field, value, ...], or None if it has none."""
    try:
        return fields[1] if fields[0] == b"data" else fields[fields.index(b"data") + 1]
    except (IndexError, ValueError):
        return None


def _flat(entries: list[Any]) -> list[Any]:
    """redis-py's (id, {field: value}) entries as Redis sends them; a deleted entry (no fields,
    as XAUTOCLAIM and a pending read report it) is left out."""
    return [[i, [x for kv in fields.items() for x in kv]] for i, fields in entries if fields]
