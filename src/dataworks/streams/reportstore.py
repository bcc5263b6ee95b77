"""Where a consumer commits its report (edge layer): a file, or the broker it reads.

A report says what one consumer process processed, by sequence number (processing.py). It is
committed before the messages it counts are acknowledged, so whatever was acknowledged is in a
report even if the process is killed right after. `dataworks consume --report PATH` commits
it to a file, atomically. `--report broker` commits it to the broker the consumer reads, where
`dataworks bench stream --cluster` collects the reports of pods whose files it cannot read:
- Redis: the hash `reports_key(stream, group)`, one field per consumer process, kept a day;
- Kafka: the topic `reports_topic(topic)`, keyed by consumer process; the last value of a key
  is the process's report.

A process's key is its consumer name and a random suffix: a pod restarted in place, under the
same name, adds its report beside its predecessor's instead of writing over it.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any, Protocol

from dataworks.streams import kafkaconf

KEPT_SECONDS = 86_400  # how long Redis keeps a group's reports after the last commit


class ReportStore(Protocol):
    def commit(self, report: dict[str, Any]) -> None: ...


def instance(consumer: str) -> str:
    """This process's key: the consumer's name and a random suffix."""
    return f"{consumer}-{uuid.uuid4().hex[:8]}"


def reports_key(stream: str, group: str) -> str:
    return f"dataworks:reports:{stream}:{group}"


def reports_topic(topic: str) -> str:
    return f"{topic}.reports"


class FileReports:
    """A file, replaced atomically at each commit."""

    def __init__(self, path: str) -> None:
        self.path = path

    def commit(self, report: dict[str, Any]) -> None:
        part = self.path + ".part"
        with open(part, "w") as f:
            json.dump(report, f)
        os.replace(part, self.path)


class RedisReports:
    """A field of the group's report hash, on the connection the consumer reads with."""

    def __init__(self, r: Any, stream: str, group: str, consumer: str) -> None:
        self.r, self.key, self.field = r, reports_key(stream, group), instance(consumer)

    def commit(self, report: dict[str, Any]) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.key, self.field, json.dumps(report))
        pipe.expire(self.key, KEPT_SECONDS)
        pipe.execute()


class KafkaReports:
    """A record keyed by this process on the reports topic, delivered before commit returns."""

    def __init__(self, bootstrap: str, topic: str, consumer: str) -> None:
        from confluent_kafka import Producer

        self.topic, self.key = reports_topic(topic), instance(consumer)
        self.producer = Producer(
            kafkaconf.settings(bootstrap, {"acks": "all", "enable.idempotence": True, "log_level": 2})
        )

    def commit(self, report: dict[str, Any]) -> None:
        errors: list[Any] = []
        self.producer.produce(
            self.topic,
            key=self.key,
            value=json.dumps(report).encode(),
            on_delivery=lambda err, _msg: errors.append(err) if err is not None else None,
        )
        if self.producer.flush(30) or errors:
            raise RuntimeError(f"the report did not reach {self.topic}: {errors or 'flush timed out'}")


def read_redis(r: Any, stream: str, group: str) -> list[dict[str, Any]]:
    """Every consumer process's last committed report, from Redis."""
    return [json.loads(v) for _, v in sorted(r.hgetall(reports_key(stream, group)).items())]


def read_kafka(bootstrap: str, topic: str, *, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every consumer process's last committed report, from the reports topic (none when the
    topic does not exist: no consumer committed one)."""
    import time

    from confluent_kafka import Consumer, KafkaException, TopicPartition

    name = reports_topic(topic)
    c = Consumer(kafkaconf.settings(bootstrap, {"group.id": f"{name}.reader", "enable.auto.commit": False}))
    try:
        meta = c.list_topics(name, timeout=10).topics.get(name)
        if meta is None or meta.error is not None:
            return []
        last: dict[str, dict[str, Any]] = {}
        ends: dict[int, int] = {}
        parts = []
        for p in meta.partitions:
            low, high = c.get_watermark_offsets(TopicPartition(name, p), timeout=10)
            if high > low:
                ends[p] = high
                parts.append(TopicPartition(name, p, low))
        c.assign(parts)
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                raise KafkaException(msg.error())
            key, value, part, offset = msg.key(), msg.value(), msg.partition(), msg.offset()
            if key is not None and value is not None:
                last[key.decode()] = json.loads(value)
            if part is not None and offset is not None and offset + 1 >= ends.get(part, 0):
                ends.pop(part, None)
        if ends:
            raise TimeoutError(f"{name}: partitions {sorted(ends)} not read to their end in {timeout:g} s")
        return [last[k] for k in sorted(last)]
    finally:
        c.close()
