"""What the operator reads from a StreamingJob's Kafka topic (edge layer).

One reading, at most once per second per StreamingJob, is four admin requests sent together
through confluent-kafka's AdminClient (no consumer joins the group, so reading never moves a
partition): the topic's partitions, their earliest and latest offsets, the group's committed
offsets, and the group's members. core/streamingjobs/kafkalag.py turns the offsets into the
exact lag, and their sum of high watermarks into the arrival counter.

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
from collections.abc import Iterable
from typing import Any, Literal

from dataworks.core.streamingjobs import kafkalag, measuring
from dataworks.streams.brokering import Reading, report_of

TIMEOUT = 5.0  # seconds for one reading's requests
NO_OFFSET = -1001  # librdkafka's OFFSET_INVALID: the group has committed nothing there


class KafkaBroker:
    """An admin client of one Kafka cluster, used by every StreamingJob that reads it."""

    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka.admin import AdminClient

        self.admin: Any = AdminClient(
            {
                "bootstrap.servers": bootstrap,
                "client.id": "dataworks-operator",
                "socket.timeout.ms": 5000,
                "log_level": 2,  # an unreachable broker is the StreamingJob's BrokerUnreachable condition
            }
        )

    async def read(self, stream: str, group: str, *, start_from: str) -> Reading:
        return await asyncio.wait_for(self._read(stream, group, start_from), TIMEOUT * 2)

    async def _read(self, topic: str, group: str, start_from: str) -> Reading:
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
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
        committed = self.admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, tps)], request_timeout=wait
        )[group]
        described = self.admin.describe_consumer_groups([group], request_timeout=wait)[group]
        highs = await _results(latest)
        lows = await _results(earliest)
        offsets = (await asyncio.wrap_future(committed)).topic_partitions
        members = await asyncio.wrap_future(described)
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
        return None


async def _results(futures: dict[Any, Any]) -> dict[int, int]:
    values = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures.values()))
    return {tp.partition: v.offset for tp, v in zip(futures, values, strict=True)}


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
