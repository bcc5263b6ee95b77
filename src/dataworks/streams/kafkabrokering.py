"""What the operator reads from a StreamingJob's Kafka topic (edge layer).

One reading, at most once per second per StreamingJob, is four requests sent together: the
topic's partitions, their earliest and latest offsets and the group's members through
confluent-kafka's AdminClient, and the group's committed offsets through a consumer bound to
the group that never subscribes (so it never joins the group, and reading never moves a
partition). Not the AdminClient's ListConsumerGroupOffsets: librdkafka dereferences a null
group handle when that request meets NOT_COORDINATOR, as it does while a coordinator loads or
moves, and the whole process dies of SIGSEGV (confluentinc/librdkafka#5040, open).

core/streamingjobs/kafkalag.py turns the offsets into the exact lag, and their sum of high
watermarks into the arrival counter.

The consumers' per-second figures (rate, busy time, latency) travel in the metadata string of
their offset commits (`dataworks consume --kafka`, once a second), so the operator reads them
with the committed offsets: no other channel, and no write to the broker.

Kafka's group coordinator hands a gone member's partitions to the live ones by itself: at once
when the consumer leaves (SIGTERM closes it), after the broker's session timeout when it was
killed (`group.consumer.session.timeout.ms`, 45 s by default). `reclaim` and `forget` have
nothing to do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from dataworks.core.streamingjobs import kafkalag, measuring
from dataworks.streams import kafkaconf
from dataworks.streams.brokering import Reading, report_of

TIMEOUT = 5.0  # seconds for one reading's requests
NO_OFFSET = -1001  # librdkafka's OFFSET_INVALID: the group has committed nothing there
ATTEMPTS = 3  # a reading with a retriable error is tried again, this many times in all
RETRY_SECONDS = 0.5  # before the second attempt; twice that before the third


class KafkaBroker:
    """An admin client of one Kafka cluster, used by every StreamingJob that reads it."""

    def __init__(self, bootstrap: str, security: Mapping[str, str] | None = None) -> None:
        """`security`: the TLS and SASL settings (kafkaconf.py), as the controller read them from
        the StreamingJob's Secrets ({}: plaintext); None takes them from the environment, as
        the benchmark does."""
        from confluent_kafka.admin import AdminClient

        own = {
            "client.id": "dataworks-operator",
            "socket.timeout.ms": 5000,
            "log_level": 2,  # an unreachable broker is the StreamingJob's BrokerUnreachable condition
        }
        self.refused: str | None = None  # the brokers' last refusal of these credentials
        own["error_cb"] = self._error
        self.settings: dict[str, Any] = kafkaconf.settings(bootstrap, own, security=security)
        self.admin: Any = AdminClient(self.settings)
        self.groups: dict[str, Any] = {}  # group -> the consumer that reads its commits

    def _error(self, err: Any) -> None:
        from confluent_kafka import KafkaError

        if err.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL):
            self.refused = str(err)

    def _group(self, group: str) -> Any:
        from confluent_kafka import Consumer

        if group not in self.groups:
            self.groups[group] = Consumer(self.settings | {"group.id": group, "enable.auto.commit": False})
        return self.groups[group]

    async def read(self, stream: str, group: str, *, start_from: str) -> Reading:
        from confluent_kafka import KafkaException

        for attempt in range(1, ATTEMPTS + 1):
            try:
                reading = await asyncio.wait_for(self._read(stream, group, start_from), TIMEOUT * 2)
                self.refused = None
                return reading
            except KafkaException as e:
                self.admin.poll(0)  # serves error_cb: a refusal of the credentials, if that was it
                if self.refused is not None:  # what failed the requests: say it, not "transport"
                    raise PermissionError(self.refused) from e
                # A retriable error passes: a new topic's partitions have no leader for a moment
                # (NOT_LEADER_FOR_PARTITION), and a broker restarting moves leaders.
                if attempt == ATTEMPTS or not e.args[0].retriable():
                    raise
                await asyncio.sleep(RETRY_SECONDS * attempt)
        raise AssertionError("unreachable")

    async def _read(self, topic: str, group: str, start_from: str) -> Reading:
        from confluent_kafka import TopicPartition
        from confluent_kafka.admin import OffsetSpec as Spec  # type: ignore[attr-defined]  # not in __all__

        spec: Any = Spec  # its methods are unannotated

        meta = await asyncio.to_thread(self.admin.list_topics, topic, timeout=TIMEOUT)
        found = meta.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            # No topic yet: nothing arrived. (The consumers wait for it; a producer creates it.)
            return Reading(kafkalag.lag({}, "earliest"), 0, 0, {}, [], partitions=0)
        tps = [TopicPartition(topic, p) for p in sorted(found.partitions)]
        wait = TIMEOUT
        latest = self.admin.list_offsets({tp: spec.latest() for tp in tps}, request_timeout=wait)
        earliest = self.admin.list_offsets({tp: spec.earliest() for tp in tps}, request_timeout=wait)
        committed = asyncio.to_thread(self._group(group).committed, tps, timeout=wait)
        described = self.admin.describe_consumer_groups([group], request_timeout=wait)[group]
        # Every request is awaited, failed or not, before this returns or raises: none is left
        # to complete on librdkafka's thread after this reading's event loop has closed.
        highs, lows, offsets, members = _settled(
            await asyncio.gather(
                _results(latest),
                _results(earliest),
                committed,
                asyncio.wrap_future(described),
                return_exceptions=True,
            )
        )
        at = {tp.partition: tp for tp in offsets}
        partitions = {
            tp.partition: kafkalag.Partition(
                low=lows[tp.partition],
                high=highs[tp.partition],
                committed=_committed(at.get(tp.partition)),
            )
            for tp in tps
        }
        mode: Literal["earliest", "latest"] = "latest" if start_from == "latest" else "earliest"
        consumers = {m.client_id: 0 for m in members.members}
        return Reading(
            kafkalag.lag(partitions, mode),
            0,
            kafkalag.produced(partitions),
            consumers,
            _reports(offsets),
            partitions=len(tps),
        )

    async def reclaim(self, stream: str, group: str, consumer: str) -> int:
        return 0  # the group coordinator reassigns a gone member's partitions

    async def forget(self, stream: str, group: str, consumer: str) -> None:
        return None  # a gone member leaves the group by itself (at the session timeout)

    async def close(self) -> None:
        for consumer in self.groups.values():
            await asyncio.to_thread(consumer.close)
        self.groups.clear()


async def _results(futures: dict[Any, Any]) -> dict[int, int]:
    values = _settled(
        await asyncio.gather(*(asyncio.wrap_future(f) for f in futures.values()), return_exceptions=True)
    )
    return {tp.partition: v.offset for tp, v in zip(futures, values, strict=True)}


def _settled(values: Sequence[Any]) -> Sequence[Any]:
    """The values of requests that all finished; the first failure raised."""
    for v in values:
        if isinstance(v, BaseException):
            raise v
    return values


def _committed(tp: Any) -> int | None:
    if tp is None or tp.offset is None or tp.offset < 0 or tp.error is not None:
        return None
    return int(tp.offset)


def _reports(offsets: Iterable[Any]) -> list[measuring.Report]:
    """Each consumer's newest row, from the metadata of the offsets it committed."""
    newest: dict[str, measuring.Report] = {}
    for tp in offsets:
        try:
            row = json.loads(getattr(tp, "metadata", None) or "null")
        except ValueError:
            continue
        consumer = row.get("consumer") if isinstance(row, dict) else None
        report = report_of(consumer, row) if isinstance(consumer, str) else None
        if report is not None and (consumer not in newest or newest[report.consumer].at < report.at):
            newest[report.consumer] = report
    return list(newest.values())
