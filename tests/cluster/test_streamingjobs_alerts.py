"""The alert processing on the real control plane: examples/streams/alert-streamingjob.yaml,
with its Redis and its webhook pointed at the test's, run by the operator with a consumer that
runs for real. Every alert the rules raise over the messages sent reaches the output stream
and the webhook (whose URL the consumer gets from a Secret), in the order of the messages."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from lightkube import Client, codecs
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Secret

from dataworks.core.streams.alerts import Alerts, Rule
from tests.cluster.conftest import REDIS_PASSWORD as PASSWORD
from tests.cluster.streams import until
from tests.local import services
from tests.local.test_consume_alerts import Hook

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "dataworks.cli.main"]


def secret(client: Client, namespace: str, name: str, key: str, value: str) -> None:
    data = {key: base64.b64encode(value.encode()).decode()}
    client.create(Secret(metadata=ObjectMeta(name=name), data=data), namespace=namespace)


@pytest.mark.usefixtures("consumers_run_for_real", "operator")
def test_the_alert_example_sends_every_alert_to_the_stream_and_the_webhook(
    client: Client, namespace: str, stream_broker: services.Redis, tmp_path: Path
) -> None:
    body = yaml.safe_load((REPO / "examples" / "streams" / "alert-streamingjob.yaml").read_text())
    body["spec"]["source"]["redis"] |= {
        "address": f"redis://127.0.0.1:{stream_broker.port}/0",
        "stream": namespace,
    }
    alert: dict[str, Any] = body["spec"]["processing"]["alert"]
    alert["stream"] = f"{namespace}-alerts"
    hook = Hook()
    try:
        secret(client, namespace, "redis", "password", PASSWORD)
        secret(client, namespace, "alert-webhook", "url", hook.url)
        client.create(codecs.from_dict(body), namespace=namespace)
        name = body["metadata"]["name"]
        until(client, name, namespace, lambda s: s.get("readyReplicas") == 1, "one consumer", timeout=60)
        [c] = client.get(Deployment, name, namespace=namespace).spec.template.spec.containers
        assert hook.url not in json.dumps(c.to_dict())  # the token stays in its Secret
        sent = tmp_path / "sent.jsonl"
        volatile = tmp_path / "volatile.yaml"  # a volatile session: 2 % moves within 5 s happen
        volatile.write_text("seed: 9\ncount: 60000\nsymbols: {volatility: 0.01}\n")
        for target in (f"redis://:{PASSWORD}@127.0.0.1:{stream_broker.port}/0?stream={namespace}", str(sent)):
            done = subprocess.run([*CLI, "generate", "-q", "--config", str(volatile), "-o", target],
                                  capture_output=True, check=False)  # fmt: skip
            assert done.returncode == 0, done.stderr
        rules = Alerts([Rule.of(r) for r in alert["rules"]])
        lines = sent.read_text().splitlines()
        want = [(a["rule"], a["message_id"]) for line in lines for a in rules.feed(json.loads(line))]
        assert {rule for rule, _ in want} == {"price-jump", "block-trade"}
        r = redis.Redis(port=stream_broker.port, password=PASSWORD)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (
            r.xlen(alert["stream"]) < len(want) or len(hook.alerts()) < len(want)
        ):
            time.sleep(0.2)
        in_stream = [json.loads(f[b"alert"]) for _, f in r.xrange(alert["stream"])]
        r.close()
        assert [(a["rule"], a["message_id"]) for a in in_stream] == want
        assert [(a["rule"], a["message_id"]) for a in hook.alerts()] == want
    finally:
        hook.server.shutdown()
        hook.server.server_close()
