"""The install, end to end: `kubectl apply --server-side -k deploy/default` runs the operator's own
Deployment pod as a real process, which then reconciles a Pipeline.

The operator image is mapped to this checkout's virtualenv (the ConfigMap
kube-system/testcluster-exec, see test/cluster/README.md). The pod the ReplicaSet controller
creates runs `dataworks-operator` with the shipped arguments, its ServiceAccount token
(TokenRequest, bound to the pod), its config volume, its /tmp emptyDir and its probes; only
the operator inside that pod reconciles while the test runs.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Namespace, Pod
from lightkube.resources.rbac_authorization_v1 import ClusterRole, ClusterRoleBinding

from tests.cluster import helpers
from tests.cluster.conftest import Cluster, Operator
from tests.cluster.pipelines import create, manifest, step, step_phases, wait_phase

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENT = yaml.safe_load((REPO / "deploy" / "manager" / "deployment.yaml").read_text())
OPERATOR_IMAGE = DEPLOYMENT["spec"]["template"]["spec"]["containers"][0]["image"]
SYSTEM = "dataworks-system"


@pytest.fixture
def installed(cluster: Cluster, operator: Operator) -> Iterator[None]:
    """The operator image runs this checkout; the session's operator is paused; the install
    is removed afterwards (but not the CRDs, which every test uses)."""
    client = cluster.client
    mapping = {
        "image": OPERATOR_IMAGE,
        "entrypoint": ["dataworks-operator"],
        "path": [str(Path(sys.executable).parent)],
        # The venv's interpreter may live under /root, and the venv and this checkout (the
        # editable install's source) under /tmp, where the Deployment mounts an emptyDir: all
        # are the image's own files, reachable in the pod.
        "expose": [sys.base_prefix, sys.prefix, str(REPO)],
        "env": {"PYTHONUNBUFFERED": "1"},
    }
    cm = ConfigMap(
        metadata=ObjectMeta(name="testcluster-exec"),
        data={"config.yaml": yaml.safe_dump({"images": [mapping]})},
    )
    client.apply(cm, namespace="kube-system", field_manager="dataworks-tests", force=True)
    operator.stop()
    try:
        yield
    finally:
        cluster.kubectl(
            "delete", "deployment", "dataworks-operator", "-n", SYSTEM, "--wait=true", check=False
        )
        client.delete(ConfigMap, "testcluster-exec", namespace="kube-system")
        for kind in (ClusterRoleBinding, ClusterRole):
            for obj in client.list(kind, labels={"app.kubernetes.io/name": "dataworks-operator"}):
                client.delete(kind, obj.metadata.name)
        if any(ns.metadata.name == SYSTEM for ns in client.list(Namespace)):
            client.delete(Namespace, SYSTEM)
        deadline = time.monotonic() + 90  # the next test may install it again
        while (
            any(ns.metadata.name == SYSTEM for ns in client.list(Namespace)) and time.monotonic() < deadline
        ):
            time.sleep(0.5)
        operator.start()


@pytest.mark.usefixtures("installed")
def test_the_shipped_deployment_runs_the_operator_which_completes_a_pipeline(
    cluster: Cluster, client: Client, namespace: str
) -> None:
    # Exec pods share the host's ports, and the operator serves /healthz on 0.0.0.0:8080 as
    # shipped: another process holding 8080 on this machine would take its probes. Wait a
    # while for a transient one to go, then fail saying so.
    deadline = time.monotonic() + 60
    while (busy := port_busy(8080)) and time.monotonic() < deadline:
        time.sleep(1)
    if busy:
        pytest.fail(f"port 8080 is taken on this machine ({busy}); the shipped operator binds 0.0.0.0:8080")
    out = cluster.kubectl("apply", "--server-side", "-k", str(REPO / "deploy" / "default"), check=False)
    assert out.returncode == 0, out.stderr
    # Available means the readiness probe passed: /readyz answers once the operator has
    # listed Pipelines and Jobs with its own token.
    try:
        helpers.wait_for(
            client,
            Deployment,
            "dataworks-operator",
            SYSTEM,
            lambda d: bool(d.status and d.status.availableReplicas == 1),
            timeout=120,
            what="the operator Deployment Available",
        )
    except AssertionError as e:
        raise AssertionError(f"{e}\n{why_not_available(cluster)}") from None
    (pod,) = client.list(Pod, namespace=SYSTEM, labels={"app.kubernetes.io/name": "dataworks-operator"})
    assert pod.metadata.labels["fate.testcluster.dataworks.io/outcome"] == "exec"
    (status,) = pod.status.containerStatuses
    assert status.ready
    assert status.restartCount == 0
    assert pod.status.podIP.startswith("127.")
    first = complete(cluster, namespace, "first", timeout=60)
    # Not a one-off resync: a second Pipeline completes as promptly.
    second = complete(cluster, namespace, "second", timeout=30)
    printed = "\n".join(client.log(pod.metadata.name, namespace=SYSTEM))
    for st in (first, second):
        assert step_phases(st) == {"a": "Completed", "b": "Completed"}
    assert printed.count("2 of 2 steps completed") == 2, printed[-3000:]
    # Least privilege without noise: kopf's CRD watch (which would need a cluster-wide list of
    # CRDs) is off once our kinds are served, so the shipped RBAC logs no error at all.
    errors = [line for line in printed.splitlines() if '"level": "error"' in line]
    assert not errors, "\n".join(errors)


def why_not_available(cluster: Cluster) -> str:
    """The operator's pods, the namespace's Events, the node's load and the operator's log."""
    out = []
    for args in (
        ("get", "pods", "-n", SYSTEM, "-o", "yaml"),
        ("get", "events", "-n", SYSTEM, "--sort-by=.lastTimestamp"),
        ("describe", "nodes"),
        ("logs", "-n", SYSTEM, "deploy/dataworks-operator", "--tail=80"),
    ):
        res = cluster.kubectl(*args, check=False)
        out.append(f"$ kubectl {' '.join(args)}\n{(res.stdout + res.stderr)[-6000:]}")
    return "\n".join(out)


def port_busy(port: int) -> str:
    """Why binding 0.0.0.0:port as aiohttp does (SO_REUSEADDR) fails, or "" if it does not."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError as e:
            return str(e)
    return ""


def complete(cluster: Cluster, namespace: str, name: str, timeout: float) -> dict[str, object]:
    create(cluster.client, namespace, manifest(name, [step("a"), step("b", ["a"])]))
    try:
        st = wait_phase(cluster.client, namespace, name, "Completed", "Failed", timeout=timeout)
    except AssertionError as e:
        logs = cluster.kubectl("logs", "-n", SYSTEM, "deploy/dataworks-operator", check=False).stdout
        raise AssertionError(f"{e}\noperator log:\n{logs[-4000:]}") from None
    assert st["phase"] == "Completed", f"{st}\n{cluster.kubectl('get', 'jobs,pods', '-n', namespace).stdout}"
    return st
