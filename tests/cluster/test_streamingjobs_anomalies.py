"""A StreamingJob's anomaly on the control plane, consumers running for real on a real Redis: a
latency spike against its baseline becomes the Degraded condition, a status entry, a Warning
Event, a notification to a webhook and one consumer more; it clears when latency comes back,
and the extra consumer stays for the hold after it.

The spike is real to the consumers: a producer writes messages whose timestamps are three
seconds old, as an upstream that falls behind would, so the end-to-end latency the consumers
measure (and report to the operator) jumps from milliseconds to seconds."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from lightkube import Client, codecs
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Secret

from tests.cluster.conftest import REDIS_PASSWORD as PASSWORD
from tests.cluster.conftest import Cluster, Operator
from tests.cluster.streams import StreamingJob, reasons, until
from tests.cluster.webhooks import Receiver, configured
from tests.local import services

assert StreamingJob  # registers the kind with codecs.from_dict


class Producer:
    """Messages at ~200/s into a stream; `lateness` seconds is how old their timestamps are."""

    def __init__(self, port: int, stream: str) -> None:
        self.r = redis.Redis(port=port, password=PASSWORD)
        self.stream, self.lateness, self.sent = stream, 0.0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            pipe = self.r.pipeline(transaction=False)
            for _ in range(10):
                self.sent += 1
                m = {
                    "message_id": f"m{self.sent}",
                    "symbol": "AAPL",
                    "sequence_number": self.sent,
                    "type": "price",
                    "price": 100.0,
                    "timestamp": int((time.time() - self.lateness) * 1e6),
                }
                pipe.xadd(self.stream, {"data": json.dumps(m)})
            pipe.execute()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.r.close()


@pytest.fixture
def team(operator: Operator, cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[Receiver]:
    """A webhook that takes warnings, and an operator configured to tell it."""
    hook = Receiver()
    data = {"url": base64.b64encode(hook.url.encode()).decode()}
    cluster.client.create(Secret(metadata=ObjectMeta(name="hooks"), data=data), namespace=namespace)
    config = {
        "notificationsNamespace": namespace,
        "notifications": [{"name": "team", "urlSecret": {"name": "hooks", "key": "url"}}],
    }
    try:
        with configured(operator, cluster, config, tmp_path):
            yield hook
    finally:
        hook.close()


@pytest.mark.usefixtures("consumers_run_for_real")
def test_a_latency_spike_is_reported_notified_and_relieved_by_one_more_consumer(
    client: Client, namespace: str, stream_broker: services.Redis, team: Receiver
) -> None:
    data = {"password": base64.b64encode(PASSWORD.encode()).decode()}
    client.create(Secret(metadata=ObjectMeta(name="redis"), data=data), namespace=namespace)
    redis_source = {
        "address": f"redis://127.0.0.1:{stream_broker.port}/0",
        "passwordSecret": {"name": "redis", "key": "password"},
        "stream": namespace,
        "group": "g",
    }
    body: dict[str, Any] = {
        "apiVersion": "dataworks.io/v1",
        "kind": "StreamingJob",
        "metadata": {"name": "ticks"},
        # one consumer keeps up with 200/s many times over: the autoscaler asks for one
        "spec": {
            "source": {"redis": redis_source},
            "scaling": {"minReplicas": 1, "maxReplicas": 3, "consumerRate": 10000},
        },
    }
    client.create(codecs.from_dict(body), namespace=namespace)
    producer = Producer(stream_broker.port, namespace)
    try:
        until(
            client, "ticks", namespace, lambda s: (s.get("readyReplicas") or 0) >= 1, "a consumer", timeout=90
        )
        time.sleep(25)  # the baseline: twenty readings and more of fresh messages
        steady = until(client, "ticks", namespace, lambda s: s.get("latencyP99Ms") is not None, "a p99")
        assert not steady.get("anomalies"), steady
        assert steady["desiredReplicas"] == 1
        producer.lateness = 3.0
        st = until(client, "ticks", namespace, lambda s: s.get("anomalies"), "a LatencySpike", timeout=30)
        [anomaly] = st["anomalies"]
        assert (anomaly["type"], anomaly["action"]) == ("LatencySpike", "AddConsumer")
        degraded = next(c for c in st["conditions"] if c["type"] == "Degraded")
        assert (degraded["status"], degraded["reason"]) == ("True", "LatencySpike")
        assert (st["desiredReplicas"], st["lastDecision"]["reason"]) == (2, "Anomaly")
        cli = [sys.executable, "-m", "dataworks.cli.main", "describe", "stj/ticks", "-n", namespace]
        text = subprocess.run(cli, capture_output=True, text=True, check=False)
        assert text.returncode == 0, text.stderr
        assert "Anomaly:     LatencySpike since " in text.stdout
        assert "one consumer more for LatencySpike" in text.stdout
        deadline = time.monotonic() + 20
        while not (team.bodies and "LatencySpike" in reasons(client, namespace, "ticks")):
            assert time.monotonic() < deadline, (team.bodies, reasons(client, namespace, "ticks"))
            time.sleep(0.2)
        [note] = team.bodies
        assert {k: note[k] for k in ("severity", "kind", "namespace", "name", "reason", "action")} == {
            "severity": "warning",
            "kind": "StreamingJob",
            "namespace": namespace,
            "name": "ticks",
            "reason": "LatencySpike",
            "action": "AddConsumer",
        }
        assert note["hint"] == f"dataworks describe stj/ticks -n {namespace}"
        producer.lateness = 0.0
        st = until(
            client, "ticks", namespace, lambda s: not s.get("anomalies"), "the spike cleared", timeout=40
        )
        # the consumer that relieved it stays for the hold (HOLD), so the spike does not come back
        assert (st["desiredReplicas"], st["lastDecision"]["reason"]) == (2, "Anomaly")
        deadline = time.monotonic() + 10  # Events are posted after the status, by a queue
        while "AnomalyCleared" not in reasons(client, namespace, "ticks") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "AnomalyCleared" in reasons(client, namespace, "ticks")
        assert len(team.bodies) == 1  # one notice per anomaly
    finally:
        producer.close()
