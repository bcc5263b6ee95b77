"""Kafka end to end against a real Apache Kafka 4 broker (KRaft, started by the tests): the
generator's `kafka://` output, `dataworks consume --kafka` (at least once, with a consumer
killed), and what the operator reads (exact lag, partitions, members, the consumers' figures)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from dataworks.core.streams.sequences import check
from dataworks.streams import sinks
from dataworks.streams.brokering import Reading
from dataworks.streams.kafkabrokering import KafkaBroker
from tests.local import services
from tests.local.processes import STARTED

CLI = [sys.executable, "-m", "dataworks.cli.main"]


@pytest.fixture
def topic() -> str:
    return f"md-{uuid.uuid4().hex[:8]}"


def generate(target: str, *args: str) -> None:
    done = subprocess.run([*CLI, "generate", "-q", *args, "-o", target], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr


def produce(
    kafka: services.Kafka, topic: str, tmp_path: Path, *args: str, partitions: int = 4
) -> list[bytes]:
    """The same messages into the topic and into a file, whose lines the test reads."""
    generate(f"kafka://{kafka.bootstrap}?topic={topic}&partitions={partitions}", *args)
    out = tmp_path / "sent.jsonl"
    generate(str(out), *args)
    return out.read_bytes().splitlines()


def consumer(kafka: services.Kafka, topic: str, name: str, *args: str) -> subprocess.Popen[str]:
    cmd = [*CLI, "consume", "--kafka", kafka.bootstrap, "--topic", topic, "--group", "g", "--consumer", name]
    p = subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    STARTED.append(p)
    return p


def assigned(kafka: services.Kafka, group: str) -> dict[str, int]:
    """How many partitions each member of `group` holds now, by client id (none while the
    group's coordinator is not ready)."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    try:
        described = admin.describe_consumer_groups([group])[group].result(timeout=10)
    except KafkaException as e:
        not_ready = {
            KafkaError.NOT_COORDINATOR,
            KafkaError.COORDINATOR_NOT_AVAILABLE,
            KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        }
        if e.args[0].code() not in not_ready and not e.args[0].retriable():
            raise
        return {}
    return {
        m.client_id: len(m.assignment.topic_partitions if m.assignment else []) for m in described.members
    }


def report_of(p: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    return dict(json.loads(out))


def last_sequences(lines: list[bytes]) -> dict[str, int]:
    last: dict[str, int] = {}
    for line in lines:
        m = json.loads(line)
        last[m["symbol"]] = max(last.get(m["symbol"], 0), m["sequence_number"])
    return last


def read(kafka: services.Kafka, topic: str, start_from: str = "earliest") -> Reading:
    return asyncio.run(KafkaBroker(kafka.bootstrap).read(topic, "g", start_from=start_from))


def partitions_of(kafka: services.Kafka, topic: str, count: int) -> dict[str, set[int]]:
    """Each symbol's partitions, from `count` messages read back by a plain consumer."""
    from confluent_kafka import Consumer

    c = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap,
            "group.id": uuid.uuid4().hex,
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
        }
    )
    c.subscribe([topic])
    seen: dict[str, set[int]] = {}
    deadline = time.monotonic() + 60
    while count > 0:
        assert time.monotonic() < deadline, f"{count} messages never came back"
        for m in c.consume(500, timeout=0.5):
            assert m.error() is None, m.error()
            seen.setdefault(m.key().decode(), set()).add(m.partition())
            count -= 1
    c.close()
    return seen


def test_the_generator_keys_each_symbol_to_one_partition(
    kafka_server: services.Kafka, topic: str, tmp_path: Path
) -> None:
    sent = produce(kafka_server, topic, tmp_path, "--seed", "3", "--count", "5000", partitions=4)
    keyed = partitions_of(kafka_server, topic, len(sent))
    assert set(keyed) == {json.loads(line)["symbol"] for line in sent}
    assert all(len(p) == 1 for p in keyed.values())  # a symbol's messages stay in order
    assert len(set().union(*keyed.values())) > 1  # and the symbols spread over the partitions
    reading = read(kafka_server, topic)
    assert (reading.partitions, reading.lag.entries, reading.lag.exact, reading.added) == (
        4,
        5000,
        True,
        5000,
    )
    assert read(kafka_server, topic, "latest").lag.entries == 0  # a new group from now on: nothing waits


def test_an_unreachable_broker_is_refused_before_anything_is_generated(tmp_path: Path) -> None:
    port = services.free_port()
    done = subprocess.run(
        [*CLI, "generate", "-q", "--count", "10", "-o", f"kafka://127.0.0.1:{port}?topic=t"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode != 0
    assert f"cannot reach Kafka at 127.0.0.1:{port}" in done.stderr
    with pytest.raises(sinks.SinkError, match="partitions must be a whole number"):
        sinks.open_sink(f"kafka://127.0.0.1:{port}?topic=t&partitions=0")


def test_two_consumers_share_the_partitions_and_the_operator_reads_their_figures(
    kafka_server: services.Kafka, topic: str, tmp_path: Path
) -> None:
    kafka_server.create_topic(topic, 4)
    args = ("--block-ms", "200", "--publish-stats")
    ps = [consumer(kafka_server, topic, n, *args) for n in ("c1", "c2")]
    deadline = time.monotonic() + 60
    # Listed as members is not yet holding partitions: wait until each holds two, or the first
    # could take every message before the group's rebalance hands the second its own.
    while sorted(assigned(kafka_server, "g").values()) != [2, 2]:
        assert time.monotonic() < deadline, f"the partitions were never shared: {assigned(kafka_server, 'g')}"
        time.sleep(0.2)
    assert set(read(kafka_server, topic).consumers) == {"c1", "c2"}
    sent = produce(kafka_server, topic, tmp_path, "--seed", "4", "--count", "30000", partitions=4)
    while True:  # both joined, everything processed and committed, and both reported
        reading = read(kafka_server, topic)
        reporters = {r.consumer for r in reading.reports}
        if set(reading.consumers) == {"c1", "c2"} and reading.lag.entries == 0 and reporters == {"c1", "c2"}:
            break
        assert time.monotonic() < deadline, (
            f"lag {reading.lag}, members {reading.consumers}, reports {reporters}"
        )
        time.sleep(0.3)
    for p in ps:
        p.send_signal(signal.SIGTERM)
    reports = [report_of(p) for p in ps]
    result = check(reports, last_sequences(sent))
    assert result["lost"] == 0
    assert result["duplicated"] == 0  # a clean handover: each partition's commit came before its move
    assert sum(rep["processed"] for rep in reports) == 30000
    assert all(rep["processed"] > 0 for rep in reports)  # both had partitions
    assert sum(rep["outOfOrder"] for rep in reports) == 0  # each symbol in one partition, in order
    assert read(kafka_server, topic).consumers == {}  # SIGTERM left the group at once


def test_a_killed_consumers_partitions_move_and_nothing_is_lost(
    kafka_server: services.Kafka, topic: str, tmp_path: Path
) -> None:
    sent = produce(kafka_server, topic, tmp_path, "--seed", "5", "--count", "100000", partitions=4)
    committed = tmp_path / "doomed.json"
    doomed = consumer(
        kafka_server, topic, "doomed", "--batch", "200", "--report", str(committed), "--commit-every", "0.2"
    )
    deadline = time.monotonic() + 60
    while not committed.exists() or json.loads(committed.read_text())["processed"] < 5000:
        assert time.monotonic() < deadline, "the consumer never committed"
        time.sleep(0.01)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    assert read(kafka_server, topic).lag.entries > 0
    # The broker moves its partitions after the session timeout (6 s in these tests).
    reports = [
        report_of(p) for p in [consumer(kafka_server, topic, n, "--idle-exit", "10") for n in ("a", "b")]
    ]
    doomed_report = json.loads(committed.read_text())  # its last commit, written before its offsets
    result = check([doomed_report, *reports], last_sequences(sent))
    assert result["lost"] == 0
    assert result["distinct"] == 100000
    assert read(kafka_server, topic).lag.entries == 0


def secure(
    kafka: services.Kafka, mechanism: str, password: str = services.KAFKA_USER_PASSWORD
) -> dict[str, str]:
    """The KAFKA_* variables of a SASL_SSL client (streams/kafkaconf.py)."""
    return {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": mechanism,
        "KAFKA_SASL_USERNAME": services.KAFKA_USER,
        "KAFKA_SASL_PASSWORD": password,
        "KAFKA_SSL_CA_PEM": kafka.ca,
    }


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_a_consumer_and_the_operators_reading_over_sasl_and_tls(
    kafka_server: services.Kafka, topic: str, tmp_path: Path, mechanism: str
) -> None:
    """The broker's SASL_SSL listener (its certificate signed by the tests' CA): the consumer
    takes its credentials from the environment only; the operator's reader from its argument."""
    from dataworks.streams import kafkaconf

    sent = produce(kafka_server, topic, tmp_path, "--seed", "6", "--count", "2000", partitions=2)
    env = {**os.environ, **secure(kafka_server, mechanism)}
    cmd = [*CLI, "consume", "--kafka", kafka_server.secure_bootstrap, "--topic", topic, "--group", "g"]
    done = subprocess.run(
        [*cmd, "--consumer", "c1", "--limit", "2000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert check([json.loads(done.stdout)], last_sequences(sent))["lost"] == 0
    security = kafkaconf.from_env(secure(kafka_server, mechanism))
    reader = KafkaBroker(kafka_server.secure_bootstrap, security)
    reading = asyncio.run(reader.read(topic, "g", start_from="earliest"))
    assert (reading.lag.entries, reading.added, reading.partitions) == (0, 2000, 2)
    # A wrong password: the consumer stops with the broker's reason, and the reading fails.
    wrong = {**env, "KAFKA_SASL_PASSWORD": "wrong"}
    refused = subprocess.run(
        [*cmd, "--consumer", "c2", "--idle-exit", "8"],
        env=wrong,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode != 0
    assert "Authentication failed" in refused.stderr, refused.stderr[-2000:]
    bad = KafkaBroker(kafka_server.secure_bootstrap, security | {"sasl.password": "wrong"})
    with pytest.raises(Exception, match=r"(?i)authentication"):
        asyncio.run(bad.read(topic, "g", start_from="earliest"))
