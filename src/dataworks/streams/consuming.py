"""A Redis Streams consumer of a group (edge layer): read, process, then acknowledge.

Delivery is at least once: a batch is acknowledged only after it was processed (its XACK goes
with the next XREADGROUP, in one round trip), so a consumer
that dies leaves its batch pending in the group, and a live consumer claims it (XAUTOCLAIM,
entries idle for `claim_idle_ms`) and processes it again. Duplicates are dropped by
`message_id` within a window of recent ids. On start a consumer first re-reads its own pending
entries (a restart with the same name resumes where it stopped). SIGTERM ends the loop after
the batch in hand is acknowledged.

The `count` processing is the seed's baseline: decode each JSON message and count it per
symbol; a line that is not JSON counts as an error and is acknowledged (it cannot succeed on a
retry). A report says what was processed: counts, and each symbol's sequence numbers as runs,
so a run of many consumers can be checked for loss, duplicates and order afterwards.
"""

from __future__ import annotations

import json
import signal
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Any

from dataworks.core.streams import sequences

DEFAULT_BATCH, DEFAULT_BLOCK_MS = 100, 1000


@dataclass
class Report:
    """What one consumer processed."""

    consumer: str
    processed: int = 0
    duplicates: int = 0
    errors: int = 0
    claimed: int = 0
    busy_seconds: float = 0.0
    wall_seconds: float = 0.0
    out_of_order: int = 0
    seen: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

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
            "busySeconds": round(self.busy_seconds, 3),
            "wallSeconds": round(self.wall_seconds, 3),
            "outOfOrder": self.out_of_order,
            "rate": round(self.rate()),
            "sequences": {s: sequences.runs(v) for s, v in sorted(self.seen.items())},
        }


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
    ) -> None:
        self.r, self.stream, self.group, self.name = r, stream, group, name
        self.batch, self.block_ms, self.claim_idle_ms = batch, block_ms, claim_idle_ms
        self.dedupe = Dedupe(dedupe)
        self.report = Report(name)
        self.last_seq: dict[str, int] = {}
        self.stopping = False
        self.unacked: list[bytes] = []

    def ensure_group(self) -> None:
        import redis

        try:
            self.r.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def run(self, *, limit: int | None = None, idle_exit: float | None = None) -> Report:
        """Consume until SIGTERM, `limit` messages, or `idle_exit` seconds with nothing to read."""
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        self.ensure_group()
        started = time.monotonic()
        quiet_since = started
        self._drain_own_pending()
        next_claim = time.monotonic() + self.claim_idle_ms / 1000
        while not self.stopping and (limit is None or self.report.processed < limit):
            if time.monotonic() >= next_claim:
                self._claim()
                next_claim = time.monotonic() + max(0.2, self.claim_idle_ms / 2000)
            reply = self._ack_and_read()
            entries = reply[0][1] if reply else []
            if not entries:
                if idle_exit is not None and time.monotonic() - quiet_since >= idle_exit:
                    break
                continue
            quiet_since = time.monotonic()
            self._process(entries)
        if self.unacked:
            self.r.xack(self.stream, self.group, *self.unacked)
            self.unacked = []
        self.report.wall_seconds = time.monotonic() - started
        return self.report

    def _ack_and_read(self) -> Any:
        """The last batch's XACK and the next XREADGROUP, in one round trip."""
        if not self.unacked:
            return self.r.xreadgroup(
                self.group, self.name, {self.stream: ">"}, count=self.batch, block=self.block_ms
            )
        pipe = self.r.pipeline(transaction=False)
        pipe.xack(self.stream, self.group, *self.unacked)
        pipe.xreadgroup(self.group, self.name, {self.stream: ">"}, count=self.batch, block=self.block_ms)
        _, reply = pipe.execute()
        self.unacked = []
        return reply

    def _drain_own_pending(self) -> None:
        while True:
            reply = self.r.xreadgroup(self.group, self.name, {self.stream: "0"}, count=self.batch)
            entries = [e for e in (reply[0][1] if reply else []) if e[1]]
            if not entries:
                return
            self._process(entries)
            self.r.xack(self.stream, self.group, *self.unacked)
            self.unacked = []

    def _claim(self) -> None:
        """Take over entries a dead consumer left pending for longer than `claim_idle_ms`."""
        cursor = "0-0"
        while True:
            cursor, entries, *_ = self.r.xautoclaim(
                self.stream, self.group, self.name, self.claim_idle_ms, start_id=cursor, count=self.batch
            )
            entries = [e for e in entries if e[1]]  # an entry deleted meanwhile comes back empty
            if entries:
                self.report.claimed += len(entries)
                self._process(entries)
            if cursor in (b"0-0", "0-0"):
                return

    def _process(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        t = time.perf_counter()
        rep = self.report
        for _, fields in entries:
            try:
                m = json.loads(fields[b"data"])
                message_id, symbol, seq = m["message_id"], m["symbol"], m["sequence_number"]
            except (KeyError, ValueError, TypeError):
                rep.errors += 1
                continue
            if self.dedupe.seen(message_id):
                rep.duplicates += 1
                continue
            rep.processed += 1
            rep.seen[symbol].append(seq)
            if seq < self.last_seq.get(symbol, 0):
                rep.out_of_order += 1
            self.last_seq[symbol] = seq
        self.unacked += [e[0] for e in entries]  # acknowledged with the next read, or on stop
        rep.busy_seconds += time.perf_counter() - t
