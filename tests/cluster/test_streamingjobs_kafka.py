"""A StreamingJob on Kafka, on the real control plane, with consumers that run for real.

The Kafka example's spec, pointed at the Apache Kafka broker the tests start, consumes a
2-partition topic: every pod the Deployment controller creates runs `dataworks consume
--kafka` from this checkout. A burst asks for more consumers than the topic has partitions, and
the operator holds the count at the cap and says so; the lag it reports is the group's exact
lag from the committed offsets, and it reaches 0.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from lightkube import Client, codecs
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Event, Secret

from dataworks.streams.kafkabrokering import KafkaBroker
from tests.cluster.streams import until
from tests.local import services

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "streams" / "kafka-streamingjob.yaml"
CLI = [sys.executable, "-m", "dataworks.cli.main"]


@pytest.mark.usefixtures("consumers_run_for_real", "operator")
def test_the_kafka_example_consumes_a_topic_and_is_capped_by_its_partitions(
    client: Client, namespace: str, kafka_broker: services.Kafka
) -> None:
    body = yaml.safe_load(EXAMPLE.read_text())
    name = body["metadata"]["name"]
    body["spec"]["source"]["kafka"] |= {"bootstrapServers": kafka_broker.bootstrap, "topic": namespace}
    # Batches of 10 keep one consumer from draining the burst alone before a second is needed.
    body["spec"]["batchSize"] = 10
    kafka_broker.create_topic(namespace, 2)
    client.create(codecs.from_dict(body), namespace=namespace)
    until(client, name, namespace, lambda s: s.get("state") == "Running", "one consumer running", timeout=60)

    asked: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            asked.append(client.get(Deployment, name, namespace=namespace).spec.replicas or 0)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    count = 200_000
    target = f"kafka://{kafka_broker.bootstrap}?topic={namespace}"
    gen = subprocess.run(
        [*CLI, "generate", "-q", "--count", str(count), "-o", target],
        capture_output=True,
        text=True,
        check=False,
    )
    assert gen.returncode == 0, gen.stderr
    try:
        st = until(
            client,
            name,
            namespace,
            lambda s: s.get("lag") == 0 and s.get("arrivalRate") == 0,
            "the topic drained",
            timeout=180,
        )
    finally:
        done.set()
        sampler.join()
    assert st["partitions"] == 2
    assert max(asked) == 2, f"consumer counts asked: {sorted(set(asked))}"  # more wanted, held at the cap
    messages = [
        e.message or "" for e in client.list(Event, namespace=namespace) if e.involvedObject.name == name
    ]
    assert any("capped at the topic's 2 partitions (6 asked)" in m for m in messages), messages
    shown = subprocess.run(
        [*CLI, "describe", f"stj/{name}", "-n", namespace], capture_output=True, text=True, check=False
    )
    assert shown.returncode == 0, shown.stderr
    assert f"topic {namespace} group processors at {kafka_broker.bootstrap}, 2 partitions" in shown.stdout
    assert "Lag:         0 waiting" in shown.stdout


SASL_EXAMPLE = EXAMPLE.parent / "kafka-sasl-streamingjob.yaml"


@pytest.mark.usefixtures("consumers_run_for_real", "operator")
def test_the_sasl_example_consumes_over_tls_with_credentials_from_secrets_only(
    client: Client, namespace: str, kafka_broker: services.Kafka
) -> None:
    """The broker's SASL_SSL listener, its certificate signed by the tests' CA: the consumers
    and the operator authenticate with the Secrets' SCRAM user; a wrong password, or a Secret
    that is not there, is a Degraded StreamingJob whose message says which."""
    user = {"username": services.KAFKA_USER, "password": services.KAFKA_USER_PASSWORD}
    client.create(Secret(metadata=ObjectMeta(name="kafka-user"), stringData=user), namespace=namespace)
    ca = {"ca.crt": kafka_broker.ca}
    client.create(Secret(metadata=ObjectMeta(name="kafka-ca"), stringData=ca), namespace=namespace)
    body = yaml.safe_load(SASL_EXAMPLE.read_text())
    name = body["metadata"]["name"]
    body["spec"]["source"]["kafka"] |= {"bootstrapServers": kafka_broker.secure_bootstrap, "topic": namespace}
    kafka_broker.create_topic(namespace, 2)
    client.create(codecs.from_dict(body), namespace=namespace)
    until(client, name, namespace, lambda s: s.get("state") == "Running", "a consumer running", timeout=60)
    env = client.get(Deployment, name, namespace=namespace).spec.template.spec.containers[0].env
    literal = {e.name: e.value for e in env if e.value is not None}
    assert literal["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert not {"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CA_PEM"} & set(literal)
    target = f"kafka://{kafka_broker.bootstrap}?topic={namespace}"  # the producer: the plaintext listener
    gen = subprocess.run(
        [*CLI, "generate", "-q", "--count", "5000", "-o", target], capture_output=True, text=True, check=False
    )
    assert gen.returncode == 0, gen.stderr
    produced = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    deadline = time.monotonic() + 90
    while True:  # the consumers committed all 5,000 (read here on the plaintext listener)
        reading = asyncio.run(
            KafkaBroker(kafka_broker.bootstrap).read(namespace, "secure-processors", start_from="earliest")
        )
        if (reading.added, reading.lag.entries) == (5000, 0):
            break
        assert time.monotonic() < deadline, reading
        time.sleep(0.5)
    # and the operator, over SASL_SSL, read the same in a status written after the messages came
    st = until(
        client,
        name,
        namespace,
        lambda s: s.get("lag") == 0 and (s.get("lastReconcileTime") or "") > produced,
        "the operator's reading over SASL_SSL",
        timeout=30,
    )
    assert st["partitions"] == 2
    # A wrong password: the operator's reading is refused, and says why.
    client.patch(Secret, "kafka-user", {"stringData": {"password": "wrong"}}, namespace=namespace)
    st = until(
        client,
        name,
        namespace,
        lambda s: "Authentication failed" in (s.get("message") or ""),
        "the refusal reported",
        timeout=60,
    )
    assert st["state"] == "Degraded"
    # No Secret at all: the message names the field.
    absent = yaml.safe_load(SASL_EXAMPLE.read_text())
    absent["metadata"]["name"] = "no-user"
    absent["spec"]["source"]["kafka"] |= {
        "bootstrapServers": kafka_broker.secure_bootstrap,
        "topic": namespace,
    }
    absent["spec"]["source"]["kafka"]["sasl"]["secretName"] = "absent"
    client.create(codecs.from_dict(absent), namespace=namespace)
    st = until(client, "no-user", namespace, lambda s: s.get("state") == "Degraded", "Degraded", timeout=30)
    assert st["message"].startswith(
        "spec.source.kafka.sasl.secretName: cannot read key 'username' of Secret absent"
    )
