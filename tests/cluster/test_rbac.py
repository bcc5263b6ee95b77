"""Least privilege, proven: the operator runs on the shipped ClusterRole, as its ServiceAccount,
and every rule of that role is needed by a named behaviour.

The operator here authenticates with a real ServiceAccount token (TokenRequest
API) bound by deploy/rbac, not as the admin. The session's admin operator is
paused meanwhile, so only the least-privileged one reconciles.
"""

from __future__ import annotations

import base64
import copy
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client, codecs
from lightkube.models.authentication_v1 import TokenRequestSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import (
    ConfigMap,
    Event,
    PersistentVolumeClaim,
    Secret,
    Service,
    ServiceAccount,
)

from dataworks.api import pipelinetemplate, scheduledpipeline, streamingjob, trainingjob
from dataworks.kube import resources
from dataworks.kube.resources import Pipeline
from tests.cluster import jobhandler as jh
from tests.cluster import sequentialjobs as sqj
from tests.cluster.conftest import REDIS_PASSWORD, Cluster, InPod, Operator
from tests.cluster.pipelines import create, manifest, step
from tests.cluster.test_notifications import Receiver
from tests.local import services

REPO = Path(__file__).resolve().parents[2]
TrainingJob = resources.of(trainingjob.INFO)
StreamingJob = resources.of(streamingjob.INFO)
ScheduledPipeline = resources.of(scheduledpipeline.INFO)
PipelineTemplate = resources.of(pipelinetemplate.INFO)  # made once, codecs.from_dict loads templates
FATE = "fate.testcluster.dataworks.io/"
ROLE = yaml.safe_load((REPO / "deploy" / "rbac" / "role.yaml").read_text())
NOTIFY_ROLE, NOTIFY_BINDING = yaml.safe_load_all(
    (REPO / "deploy" / "rbac" / "notifications_role.yaml").read_text()
)
# What each rule of the shipped role makes possible; removing the rule must break it.
NEEDS: dict[str, str | tuple[str, ...]] = {
    "pipelines": "reconciled",
    "pipelines/status": "reconciled",
    "pipelinetemplates": "template-expanded",
    "scheduledpipelines": "schedule-reconciled",
    "scheduledpipelines/status": "schedule-reconciled",
    "sequentialjobs": "sequence-reconciled",
    "sequentialjobs/status": "sequence-reconciled",
    "trainingjobs": "training-reconciled",
    "trainingjobs/status": "training-reconciled",
    "services": "training-service",
    "persistentvolumeclaims": "training-claim",
    "jobs": "job-created",
    "configmaps": "configmap-created",
    "pods": "failure-reason",
    "pods/log": "logs-archived",
    "events": "events",
    "streamingjobs": "streaming-reconciled",
    "streamingjobs/status": "streaming-reconciled",
    "deployments": "streaming-consumers",
    # The namespaced Role: the notification receivers' URLs; the ClusterRole: a StreamingJob's
    # Redis password (get, by name).
    "secrets": ("notified", "streaming-broker-read"),
}


def behaviours(resource: str | None = None) -> set[str]:
    """What one rule (or every rule) makes possible."""
    needs = [NEEDS[resource]] if resource else list(NEEDS.values())
    return {b for n in needs for b in ((n,) if isinstance(n, str) else n)}


@pytest.fixture
def admin_operator_paused(operator: Operator) -> Iterator[None]:
    operator.stop()
    try:
        yield
    finally:
        operator.start()


def bind(
    cluster: Cluster,
    namespace: str,
    rules: list[dict[str, Any]],
    tmp: Path,
    notify_rules: list[dict[str, Any]],
) -> Path:
    """A ServiceAccount bound to a ClusterRole with `rules` (and, in `namespace`, the notifications
    Role with `notify_rules`), and a kubeconfig with its token."""
    name = f"dataworks-operator-{uuid.uuid4().hex[:6]}"
    role = copy.deepcopy(ROLE)
    role["metadata"]["name"], role["rules"] = name, rules
    binding = yaml.safe_load((REPO / "deploy" / "rbac" / "role_binding.yaml").read_text())
    binding["metadata"]["name"] = binding["roleRef"]["name"] = name
    binding["subjects"] = [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
    cluster.client.create(ServiceAccount(metadata=ObjectMeta(name=name)), namespace=namespace)
    for obj in (role, binding):
        cluster.client.create(codecs.from_dict(obj))
    notify, notify_binding = copy.deepcopy(NOTIFY_ROLE), copy.deepcopy(NOTIFY_BINDING)
    notify["rules"] = notify_rules
    notify_binding["subjects"] = [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
    for obj in (notify, notify_binding):
        cluster.client.create(codecs.from_dict(obj), namespace=namespace)
    return token_kubeconfig(cluster, namespace, name, tmp)


def token_kubeconfig(cluster: Cluster, namespace: str, name: str, tmp: Path) -> Path:
    """A kubeconfig authenticating as ServiceAccount `name` with a TokenRequest token."""
    token = cluster.client.create(
        ServiceAccount.Token(
            metadata=ObjectMeta(), spec=TokenRequestSpec(audiences=[], expirationSeconds=3600)
        ),
        name,
        namespace=namespace,
    ).status.token
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    config["users"] = [{"name": name, "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = name
    path = tmp / f"{name}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def in_pod(kubeconfig: Path, namespace: str) -> InPod:
    """The ServiceAccount files a pod would be given for the identity in `kubeconfig`."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster_entry, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    sa_dir = kubeconfig.parent / "serviceaccount"
    sa_dir.mkdir()
    (sa_dir / "token").write_text(user["token"])
    (sa_dir / "namespace").write_text(namespace)
    if "certificate-authority-data" in cluster_entry:
        (sa_dir / "ca.crt").write_bytes(base64.b64decode(cluster_entry["certificate-authority-data"]))
    else:
        ca = Path(cluster_entry["certificate-authority"])
        (sa_dir / "ca.crt").write_bytes(
            ca.read_bytes() if ca.is_absolute() else (kubeconfig.parent / ca).read_bytes()
        )
    return InPod(sa_dir, cluster_entry["server"])


def exercise(
    cluster: Cluster,
    namespace: str,
    login: Path | InPod,
    log: Path,
    timeout: float,
    *extra: str,
    broker: services.Redis,
) -> set[str]:
    """Run the operator as that identity (a kubeconfig, or a pod's ServiceAccount files) on a
    pipeline and a sequential job that need every rule; what worked."""
    receiver = Receiver()
    url = base64.b64encode(receiver.url.encode()).decode()
    secret = Secret(metadata=ObjectMeta(name="dataworks-notifications"), data={"url": url})
    cluster.client.create(secret, namespace=namespace)
    config = log.with_name("config.yaml")
    team = {"name": "team", "urlSecret": {"name": "dataworks-notifications", "key": "url"}}
    config.write_text(yaml.safe_dump({"notificationsNamespace": namespace, "notifications": [team]}))
    flags = ("--config", str(config), *extra)
    own = (
        Operator(None, log, *flags, pod=login)
        if isinstance(login, InPod)
        else Operator(str(login), log, *flags)
    )
    own.start()
    try:
        create_everything(cluster.client, namespace, broker)
        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(seen) < len(behaviours()):
            seen |= what_worked(cluster.client, namespace, receiver)
            time.sleep(0.3)
        return seen
    finally:
        own.stop()
        receiver.close()


def create_everything(client: Client, namespace: str, broker: services.Redis) -> None:
    """A pipeline, a templated pipeline, a sequential job, a training job, a streaming job and a
    labelled Job that need every rule."""
    oom = {"outcome": "fail", "exit-code": "137", "reason": "OOMKilled"}
    fetch = {
        "name": "fetch",
        "type": "fetch",
        "config": {"path": "in.csv"},
        "annotations": {"fate.testcluster.dataworks.io/duration": "200ms"},
    }
    create(
        client, namespace, manifest("least", [fetch, step("boom", ["fetch"], fate=oom, retry={"limit": 0})])
    )
    template = {
        "apiVersion": "dataworks.io/v1",
        "kind": "PipelineTemplate",
        "metadata": {"name": "least-template"},
        "spec": {"parameters": [{"name": "what", "default": "x"}], "steps": [step("make-{{.what}}")]},
    }
    client.create(codecs.from_dict(template), namespace=namespace)
    templated = {"template": "least-template", "parameters": {"what": "y"}}
    create(client, namespace, {**manifest("least-templated", []), "spec": templated})
    schedule = {
        "apiVersion": "dataworks.io/v1",
        "kind": "ScheduledPipeline",
        "metadata": {"name": "least-schedule"},
        "spec": {"schedule": ["0 2 * * *"], "pipeline": {"steps": [step("s")]}},
    }
    client.create(codecs.from_dict(schedule), namespace=namespace)
    sqj.create(client, namespace, sqj.manifest("least-sequence", ["a"]))
    tj = {
        "apiVersion": "dataworks.io/v1",
        "kind": "TrainingJob",
        "metadata": {"name": "least-training"},
        "spec": {
            "model": "m",
            "dataset": "d",
            "gpusPerWorker": 0,
            "podAnnotations": {FATE + "outcome": "run"},
        },
    }
    client.create(codecs.from_dict(tj), namespace=namespace)
    password = base64.b64encode(REDIS_PASSWORD.encode()).decode()
    client.create(Secret(metadata=ObjectMeta(name="redis"), data={"password": password}), namespace=namespace)
    redis_source = {
        "address": f"redis://127.0.0.1:{broker.port}/0",
        "passwordSecret": {"name": "redis", "key": "password"},
        "stream": f"rbac-{namespace}",
        "group": "g",
    }
    stj = {
        "apiVersion": "dataworks.io/v1",
        "kind": "StreamingJob",
        "metadata": {"name": "least-streaming"},
        "spec": {"source": {"redis": redis_source}},
    }
    client.create(codecs.from_dict(stj), namespace=namespace)
    painted = {"logs": "archived line"}
    jh.create(client, namespace, jh.job("least-job", "true", exec_pod=False, fate=painted))


def what_worked(c: Client, namespace: str, receiver: Receiver) -> set[str]:
    seen = set()
    st = c.get(Pipeline, "least", namespace=namespace).to_dict().get("status") or {}
    if st.get("phase"):
        seen.add("reconciled")
    templated = c.get(Pipeline, "least-templated", namespace=namespace).to_dict().get("status") or {}
    if (templated.get("template") or {}).get("steps"):
        seen.add("template-expanded")
    sched = c.get(ScheduledPipeline, "least-schedule", namespace=namespace).to_dict().get("status") or {}
    if sched.get("nextScheduleTime"):
        seen.add("schedule-reconciled")
    if sqj.status(c.get(sqj.SequentialJob, "least-sequence", namespace=namespace)).get("phase"):
        seen.add("sequence-reconciled")
    if list(c.list(Job, namespace=namespace, labels={"dataworks.io/pipeline": "least"})):
        seen.add("job-created")
    if any(cm.metadata.name.startswith("least") for cm in c.list(ConfigMap, namespace=namespace)):
        seen.add("configmap-created")
    if any(s.get("reason") == "OOMKilled" for s in st.get("stepStatuses") or []):
        seen.add("failure-reason")
    if any(e.reason == "StepStarted" for e in c.list(Event, namespace=namespace)):
        seen.add("events")
    if receiver.bodies:
        seen.add("notified")
    if (c.get(TrainingJob, "least-training", namespace=namespace).to_dict().get("status") or {}).get("state"):
        seen.add("training-reconciled")
    if any(x.metadata.name == "least-training" for x in c.list(Service, namespace=namespace)):
        seen.add("training-service")
    claims = c.list(PersistentVolumeClaim, namespace=namespace)
    if any(x.metadata.name == "least-training-checkpoints" for x in claims):
        seen.add("training-claim")
    if any("archived line" in jh.logs_of(cm) for cm in jh.archives(c, namespace, "least-job")):
        seen.add("logs-archived")
    stj = c.get(StreamingJob, "least-streaming", namespace=namespace).to_dict().get("status") or {}
    if stj.get("state"):
        seen.add("streaming-reconciled")
    if stj.get("lag") is not None:
        seen.add("streaming-broker-read")
    if any(d.metadata.name == "least-streaming" for d in c.list(Deployment, namespace=namespace)):
        seen.add("streaming-consumers")
    return seen


def test_the_shipped_manifests_apply_on_the_server(cluster: Cluster) -> None:
    # A server-side dry run cannot place objects in a namespace it only pretends to create.
    cluster.kubectl("create", "namespace", "dataworks-system", check=False)
    out = cluster.kubectl(
        "apply", "--server-side", "--dry-run=server", "-k", str(REPO / "deploy" / "default"), check=False
    )
    assert out.returncode == 0, out.stderr
    kinds = [line.split("/")[0] for line in out.stdout.splitlines()]
    for kind in (
        "namespace",
        "customresourcedefinition.apiextensions.k8s.io",
        "serviceaccount",
        "clusterrole.rbac.authorization.k8s.io",
        "configmap",
        "deployment.apps",
    ):
        assert kind in kinds, out.stdout


@pytest.mark.usefixtures("admin_operator_paused")
def test_the_shipped_role_is_enough(
    cluster: Cluster, namespace: str, tmp_path: Path, stream_broker: services.Redis
) -> None:
    kubeconfig = bind(cluster, namespace, ROLE["rules"], tmp_path, NOTIFY_ROLE["rules"])
    seen = exercise(cluster, namespace, kubeconfig, tmp_path / "operator.log", 60, broker=stream_broker)
    assert seen == behaviours(), (tmp_path / "operator.log").read_text()[-3000:]


@pytest.mark.usefixtures("admin_operator_paused")
def test_in_a_pod_the_operator_uses_its_service_account(
    cluster: Cluster, namespace: str, tmp_path: Path, stream_broker: services.Redis
) -> None:
    """As deploy/default runs it: no --kubeconfig, no $KUBECONFIG, no ~/.kube/config; only the
    pod's ServiceAccount files and the service environment."""
    kubeconfig = bind(cluster, namespace, ROLE["rules"], tmp_path, NOTIFY_ROLE["rules"])
    log = tmp_path / "operator.log"
    seen = exercise(cluster, namespace, in_pod(kubeconfig, namespace), log, 60, broker=stream_broker)
    assert seen == behaviours(), log.read_text()[-3000:]


@pytest.mark.usefixtures("admin_operator_paused")
@pytest.mark.parametrize("resource", list(NEEDS))
def test_every_rule_is_needed(
    resource: str, cluster: Cluster, namespace: str, tmp_path: Path, stream_broker: services.Redis
) -> None:
    rules = [r for r in ROLE["rules"] if resource not in r["resources"]]
    notify = [r for r in NOTIFY_ROLE["rules"] if resource not in r["resources"]]
    assert len(rules) + len(notify) < len(ROLE["rules"]) + len(NOTIFY_ROLE["rules"])
    kubeconfig = bind(cluster, namespace, rules, tmp_path, notify)
    seen = exercise(cluster, namespace, kubeconfig, tmp_path / "operator.log", 12, broker=stream_broker)
    still = behaviours(resource) & seen
    assert not still, f"without the {resource} rule the operator still did {still}"


@pytest.mark.usefixtures("admin_operator_paused")
def test_the_namespaced_install_needs_no_cluster_role(
    cluster: Cluster, namespace: str, tmp_path: Path, stream_broker: services.Redis
) -> None:
    """deploy/namespaced: a Role in the watched namespace and `--namespace`; nothing cluster-wide."""
    name = f"dataworks-ns-{uuid.uuid4().hex[:6]}"
    cluster.client.create(ServiceAccount(metadata=ObjectMeta(name=name)), namespace=namespace)
    role, binding = yaml.safe_load_all((REPO / "deploy" / "namespaced" / "role.yaml").read_text())
    for obj in (role, binding):
        obj["metadata"]["namespace"] = namespace
    binding["subjects"] = [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
    notify, notify_binding = copy.deepcopy(NOTIFY_ROLE), copy.deepcopy(NOTIFY_BINDING)
    notify_binding["subjects"] = binding["subjects"]
    for obj in (role, binding, notify, notify_binding):
        cluster.client.create(codecs.from_dict(obj), namespace=namespace)
    kubeconfig = token_kubeconfig(cluster, namespace, name, tmp_path)
    log = tmp_path / "operator.log"
    seen = exercise(cluster, namespace, kubeconfig, log, 60, "--namespace", namespace, broker=stream_broker)
    assert seen == behaviours(), (tmp_path / "operator.log").read_text()[-3000:]
