"""StreamingJob bad input on the real control plane: what the CRD's schema and CEL rules refuse
at the API server, naming the field, and what only the operator can check (Failed, an Event,
and no Deployment)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client, codecs
from lightkube.resources.apps_v1 import Deployment

from tests.cluster.streams import reasons, until

RULE = {"name": "r", "when": "true"}
KAFKA = {"bootstrapServers": "k-0:9092", "topic": "t", "group": "g"}


def _source(**over: Any) -> dict[str, Any]:
    return {"redis": {"address": "redis://redis:6379/0", "stream": "s", "group": "g", **over}}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param(
            {"source": _source(address="redis://:pw@redis:6379")},
            "spec.source.redis.address",
            id="password-in-the-address",
        ),
        pytest.param(
            {"source": _source(address="http://redis:6379")}, "spec.source.redis.address", id="not-redis"
        ),
        pytest.param({"source": _source(stream="")}, "spec.source.redis.stream", id="empty-stream"),
        pytest.param({"source": _source(startFrom="middle")}, "spec.source.redis.startFrom", id="start-from"),
        pytest.param({}, "spec.source", id="no-source"),
        pytest.param(
            {"source": {**_source(), "kafka": KAFKA}},
            "spec.source needs exactly one of redis and kafka",
            id="redis-and-kafka",
        ),
        pytest.param(
            {"source": {"kafka": {**KAFKA, "bootstrapServers": "kafka://k:9092"}}},
            "spec.source.kafka.bootstrapServers",
            id="kafka-url-not-servers",
        ),
        pytest.param(
            {"source": {"kafka": {**KAFKA, "topic": "a topic"}}}, "spec.source.kafka.topic", id="kafka-topic"
        ),
        pytest.param(
            {"scaling": {"minReplicas": 5, "maxReplicas": 2}},
            "must not exceed spec.scaling.maxReplicas",
            id="min-above-max",
        ),
        pytest.param({"scaling": {"maxReplicas": 0}}, "spec.scaling.maxReplicas", id="max-zero"),
        pytest.param({"scaling": {"queueDelaySeconds": 0}}, "spec.scaling.queueDelaySeconds", id="slo-zero"),
        pytest.param({"strategy": {"default": "fast"}}, "spec.strategy.default", id="unknown-strategy"),
        pytest.param(
            {"strategy": {"schedule": [{"strategy": "cost", "start": "25:00", "end": "06:00"}]}},
            "spec.strategy.schedule[0].start",
            id="hour-25",
        ),
        pytest.param(
            {"strategy": {"loadRules": [{"strategy": "cost", "aboveRate": 0}]}},
            "spec.strategy.loadRules[0].aboveRate",
            id="rate-zero",
        ),
        pytest.param({"processing": {"type": "spark"}}, "spec.processing.type", id="unknown-processing"),
        pytest.param({"processing": {"type": "sql"}}, "type sql needs a query", id="sql-without-query"),
        pytest.param(
            {"processing": {"type": "sink", "sink": {"url": "ftp://x/y"}}},
            "spec.processing.sink.url",
            id="sink-not-a-store",
        ),
        pytest.param(
            {"processing": {"type": "alert"}}, "type alert needs alert.rules", id="alert-without-rules"
        ),
        pytest.param(
            {"processing": {"type": "alert", "alert": {"rules": [{"name": "r"}]}}},
            "exactly one of when (a CEL condition) or priceMove",
            id="alert-rule-without-a-test",
        ),
        pytest.param(
            {
                "processing": {
                    "type": "alert",
                    "alert": {"rules": [{"name": "r", "when": "true"}], "webhooks": [{"url": "slack"}]},
                }
            },
            "spec.processing.alert.webhooks[0].url",
            id="webhook-not-a-url",
        ),
        pytest.param(
            {"processing": {"type": "container"}},
            "type container needs container.image and container.command",
            id="container-without-its-program",
        ),
        pytest.param(
            {"processing": {"type": "container", "container": {"command": ["enrich"]}}},
            "spec.processing.container.image",
            id="container-without-an-image",
        ),
        pytest.param(
            {"source": {"kafka": {**KAFKA, "sasl": {"mechanism": "GSSAPI", "secretName": "u"}}}},
            "spec.source.kafka.sasl.mechanism",
            id="kafka-sasl-mechanism",
        ),
        pytest.param(
            {"source": {"kafka": {**KAFKA, "sasl": {"mechanism": "PLAIN"}}}},
            "spec.source.kafka.sasl.secretName",
            id="kafka-sasl-without-its-secret",
        ),
        pytest.param({"batchSize": 0}, "spec.batchSize", id="batch-zero"),
        pytest.param({"replica": 3}, "replica", id="misspelt-field"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    cluster: Any, namespace: str, tmp_path: Path, spec: dict[str, Any], field: str
) -> None:
    body = {
        "apiVersion": "dataworks.io/v1",
        "kind": "StreamingJob",
        "metadata": {"name": "bad"},
        "spec": {"source": _source(), **spec},
    }
    if not spec:
        del body["spec"]["source"]
    path = tmp_path / "stj.yaml"
    path.write_text(yaml.safe_dump(body))
    out = cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", str(path), check=False)
    assert out.returncode != 0
    assert field in out.stderr, out.stderr


MARS = {"strategy": "cost", "start": "22:00", "end": "06:00", "timezone": "Mars/Olympus"}


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {"strategy": {"schedule": [MARS]}},
            "spec.strategy.schedule.0.timezone: Value error, unknown time zone 'Mars/Olympus'",
            id="time-zone",
        ),
        pytest.param(
            {"processing": {"type": "sql", "query": "DELETE FROM batch"}},
            "spec.processing: Value error, query must be exactly one SELECT statement",
            id="not-a-select",
        ),
        pytest.param(
            {"processing": {"type": "alert", "alert": {"rules": [{"name": "jump", "when": "m.price >"}]}}},
            "spec.processing.alert.rules[0].when (jump): ",
            id="alert-cel",
        ),
    ],
)
def test_what_only_the_operator_can_check_fails_the_streamingjob_and_nothing_starts(
    client: Client, namespace: str, spec: dict[str, Any], message: str
) -> None:
    """A time zone, or a query, the API server cannot check: Failed, naming the field; no Deployment."""
    body = {
        "apiVersion": "dataworks.io/v1",
        "kind": "StreamingJob",
        "metadata": {"name": "martian"},
        "spec": {"source": _source(), **spec},
    }
    client.create(codecs.from_dict(body), namespace=namespace)
    st = until(client, "martian", namespace, lambda s: s.get("state") == "Failed", "Failed")
    assert st["message"].startswith(message), st["message"]
    assert "ValidationFailed" in reasons(client, namespace, "martian")
    assert not list(client.list(Deployment, namespace=namespace))
