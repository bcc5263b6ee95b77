"""The seed's node failure on the real control plane: a node stops heartbeating while one of a
StreamingJob's consumers runs on it, holding messages it read and never acknowledged.

The node is made to die the way it looks from the control plane: its consumer process freezes
(SIGSTOP: it neither processes nor acknowledges, as on a machine that hung), and the node's
heartbeats stop: kwok leaves alone the status of a node whose annotation no longer selects it,
and a Lease another holder took over (kwok renews only a Lease it holds or that expired; the
test's holder claims it for an hour and never renews it). Then the real node-lifecycle controller marks it
unreachable after the grace period (60 s here, as `--node-monitor-grace-period` sets), taints
it NoExecute, and the taint-eviction controller evicts the consumer pod once the StreamingJob's
toleration runs out. The Deployment replaces it on a live node, and every message the frozen
consumer held is processed by the others: claimed after the consumers' claim idle time, or
reclaimed by the operator once the pod is gone, whichever comes first. Nothing is lost, by the
consumers' own reports.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from lightkube import Client, codecs
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Node, Pod, Secret
from lightkube.types import PatchType

from dataworks.api import streamingjob
from dataworks.core.streams.sequences import check
from tests.cluster.conftest import REDIS_PASSWORD as PASSWORD
from tests.cluster.helpers import wait_for
from tests.cluster.pipelines import eventually
from tests.cluster.streams import StreamingJob
from tests.local import services

CLI = [sys.executable, "-m", "dataworks.cli.main"]
LABEL = streamingjob.OWNER_LABEL
FAKE_NODE = "kwok.x-k8s.io/node"  # kwok manages the nodes annotated with it "fake"
UNREACHABLE = "node.kubernetes.io/unreachable"
KWOK = "dataworks-testcluster"  # kwok's holder identity (test/cluster/kwok.go)
COUNT = 60_000


def consumer_process(pod: str) -> psutil.Process:
    """The `dataworks consume` process of a pod (the exec runtime's, named by --consumer)."""
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "consume" in cmd and "--consumer" in cmd and cmd[cmd.index("--consumer") + 1] == pod:
            return p
    raise LookupError(f"no consumer process for pod {pod}")


def pending_of(r: redis.Redis, stream: str, consumer: str) -> int:
    try:
        members = r.xinfo_consumers(stream, "processors")
    except redis.ResponseError:  # no stream, or no group, yet
        return 0
    return next((int(c["pending"]) for c in members if c["name"] == consumer.encode()), 0)


@pytest.mark.usefixtures("operator")
def test_a_node_that_stops_heartbeating_has_its_consumer_evicted_replaced_and_its_messages_processed(
    client: Client, namespace: str, stream_broker: services.Redis, consumer_reports: Path, tmp_path: Path
) -> None:
    r = redis.Redis(port=stream_broker.port, password=PASSWORD)
    data = {"password": base64.b64encode(PASSWORD.encode()).decode()}
    client.create(Secret(metadata=ObjectMeta(name="redis"), data=data), namespace=namespace)
    body = {
        "apiVersion": "dataworks.io/v1",
        "kind": "StreamingJob",
        "metadata": {"name": "survivor"},
        "spec": {
            "source": {"redis": {"address": f"redis://127.0.0.1:{stream_broker.port}/0",
                                 "stream": namespace, "group": "processors",
                                 "passwordSecret": {"name": "redis", "key": "password"}}},
            "replicas": 2,
            "batchSize": 50,
            # Evicted 5 s after its node is found unreachable, instead of the default 300 s.
            "tolerations": [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
                             "tolerationSeconds": 5}],
        },
    }  # fmt: skip
    client.create(codecs.from_dict(body), namespace=namespace)
    assert client.get(StreamingJob, "survivor", namespace=namespace).spec["tolerations"]
    wait_for(client, Deployment, "survivor", namespace, lambda d: (d.status.readyReplicas or 0) == 2,
             timeout=60, what="two consumers ready")  # fmt: skip
    target = f"redis://:{PASSWORD}@127.0.0.1:{stream_broker.port}/0?stream={namespace}"
    producer = subprocess.Popen(
        [*CLI, "generate", "-q", "--count", str(COUNT), "--rate", "1000", "--realtime", "-o", target],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    victim = sorted(
        client.list(Pod, namespace=namespace, labels={LABEL: "survivor"}), key=lambda p: p.metadata.name
    )[0]
    node, name = victim.spec.nodeName, victim.metadata.name
    frozen: psutil.Process | None = None
    try:
        eventually(lambda: pending_of(r, namespace, name) > 0, timeout=30, what=f"{name} holding messages")
        frozen = consumer_process(name)
        frozen.send_signal(signal.SIGSTOP)  # the machine hangs: nothing processed, nothing acknowledged
        held = pending_of(r, namespace, name)
        assert held > 0
        client.patch(
            Node, node, {"metadata": {"annotations": {FAKE_NODE: "dead"}}}, patch_type=PatchType.MERGE
        )
        _hold_lease(client, node, "a-dead-kubelet", 3600)  # renewed once, now, then never
        # The node-lifecycle controller: no heartbeat for the grace period (60 s), then the taint.
        wait_for(client, Node, node, None,
                 lambda n: any(t.key == UNREACHABLE and t.effect == "NoExecute" for t in n.spec.taints or []),
                 timeout=120, what=f"node {node} tainted unreachable")  # fmt: skip
        # The taint-eviction controller, 5 s later: the pod is deleted; a replacement runs elsewhere.
        eventually(lambda: not _alive(client, namespace, name), timeout=90, what=f"{name} evicted")
        wait_for(client, Deployment, "survivor", namespace, lambda d: (d.status.readyReplicas or 0) == 2,
                 timeout=90, what="a replacement consumer ready")  # fmt: skip
        pods = list(client.list(Pod, namespace=namespace, labels={LABEL: "survivor"}))
        assert all(p.spec.nodeName != node for p in pods if p.metadata.deletionTimestamp is None)
        _, err = producer.communicate(timeout=120)
        assert producer.returncode == 0, err
        eventually(lambda: _drained(r, namespace), timeout=120, what="every message acknowledged")
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.communicate()
        if frozen is not None and frozen.is_running():
            frozen.send_signal(signal.SIGCONT)
        client.patch(
            Node, node, {"metadata": {"annotations": {FAKE_NODE: "fake"}}}, patch_type=PatchType.MERGE
        )
        _hold_lease(client, node, KWOK, 40)  # kwok's again: it renews it from its next look
        _report_ready(client, node)  # as a kubelet does first when its node is back
        r.close()
    sent = tmp_path / "sent.jsonl"
    assert (
        subprocess.run(
            [*CLI, "generate", "-q", "--count", str(COUNT), "--rate", "1000", "-o", str(sent)], check=False
        ).returncode
        == 0
    )
    expected: dict[str, int] = {}
    for line in sent.read_bytes().splitlines():
        m = json.loads(line)
        expected[m["symbol"]] = max(expected.get(m["symbol"], 0), m["sequence_number"])
    reports = [json.loads(p.read_text()) for p in consumer_reports.glob("*.json")]
    result = check(reports, expected)
    assert result["lost"] == 0, result
    assert result["distinct"] == COUNT
    # The frozen consumer's messages were taken over by the others, not by it (it never ran again).
    assert sum(rep["claimed"] for rep in reports) >= held
    # The node is managed again: heartbeats resume and the lifecycle controller lifts the taint.
    wait_for(client, Node, node, None, lambda n: not any(t.key == UNREACHABLE for t in n.spec.taints or []),
             timeout=120, what=f"node {node} back")  # fmt: skip


def _hold_lease(client: Client, node: str, holder: str, seconds: int) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    spec = {"holderIdentity": holder, "leaseDurationSeconds": seconds, "renewTime": now}
    client.patch(Lease, node, {"spec": spec}, namespace="kube-node-lease", patch_type=PatchType.MERGE)


def _report_ready(client: Client, node: str) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    got = client.get(Node, node)
    conditions = [c.to_dict() for c in got.status.conditions or []]
    for c in conditions:
        healthy = "True" if c["type"] == "Ready" else "False"
        c.update(status=healthy, lastHeartbeatTime=now, lastTransitionTime=now, reason="KubeletReady"
                 if c["type"] == "Ready" else c.get("reason"))  # fmt: skip
    client.patch(Node.Status, node, {"status": {"conditions": conditions}}, patch_type=PatchType.STRATEGIC)


def _alive(client: Client, namespace: str, name: str) -> bool:
    from lightkube.core.exceptions import ApiError

    try:
        client.get(Pod, name, namespace=namespace)
    except ApiError as e:
        if e.status.code == 404:
            return False
        raise
    return True


def _drained(r: redis.Redis, stream: str) -> bool:
    g: dict[str, Any] = next(x for x in r.xinfo_groups(stream) if x["name"] == b"processors")
    return bool(g["entries-read"] == COUNT and g["pending"] == 0)
