"""A StreamingJob's Deployment: restricted consumers named after their pods, the password from a
Secret only, the active strategy in the template, and a template hash that follows it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dataworks.api import streamingjob as api
from dataworks.core.streamingjobs.strategies import PRESETS
from dataworks.manifests import streamingjobs as manifests
from dataworks.manifests.owner import Owner

OWNER = Owner(info=api.INFO, name="ticks", namespace="ns", uid="u-1")


def spec(**over: Any) -> api.StreamingJobSpec:
    redis = {
        "address": "redis://r:6379/0",
        "stream": "s",
        "group": "g",
        "passwordSecret": {"name": "r", "key": "pw"},
    }
    return api.StreamingJobSpec.model_validate({"source": {"redis": redis}} | over)


def test_consumers_are_restricted_and_the_password_comes_from_the_secret() -> None:
    d = manifests.deployment(OWNER, spec(), PRESETS["throughput"], "img:1", 3)
    assert d["spec"]["replicas"] == 3
    assert d["metadata"]["ownerReferences"][0]["kind"] == "StreamingJob"
    assert d["spec"]["selector"]["matchLabels"] == {"dataworks.io/streamingjob": "ticks"}
    pod = d["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [c] = pod["containers"]
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    env = {e["name"]: e for e in c["env"]}
    assert env["REDIS_PASSWORD"] == {
        "name": "REDIS_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "r", "key": "pw"}},
    }
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert all("value" not in e or e["name"] != "REDIS_PASSWORD" for e in c["env"])
    cmd = c["command"]
    assert cmd[:2] == ["dataworks", "consume"]
    assert cmd[cmd.index("--consumer") + 1] == "$(POD_NAME)"
    assert cmd[cmd.index("--batch") + 1] == "500"  # the throughput strategy's
    assert "--publish-stats" in cmd


def test_the_strategy_sets_batches_and_spot_tolerations_and_changes_the_hash() -> None:
    fast = manifests.template(OWNER, spec(), PRESETS["latency"], "img:1")
    cheap = manifests.template(OWNER, spec(), PRESETS["cost"], "img:1")
    assert "tolerations" not in fast["spec"]
    assert {t["key"] for t in cheap["spec"]["tolerations"]} >= {"cloud.google.com/gke-spot"}
    cmd = fast["spec"]["containers"][0]["command"]
    assert cmd[cmd.index("--batch") + 1] == "100"
    hashes = {manifests.template_hash({"spec": {"template": t}}) for t in (fast, cheap)}
    assert len(hashes) == 2
    again = manifests.template(OWNER, spec(), PRESETS["latency"], "img:1")
    assert manifests.template_hash({"spec": {"template": again}}) in hashes


def test_the_spec_overrides_the_strategys_batch() -> None:
    t = manifests.template(OWNER, spec(batchSize=42, blockMs=0), PRESETS["cost"], "img:1")
    cmd = t["spec"]["containers"][0]["command"]
    assert (cmd[cmd.index("--batch") + 1], cmd[cmd.index("--block-ms") + 1]) == ("42", "0")


def test_a_hung_consumer_fails_its_liveness_probe_on_its_own_alive_file() -> None:
    t = manifests.template(OWNER, spec(), PRESETS["latency"], "img:1")
    [c] = t["spec"]["containers"]
    assert c["command"][c["command"].index("--alive-file") + 1] == manifests.ALIVE_FILE
    assert c["volumeMounts"] == [{"name": "alive", "mountPath": manifests.ALIVE_DIR}]
    assert t["spec"]["volumes"][0]["emptyDir"]["medium"] == "Memory"
    probe = c["livenessProbe"]["exec"]["command"]
    assert probe[:2] == ["python", "-c"]
    assert probe[2] == manifests.probe_script(manifests.ALIVE_FILE)


def test_the_probe_passes_on_a_fresh_file_and_fails_on_a_stale_or_missing_one(tmp_path: Path) -> None:
    alive = tmp_path / "alive"

    def probe() -> int:
        script = manifests.probe_script(str(alive), seconds=5)
        return subprocess.run([sys.executable, "-c", script], check=False).returncode

    assert probe() == 1
    alive.touch()
    assert probe() == 0
    old = time.time() - 6
    os.utime(alive, (old, old))
    assert probe() == 1


def test_a_kafka_source_consumes_the_topic_with_no_claiming() -> None:
    kafka = {"bootstrapServers": "k-0:9092,k-1:9092", "topic": "ticks", "group": "g", "startFrom": "latest"}
    s = api.StreamingJobSpec.model_validate({"source": {"kafka": kafka}})
    [c] = manifests.deployment(OWNER, s, PRESETS["throughput"], "img:1", 1)["spec"]["template"]["spec"][
        "containers"
    ]
    cmd = c["command"]
    assert cmd[cmd.index("--kafka") + 1] == "k-0:9092,k-1:9092"
    assert cmd[cmd.index("--topic") + 1] == "ticks"
    assert cmd[cmd.index("--start-from") + 1] == "latest"
    assert "--redis" not in cmd
    assert "--claim-idle-ms" not in cmd
    assert "REDIS_PASSWORD" not in {e["name"] for e in c["env"]}


def test_a_source_names_exactly_one_broker() -> None:
    import pytest
    from pydantic import ValidationError

    redis = {"address": "redis://r:6379/0", "stream": "s", "group": "g"}
    kafka = {"bootstrapServers": "k:9092", "topic": "t", "group": "g"}
    for source in ({}, {"redis": redis, "kafka": kafka}):
        with pytest.raises(ValidationError, match="exactly one of redis and kafka"):
            api.StreamingJobSpec.model_validate({"source": source})
    with pytest.raises(ValidationError, match="bootstrapServers"):
        api.StreamingJobSpec.model_validate({"source": {"kafka": {**kafka, "bootstrapServers": "kafka://k"}}})


def test_a_sink_gets_its_query_url_and_the_secrets_keys_never_literal_values() -> None:
    processing = {
        "type": "sink",
        "query": "SELECT symbol, avg(price) AS price FROM batch GROUP BY symbol",
        "sink": {"url": "s3://ticks/avg", "secretName": "store"},
    }
    s = spec(processing=processing)
    [c] = manifests.deployment(OWNER, s, PRESETS["throughput"], "img:1", 1)["spec"]["template"]["spec"][
        "containers"
    ]
    cmd = c["command"]
    assert cmd[cmd.index("--processing") + 1] == "sink"
    assert cmd[cmd.index("--query") + 1] == processing["query"]
    assert cmd[cmd.index("--sink-url") + 1] == "s3://ticks/avg"
    assert c["envFrom"] == [{"secretRef": {"name": "store"}}]


def test_processing_needs_what_its_type_uses_and_one_select() -> None:
    import pytest
    from pydantic import ValidationError

    cases = {
        "needs a query": {"type": "sql"},
        "needs sink.url": {"type": "sink"},
        "type count only counts": {"type": "count", "query": "SELECT 1"},
        'syntax error at or near "SELEC"': {"type": "sql", "query": "SELEC symbol FROM batch"},
        "exactly one SELECT": {"type": "sql", "query": "DELETE FROM batch"},
        "sink.url": {"type": "sink", "sink": {"url": "ftp://x/y"}},
        "type alert needs alert.rules": {"type": "alert"},
        "alert is for type alert only": {
            "type": "count",
            "alert": {"rules": [{"name": "a", "when": "true"}]},
        },
        "type alert evaluates alert.rules": {
            "type": "alert",
            "query": "SELECT 1",
            "alert": {"rules": [{"name": "a", "when": "true"}]},
        },
        "exactly one of when": {"type": "alert", "alert": {"rules": [{"name": "a"}]}},
        "rule names must be distinct": {
            "type": "alert",
            "alert": {"rules": [{"name": "a", "when": "true"}, {"name": "a", "when": "false"}]},
        },
        "type container needs container.image": {"type": "container"},
        "container is for type container only": {
            "type": "count",
            "container": {"image": "i", "command": ["x"]},
        },
        "a webhook has exactly one of url or secret": {
            "type": "alert",
            "alert": {"rules": [{"name": "a", "when": "true"}], "webhooks": [{}]},
        },
    }
    for message, processing in cases.items():
        with pytest.raises(ValidationError, match=message):
            spec(processing=processing)


def test_consumer_reports_go_to_the_broker_only_when_asked_and_change_the_template_hash() -> None:
    plain = manifests.template(OWNER, spec(), PRESETS["latency"], "img:1")
    audited = manifests.template(OWNER, spec(), PRESETS["latency"], "img:1", reports=True)
    assert "--report" not in plain["spec"]["containers"][0]["command"]
    command = audited["spec"]["containers"][0]["command"]
    assert command[command.index("--report") + 1] == "broker"
    hashes = {manifests.template_hash({"spec": {"template": t}}) for t in (plain, audited)}
    assert len(hashes) == 2  # annotating a running StreamingJob rolls its consumers


def test_alert_rules_go_to_the_consumers_as_json_and_a_webhook_secret_as_env() -> None:
    import json

    alert = {
        "rules": [{"name": "jump", "priceMove": {"percent": 2, "windowSeconds": 5}}],
        "stream": "alerts",
        "webhooks": [{"url": "http://hook:8080/x"}, {"secret": {"name": "slack", "key": "url"}}],
    }
    s = spec(processing={"type": "alert", "alert": alert})
    [c] = manifests.deployment(OWNER, s, PRESETS["latency"], "img:1", 1)["spec"]["template"]["spec"][
        "containers"
    ]
    cmd = c["command"]
    assert cmd[cmd.index("--processing") + 1] == "alert"
    assert json.loads(cmd[cmd.index("--alert") + 1]) == alert  # the Secret's name, not its URL
    [hook] = [e for e in c["env"] if e["name"].startswith("DATAWORKS_WEBHOOK_")]
    assert hook == {
        "name": "DATAWORKS_WEBHOOK_1",
        "valueFrom": {"secretKeyRef": {"name": "slack", "key": "url"}},
    }


def test_the_container_processing_runs_the_users_image_with_the_consumer_arguments_as_json() -> None:
    import json

    own = {"image": "example.com/enricher:1", "command": ["python", "-m", "enricher"], "args": ["-v"],
           "secretName": "enricher"}  # fmt: skip
    s = spec(processing={"type": "container", "container": own})
    [c] = manifests.deployment(OWNER, s, PRESETS["latency"], "img:1", 1)["spec"]["template"]["spec"][
        "containers"
    ]
    assert c["image"] == "example.com/enricher:1"
    assert c["command"] == ["python", "-m", "enricher", "-v"]
    [raw] = [e["value"] for e in c["env"] if e["name"] == "DATAWORKS_CONSUMER"]
    consume = json.loads(raw)  # `dataworks consume`'s arguments, which the library parses
    assert consume[consume.index("--consumer") + 1] == "$(POD_NAME)"  # the kubelet expands it in env too
    assert consume[consume.index("--processing") + 1] == "count"  # the program is the processing
    assert consume[consume.index("--batch") + 1] == str(PRESETS["latency"].batch_size)
    assert c["envFrom"] == [{"secretRef": {"name": "enricher"}}]
    assert any(e["name"] == "REDIS_PASSWORD" for e in c["env"])  # the source's, as for any consumer
    assert "livenessProbe" in c  # the library touches the alive file as `dataworks consume` does


def kafka(**security: Any) -> api.StreamingJobSpec:
    source = {"bootstrapServers": "k:9093", "topic": "t", "group": "g"} | security
    return api.StreamingJobSpec.model_validate({"source": {"kafka": source}})


def test_kafka_tls_and_sasl_reach_the_consumers_as_settings_and_secret_references() -> None:
    sasl = {"mechanism": "SCRAM-SHA-256", "secretName": "kafka-user"}
    cases = [
        (kafka(), {}),
        (kafka(tls={}), {"KAFKA_SECURITY_PROTOCOL": "SSL"}),
        (
            kafka(sasl=sasl),
            {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"},
        ),
        (
            kafka(sasl=sasl, tls={"caSecret": {"name": "kafka-ca", "key": "ca.crt"}}),
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"},
        ),
    ]
    for s, settings in cases:
        d = manifests.deployment(OWNER, s, PRESETS["throughput"], "img:1", 1)
        [c] = d["spec"]["template"]["spec"]["containers"]
        kafka_env = {e["name"]: e for e in c["env"] if e["name"].startswith("KAFKA_")}
        assert {n: e["value"] for n, e in kafka_env.items() if "value" in e} == settings
        refs = {n: e["valueFrom"]["secretKeyRef"] for n, e in kafka_env.items() if "valueFrom" in e}
        expected = {}
        if s.source.kafka and s.source.kafka.sasl:
            expected |= {
                "KAFKA_SASL_USERNAME": {"name": "kafka-user", "key": "username"},
                "KAFKA_SASL_PASSWORD": {"name": "kafka-user", "key": "password"},
            }
        if s.source.kafka and s.source.kafka.tls and s.source.kafka.tls.ca_secret:
            expected["KAFKA_SSL_CA_PEM"] = {"name": "kafka-ca", "key": "ca.crt"}
        assert refs == expected
        assert "KAFKA_SASL_PASSWORD" not in {n for n, e in kafka_env.items() if "value" in e}
