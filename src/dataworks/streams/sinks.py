"""Where the generator's lines go (edge layer): a Redis stream, a Kafka topic or a JSON-lines file.

A target is a URL or a path:
- `redis://[:PASSWORD@]HOST[:PORT][/DB]?stream=NAME[&maxlen=N]`: XADD of one field, `data`,
  sent in batches on one connection (redis-py's, which connects, authenticates and reads the
  replies with hiredis; the batch's commands are packed here, at once). Without
  `maxlen` nothing is trimmed: trimming deletes entries no consumer has read yet.
  The password may also come from `REDIS_PASSWORD`, never from a manifest's literal.
- `kafka://HOST:PORT[,HOST:PORT...]?topic=NAME[&partitions=N]`: each message produced with its
  symbol as the key, so each symbol keeps its order in one partition; an idempotent producer
  (acks from all in-sync replicas, retries without duplicates or reordering). With
  `partitions`, a topic that does not exist is created with that many.
- a file path, or `-` for stdout: one JSON message per line.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import parse_qs, urlparse

from dataworks.streams import kafkaconf

DEFAULT_STREAM = "market-data"


class SinkError(ValueError):
    """A target that cannot be written to, in words that say how to fix it."""


class Sink(Protocol):
    def write(self, batch: Sequence[bytes], symbols: Sequence[int] = ()) -> None: ...

    def close(self) -> None: ...


class FileSink:
    """JSON lines in a regular file, written whole or not at all: a `.part` file is renamed
    into place when the run ends, so a stopped run leaves no half-written output. Anything
    else that exists at the path (stdout as `-`, /dev/null, a FIFO) is written in place and
    never replaced."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.part: Path | None = None
        if path == "-":
            self.out: IO[bytes] = sys.stdout.buffer
            return
        target = check_path(path)
        if target.exists() and not target.is_file():
            self.out = target.open("wb", buffering=1 << 20)  # a device or a pipe: in place
            return
        self.part = target.with_name(target.name + ".part")
        self.out = self.part.open("wb", buffering=1 << 20)

    def write(self, batch: Sequence[bytes], symbols: Sequence[int] = ()) -> None:
        self.out.write(b"\n".join(batch) + b"\n")

    def close(self) -> None:
        self.out.flush()
        if self.path != "-":
            self.out.close()
        if self.part is not None:
            self.part.replace(self.path)

    def abort(self) -> None:
        if self.path != "-":
            self.out.close()
        if self.part is not None:
            self.part.unlink(missing_ok=True)


class RedisSink:
    """XADD into one stream, a batch per round trip."""

    def __init__(self, url: str) -> None:
        import redis

        u = urlparse(url)
        query = parse_qs(u.query)
        self.stream = query.get("stream", [DEFAULT_STREAM])[0]
        maxlen = query.get("maxlen", [None])[0]
        if maxlen is not None and not maxlen.isdigit():
            raise SinkError(f"output {url}: maxlen must be a whole number, got {maxlen!r}")
        trim = ("MAXLEN", "~", maxlen) if maxlen else ()
        self.head = _resp_head(("XADD", self.stream, *trim, "*", "data"))
        db = u.path.strip("/") or "0"
        if not db.isdigit():
            raise SinkError(
                f"output {url}: the path is the database number (/0); name the stream with ?stream="
            )
        password = u.password or os.environ.get("REDIS_PASSWORD")
        # redis-py's connection API has no annotations
        connection: Any = redis.SSLConnection if u.scheme == "rediss" else redis.Connection
        self.conn = connection(
            host=u.hostname or "localhost", port=u.port or 6379, db=int(db), password=password
        )
        try:
            self.conn.connect()
        except redis.RedisError as e:
            raise SinkError(f"output {url}: cannot reach Redis: {e}") from None
        self.errors = redis.RedisError
        self.lost = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
        self.reconnects = 0
        self.reconnect_seconds = float(os.environ.get("DATAWORKS_RECONNECT_SECONDS", "60"))

    def write(self, batch: Sequence[bytes], symbols: Sequence[int] = ()) -> None:
        """Send the batch; a lost connection (a Redis restart) is retried for `reconnect_seconds`,
        resending the whole batch: entries that had landed arrive twice, with the same
        `message_id` (at least once, as the consumers expect)."""
        down_since: float | None = None
        while True:
            try:
                return self._send(batch)
            except self.lost as e:
                now = time.monotonic()
                down_since = down_since or now
                if now - down_since > self.reconnect_seconds:
                    raise SinkError(f"Redis unreachable for {self.reconnect_seconds:g} s: {e}") from None
                self.reconnects += 1
                time.sleep(0.2)
                self.conn.disconnect()

    def _send(self, batch: Sequence[bytes]) -> None:
        # One bytes object for the batch: the XADDs differ only in their last argument, so each
        # is the shared head and one bulk string (0.17 us a message, against 1.07 us through
        # redis-py's pack_commands, a command at a time).
        head = self.head
        self.conn.send_packed_command(
            [b"".join([b"%b$%d\r\n%b\r\n" % (head, len(data), data) for data in batch])], check_health=False
        )
        failed = None
        for _ in batch:
            try:
                self.conn.read_response()
            except self.lost:
                raise
            except self.errors as e:  # every reply is read, so the connection stays in step
                failed = failed or e
        if failed is not None:
            raise SinkError(f"Redis refused an XADD to {self.stream}: {failed}")

    def close(self) -> None:
        self.conn.disconnect()


class KafkaSink:
    """Produce to one topic, keyed by symbol, through librdkafka's batching producer."""

    def __init__(self, url: str) -> None:
        from confluent_kafka import KafkaException, Producer

        from dataworks.core.streams.generating import symbol_name

        u = urlparse(url)
        query = parse_qs(u.query)
        bootstrap = u.netloc
        if not bootstrap or "@" in bootstrap:
            raise SinkError(f"output {url}: give kafka://HOST:PORT?topic=NAME (no credentials in the URL)")
        if u.path.strip("/"):
            raise SinkError(f"output {url}: name the topic with ?topic=NAME, not in the path")
        self.topic = query.get("topic", [DEFAULT_STREAM])[0]
        partitions = query.get("partitions", [None])[0]
        if partitions is not None and not (partitions.isdigit() and int(partitions) > 0):
            raise SinkError(f"output {url}: partitions must be a whole number above 0, got {partitions!r}")
        self.key = symbol_name
        self.failed: str | None = None
        self.producer: Any = Producer(
            kafkaconf.settings(bootstrap)
            | {
                "enable.idempotence": True,
                "linger.ms": 5,
                "batch.num.messages": 10_000,
                "queue.buffering.max.messages": 1_000_000,
                "error_cb": self._error,
                "log_level": 2,  # failures are reported by error_cb and the delivery reports, once
                "socket.connection.setup.timeout.ms": 5000,
            }
        )
        try:
            self.producer.list_topics(timeout=5)
            if partitions is not None:
                create_topic(bootstrap, self.topic, int(partitions))
        except KafkaException as e:
            raise SinkError(f"output {url}: cannot reach Kafka at {bootstrap}: {e}") from None

    def _error(self, error: Any) -> None:
        if error.fatal():
            self.failed = str(error)

    def _delivered(self, error: Any, message: Any) -> None:
        if error is not None and self.failed is None:
            self.failed = f"a message to {self.topic} was not delivered: {error}"

    def write(self, batch: Sequence[bytes], symbols: Sequence[int] = ()) -> None:
        keys = [self.key(i) for i in symbols] if symbols else [None] * len(batch)
        for data, key in zip(batch, keys, strict=True):
            while True:
                try:
                    self.producer.produce(self.topic, data, key, on_delivery=self._delivered)
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    self.producer.poll(0.05)
        self.producer.poll(0)
        if self.failed is not None:
            raise SinkError(self.failed)

    def close(self) -> None:
        left = self.producer.flush(60)
        if self.failed is not None:
            raise SinkError(self.failed)
        if left:
            raise SinkError(f"{left} messages to {self.topic} were not delivered within 60 s")


def _resp_head(args: Sequence[str]) -> bytes:
    """A command of `args` and one more argument, in RESP up to that last argument."""
    out = [b"*%d\r\n" % (len(args) + 1)]
    for arg in args:
        raw = arg.encode()
        out.append(b"$%d\r\n%b\r\n" % (len(raw), raw))
    return b"".join(out)


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create `topic` with `partitions` unless it exists (then it is left as it is)."""
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # not in __all__

    admin = AdminClient(kafkaconf.settings(bootstrap))
    future = admin.create_topics([NewTopic(topic, num_partitions=partitions)])[topic]
    try:
        future.result(timeout=30)
    except Exception as e:
        code = e.args[0].code() if e.args and hasattr(e.args[0], "code") else None
        if code != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


def delete_topic(bootstrap: str, topic: str) -> None:
    """Delete `topic`; a failure is left for the broker's retention (it is a scratch topic)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(kafkaconf.settings(bootstrap))
    with contextlib.suppress(Exception):  # best effort: a leftover scratch topic harms no run
        admin.delete_topics([topic])[topic].result(timeout=30)


def open_sink(target: str) -> Sink:
    if target.startswith("redis://") or target.startswith("rediss://"):
        return RedisSink(target)
    if target.startswith("kafka://"):
        return KafkaSink(target)
    if "://" in target:
        raise SinkError(
            f"output {target}: unknown scheme; use redis://HOST:PORT?stream=NAME, "
            "kafka://HOST:PORT?topic=NAME or a file path"
        )
    return FileSink(target)


def check_path(path: str) -> Path:
    target = Path(path)
    if target.is_dir():
        raise SinkError(f"output {path} is a directory: give a file path")
    if not target.parent.is_dir():
        raise SinkError(f"output {path}: directory {target.parent} does not exist")
    return target


def check(target: str) -> None:
    """Fail now, before any message is generated, if `target` cannot be written to (a file
    is not opened: opening a FIFO would use up its reader)."""
    if "://" not in target:
        if target != "-":
            check_path(target)
        return
    open_sink(target).close()
