"""The broker of a stream benchmark (edge layer): a Redis stream or a Kafka topic.

Each gives the benchmark what it needs from its broker, the same way: the generator's output
URL, the `dataworks consume` arguments that read it, a StreamingJob's source, the processes
to measure (a Redis it started), a restart for the `restartBroker` fault, and a reading once a
second of what was produced, what waits (lag, exact or not), what is delivered and not yet
acknowledged (Redis's pending; Kafka has none), and what was acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import redis

from dataworks.api.benchscenario import Scenario
from dataworks.streams import lagreading
from dataworks.streams.brokering import stats_key
from dataworks.streams.reportstore import read_kafka, read_redis, reports_key, reports_topic

GROUP = "bench"  # the consumer group of every benchmark
CEILING_COUNT = 200_000  # XADDs of the ceiling's measure
CEILING_BYTES = 230  # about a generated price update's size
KAFKA_CEILING_COUNT = 500_000  # records of the Kafka ceiling's measure (the JVM warms up first)
# Kafka's producer perf tool: its name in Apache's distribution, then in Confluent's and Homebrew's.
PERF_TOOLS = ("kafka-producer-perf-test.sh", "kafka-producer-perf-test")


class Broker(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def restart(self, seconds: float, later: list[tuple[float, Any]]) -> None: ...
    def target(self) -> str: ...
    def consume_args(self) -> list[str]: ...
    def source(self, group: str) -> dict[str, Any]: ...
    def reading(self, group: str) -> dict[str, Any]: ...
    def processes(self) -> list[subprocess.Popen[bytes] | None]: ...
    # What the broker takes from its own benchmark tool, messages/s (None without the tool),
    # and the tool's name:
    def ceiling(self) -> float | None: ...

    ceiling_tool: str

    # What consumers on a cluster leave in the broker (cli/benchcluster.py):
    def published(self, group: str) -> dict[str, dict[str, Any]]: ...  # each one's latest second
    def reports(self, group: str) -> list[dict[str, Any]]: ...  # each process's last report


@dataclass
class RedisServer:
    """redis-server on a loopback port, in a directory of its own (AOF there when asked)."""

    dir: Path
    appendfsync: str
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if not self.port:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]
        aof = (
            ["--appendonly", "no"]
            if self.appendfsync == "off"
            else ["--appendonly", "yes", "--appendfsync", self.appendfsync]
        )
        cmd = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(self.dir),
        ]
        self.proc = subprocess.Popen(  # no other thread runs in a Redis benchmark (see _with_parent)
            [*cmd, *aof],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            preexec_fn=_with_parent,  # noqa: PLW1509
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                redis.Redis(port=self.port).ping()
                return
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


class RedisBroker:
    """A Redis the benchmark starts (unless the scenario names one); its stream is emptied."""

    ceiling_tool = "redis-benchmark XADD, pipelined 64"

    def __init__(self, scenario: Scenario, workdir: Path) -> None:
        self.setup, self.workdir = scenario.redis, workdir
        self.url = self.setup.url or ""
        self.server: RedisServer | None = None

    def start(self) -> None:
        if not self.setup.url:
            (self.workdir / "redis").mkdir()
            self.server = RedisServer(self.workdir / "redis", self.setup.appendfsync)
            self.server.start()
            self.url = f"redis://127.0.0.1:{self.server.port}/0"
        client = redis.Redis.from_url(self.url)
        stream = self.setup.stream
        client.delete(stream, reports_key(stream, GROUP), stats_key(stream, GROUP))
        client.close()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def restart(self, seconds: float, later: list[tuple[float, Any]]) -> None:
        if self.server is None:
            raise ValueError("restartBroker needs a Redis the benchmark started (no redis.url)")
        self.server.stop()
        later.append((time.monotonic() + seconds, self.server.start))

    def target(self) -> str:
        return f"{self.url}?stream={self.setup.stream}"

    def consume_args(self) -> list[str]:
        return ["--redis", self.url, "--stream", self.setup.stream]

    def source(self, group: str) -> dict[str, Any]:
        return {"redis": {"address": self.url, "stream": self.setup.stream, "group": group}}

    def processes(self) -> list[subprocess.Popen[bytes] | None]:
        return [self.server.proc] if self.server is not None else []

    def ceiling(self) -> float | None:
        """redis-benchmark's XADD of a message-sized entry, pipelined 64 deep from one client,
        into a scratch key (deleted after): the rate this Redis takes on this machine now,
        which the producer's and the consumers' rates in the same run are set against."""
        u = urlsplit(self.url)
        cmd = ["redis-benchmark", "-h", u.hostname or "127.0.0.1", "-p", str(u.port or 6379)]
        if u.password:
            cmd += ["-a", u.password]
        key = f"dataworks:ceiling:{self.setup.stream}"
        cmd += ["-q", "-n", str(CEILING_COUNT), "-P", "64", "XADD", key, "*", "data", "x" * CEILING_BYTES]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            return None  # no redis-benchmark here: the figures stand alone
        finally:
            client = redis.Redis.from_url(self.url)
            client.delete(key)
            client.close()
        rates = re.findall(r"([\d.]+) requests per second", out)
        return float(rates[-1]) if rates else None

    def published(self, group: str) -> dict[str, dict[str, Any]]:
        r: Any = redis.Redis.from_url(self.url)
        try:
            raw = r.hgetall(stats_key(self.setup.stream, group))
        except redis.RedisError:
            return {}  # a gap in the samples
        finally:
            r.close()
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def reports(self, group: str) -> list[dict[str, Any]]:
        r = redis.Redis.from_url(self.url)
        try:
            return read_redis(r, self.setup.stream, group)
        finally:
            r.close()

    def reading(self, group: str) -> dict[str, Any]:
        stream, row = self.setup.stream, dict[str, Any]()
        try:
            r: Any = redis.Redis.from_url(self.url)
            info = r.xinfo_stream(stream)
            row["produced"] = int(info["entries-added"])
            groups = [g for g in r.xinfo_groups(stream) if g["name"] in (group, group.encode())]
            if groups:
                lag = lagreading.read(r, stream, group)
                pending, delivered = int(groups[0]["pending"]), groups[0].get("entries-read")
                row |= {"lag": lag.entries, "lagExact": lag.exact, "pending": pending}
                if delivered is not None:  # Redis's own count: what was delivered and acknowledged
                    row["acked"] = int(delivered) - pending
            r.close()
        except redis.RedisError as e:
            row["error"] = type(e).__name__
        return row


class KafkaBroker:
    """An existing Kafka (the scenario's bootstrap servers); each run gets a topic of its own,
    `<topic>-<unix time>`, created with the scenario's partitions, so no earlier run's messages
    or commits are read."""

    ceiling_tool = "kafka-producer-perf-test"

    def __init__(self, scenario: Scenario, workdir: Path) -> None:
        assert scenario.kafka is not None
        self.setup = scenario.kafka
        self.topic = f"{self.setup.topic}-{int(time.time())}"
        self.reader: Any = None
        self.last_reports: list[Any] = []

    def start(self) -> None:
        from dataworks.streams.kafkabrokering import KafkaBroker as Reader
        from dataworks.streams.sinks import create_topic

        create_topic(self.setup.bootstrap, self.topic, self.setup.partitions)
        create_topic(self.setup.bootstrap, reports_topic(self.topic), 1)  # for consumers on a cluster
        self.reader = Reader(self.setup.bootstrap)

    def stop(self) -> None:
        return None  # the topic stays, for a look afterwards; the broker is not ours

    def restart(self, seconds: float, later: list[tuple[float, Any]]) -> None:
        raise ValueError("restartBroker needs a broker the benchmark started: a Redis, not kafka")

    def target(self) -> str:
        return f"kafka://{self.setup.bootstrap}?topic={self.topic}"

    def consume_args(self) -> list[str]:
        return ["--kafka", self.setup.bootstrap, "--topic", self.topic]

    def source(self, group: str) -> dict[str, Any]:
        return {"kafka": {"bootstrapServers": self.setup.bootstrap, "topic": self.topic, "group": group}}

    def processes(self) -> list[subprocess.Popen[bytes] | None]:
        return []

    def ceiling(self) -> float | None:
        """Kafka's own producer perf tool (the Java client Kafka ships, as a distribution's
        bin/kafka-producer-perf-test.sh runs it), producing message-sized records as fast as it
        can into a scratch topic with the run's partitions, idempotent, acknowledged by every
        in-sync replica, as the generator produces: the rate this broker takes on this machine
        now. None when the tool is not on PATH."""
        from dataworks.streams.sinks import create_topic, delete_topic

        tool = next((t for t in PERF_TOOLS if shutil.which(t)), None)
        if tool is None:
            return None
        bootstrap, topic = self.setup.bootstrap, f"{self.topic}-ceiling"
        create_topic(bootstrap, topic, self.setup.partitions)
        cmd = [
            *(tool, "--topic", topic, "--num-records", str(KAFKA_CEILING_COUNT)),
            *("--record-size", str(CEILING_BYTES), "--throughput", "-1"),
            *("--producer-props", f"bootstrap.servers={bootstrap}", "acks=all", "enable.idempotence=true"),
            "linger.ms=5",  # as the generator's producer
        ]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        finally:
            delete_topic(bootstrap, topic)
        # The last line sums the run: "500000 records sent, 95057.0 records/sec (20.84 MB/sec), ..."
        rates = re.findall(r"records sent, ([\d.]+) records/sec", out)
        return float(rates[-1]) if rates else None

    def reading(self, group: str) -> dict[str, Any]:
        try:
            got = asyncio.run(self.reader.read(self.topic, group, start_from="earliest"))
        except Exception as e:  # a reading that failed is a gap in the samples, not the end
            return {"error": type(e).__name__}
        self.last_reports = got.reports
        produced, lag = got.added, got.lag.entries
        return {"produced": produced, "lag": lag, "lagExact": True, "pending": 0, "acked": produced - lag}

    def published(self, group: str) -> dict[str, dict[str, Any]]:
        """The figures in the group's last commits, as the last reading found them."""
        return {
            rep.consumer: {
                "t": rep.at,
                "processed": rep.processed,
                "busy": rep.busy,
                "p50": rep.p50_ms,
                "p99": rep.p99_ms,
                "cpuUser": rep.cpu_user,
                "cpuSystem": rep.cpu_system,
                "rss": rep.rss,
            }
            for rep in self.last_reports
        }

    def reports(self, group: str) -> list[dict[str, Any]]:
        return read_kafka(self.setup.bootstrap, self.topic)


def open_broker(scenario: Scenario, workdir: Path) -> Broker:
    return KafkaBroker(scenario, workdir) if scenario.kafka is not None else RedisBroker(scenario, workdir)


def _with_parent() -> None:
    """In the forked child, before redis-server runs: SIGTERM when the benchmark's thread that
    started it ends (Linux's PR_SET_PDEATHSIG), so a killed benchmark leaves no server behind.
    redis-server cannot watch its parent as our own processes do (DATAWORKS_EXIT_WITH_PARENT).
    The benchmark starts and restarts it from its main thread, and a Redis benchmark runs no
    other thread (only a Kafka reading uses asyncio's, and Kafka has no redis-server)."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
