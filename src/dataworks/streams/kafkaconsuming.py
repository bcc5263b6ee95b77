"""A Kafka consumer of a group (edge layer): poll, process, then commit.

It joins the group with the KIP-848 `consumer` protocol (the broker's coordinator assigns the
partitions, incrementally), named by its `client.id`: the pod's name, which the operator sees
among the group's members. Delivery is at least once: an offset is committed only after every
message before it was processed, and, with a report store, only after the report that counts
them is written, so a consumer killed mid-batch leaves that batch to be read again by whoever
gets its partitions. Duplicates are dropped by `message_id` within a window (processing.py).

Commits are synchronous, once per `commit_every` seconds, when partitions are revoked (so a
rebalance hands over exactly what was processed), and on SIGTERM, after which the consumer
leaves the group and its partitions move at once. The per-second figures that the
StreamingJob's autoscaler reads travel in the commits' metadata (with `publish`), so the
operator reads them with the committed offsets (kafkabrokering.py). A message's key is its
symbol (the generator's), so each symbol stays in one partition, in order.
"""

from __future__ import annotations

import json
import signal
import time
from typing import Any

from dataworks.streams import kafkaconf
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


class KafkaConsumer:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group: str,
        name: str,
        *,
        batch: int = 100,
        block_ms: int = 1000,
        dedupe: int = 100_000,
        start_from: str = "earliest",
        stats: Stats | None = None,
        reports: ReportStore | None = None,
        commit_every: float = 1.0,
        alive_path: str | None = None,
        publish: bool = False,
        batches: BatchProcessor | None = None,
    ) -> None:
        self.topic, self.group, self.name = topic, group, name
        self.batch, self.block_ms = batch, block_ms
        self.counting = Counting(Report(name), dedupe)
        self.report = self.counting.report
        self.stats = stats or Stats(None)
        self.reports, self.commit_every = reports, commit_every
        self.alive = Alive(alive_path)
        self.batches = batches  # sql, sink (batches.py), alert (alerting.py)
        self.publish, self.row = publish, "{}"
        self.offsets: dict[int, int] = {}  # partition -> the next offset to commit
        self.stopping = False
        self.started = self.committed_at = time.monotonic()
        self.refused: str | None = None  # why the brokers refused this client, if they did
        self.config = kafkaconf.settings(bootstrap) | {
            "error_cb": self._error,
            "group.id": group,
            "group.protocol": "consumer",
            "client.id": name,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": start_from,
        }
        if publish:  # the stats row becomes each commit's metadata, with this consumer's name
            outer = self.stats.publish

            def keep(row: dict[str, Any]) -> None:
                self.row = json.dumps({**row, "consumer": name})
                if outer is not None:
                    outer(row)

            self.stats.publish = keep

    def run(self, *, limit: int | None = None, idle_exit: float | None = None) -> Report:
        """Consume until SIGTERM, `limit` messages, or `idle_exit` seconds with nothing read."""
        from confluent_kafka import Consumer

        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        self.consumer: Any = Consumer(self.config)
        self.consumer.subscribe(
            [self.topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )
        started = self.started = time.monotonic()
        quiet_since = started
        try:
            while not self.stopping and (limit is None or self.report.processed < limit):
                self.alive.beat()
                asked = time.perf_counter()
                messages = self.consumer.consume(num_messages=self.batch, timeout=self.block_ms / 1000)
                waited = time.perf_counter() - asked
                self.stats.flush()
                if messages:
                    quiet_since = time.monotonic()
                    full = len(messages) >= self.batch
                    self._process(messages, read_seconds=waited if full else 0.0)
                elif idle_exit is not None and time.monotonic() - quiet_since >= idle_exit:
                    break
                self._commit()
            self.stats.flush(force=True)
            self._commit(force=True)
        finally:
            self.consumer.close()  # leaves the group: its partitions move at once
        if self.refused is not None:
            raise Refused(f"Kafka refused consumer {self.name}: {self.refused}")
        if self.batches is not None:
            self.batches.close()
        finish(self.report, self.stats, started)
        return self.report

    def _error(self, err: Any) -> None:
        """librdkafka's client-wide errors: most pass (a broker restarting); wrong credentials
        or a certificate that cannot be verified do not, so the consumer stops and says so."""
        from confluent_kafka import KafkaError

        if err.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL) or err.fatal():
            self.refused, self.stopping = str(err), True
        else:
            log(f"consumer {self.name}: {err}")

    def _process(self, messages: list[Any], *, read_seconds: float = 0.0) -> None:
        t = time.perf_counter()
        payloads: list[bytes | None] = []
        for m in messages:
            error = m.error()
            if error is not None:
                if error.fatal():
                    raise RuntimeError(f"Kafka: {error}")
                log(f"consumer {self.name}: {error}")
                continue
            payloads.append(m.value())
            self.offsets[m.partition()] = m.offset() + 1
        kept: list[dict[str, Any]] | None = [] if self.batches is not None else None
        errors = self.report.errors
        stamps = self.counting.count(payloads, kept)
        if self.batches is not None and kept:
            self.batches.write(kept)  # before the offsets are committed
        busy = time.perf_counter() - t
        self.report.busy_seconds += busy
        self.stats.add(stamps, busy + read_seconds, time.time(), errors=self.report.errors - errors)

    def _commit(self, *, force: bool = False, partitions: list[int] | None = None) -> None:
        """Commit what was processed (and, with a report store, commit the report first)."""
        from confluent_kafka import KafkaException, TopicPartition

        if not force and time.monotonic() - self.committed_at < self.commit_every:
            return
        if self.reports is not None:
            commit_report(self.reports, self.report, self.stats, self.started)
        self.committed_at = time.monotonic()
        chosen = (
            self.offsets
            if partitions is None
            else {p: self.offsets[p] for p in partitions if p in self.offsets}
        )
        if not chosen:
            return
        meta = (self.row,) if self.publish else ()
        offsets = [TopicPartition(self.topic, p, o, *meta) for p, o in sorted(chosen.items())]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:  # a rebalance in progress: the next commit carries them
            log(f"consumer {self.name}: commit deferred: {e}")

    def _assigned(self, consumer: Any, partitions: list[Any]) -> None:
        """Start from the group's commits: re-committed with fresh figures each second, they
        report this consumer even while its partitions are quiet."""
        try:
            committed = consumer.committed(partitions, timeout=5)
        except Exception as e:  # only the figures wait for the first message
            log(f"consumer {self.name}: cannot read the committed offsets: {e}")
            return
        for tp in committed:
            if tp.topic == self.topic and tp.offset >= 0:
                self.offsets.setdefault(tp.partition, tp.offset)

    def _revoked(self, consumer: Any, partitions: list[Any]) -> None:
        """Hand over exactly what was processed: commit the revoked partitions, then forget them."""
        gone = [tp.partition for tp in partitions if tp.topic == self.topic]
        self._commit(force=True, partitions=gone)
        for p in gone:
            self.offsets.pop(p, None)

    def _lost(self, consumer: Any, partitions: list[Any]) -> None:
        """Partitions taken away without a chance to commit (a missed session): forget them; the
        next owner reads from the last commit, and what was processed since comes again."""
        for tp in partitions:
            self.offsets.pop(tp.partition, None)


class Refused(Exception):
    """The brokers refused the consumer: wrong SASL credentials, or a TLS certificate that
    cannot be verified. Retrying cannot help; the message says which."""
