"""Proofs that the test control plane is real: each test asserts something only
a real Kubernetes component produces (Job controller, garbage collector, CEL
validation, Pod Security admission, scheduler, kubelet log path, RBAC)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import pytest
from lightkube import ApiError, Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.apiextensions_v1 import (
    CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion,
    CustomResourceValidation,
    JSONSchemaProps,
    ValidationRule,
)
from lightkube.models.batch_v1 import JobSpec
from lightkube.models.core_v1 import (
    Container,
    PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource,
    PodSpec,
    ResourceRequirements,
    SecurityContext,
    Toleration,
    Volume,
    VolumeResourceRequirements,
)
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.models.rbac_v1 import PolicyRule, RoleRef, Subject
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.batch_v1 import Job
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import (
    ConfigMap,
    Node,
    PersistentVolume,
    PersistentVolumeClaim,
    Pod,
    ServiceAccount,
)
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding

from dataworks.kube import clients
from tests.cluster import helpers, podspecs
from tests.cluster.conftest import Cluster


def pods_of(client: Client, job: str, namespace: str) -> list[Pod]:
    return list(client.list(Pod, namespace=namespace, labels={"batch.kubernetes.io/job-name": job}))


def test_indexed_job_completes_with_one_pod_per_index(client: Client, namespace: str) -> None:
    job = Job(
        metadata=ObjectMeta(name="indexed"),
        spec=JobSpec(completions=3, parallelism=3, completionMode="Indexed", template=podspecs.template()),
    )
    client.create(job, namespace=namespace)
    done = helpers.wait_for(client, Job, "indexed", namespace, helpers.has_condition("Complete"))
    assert done.status.completionTime is not None
    assert done.status.succeeded == 3
    indexes = sorted(
        p.metadata.annotations["batch.kubernetes.io/job-completion-index"]
        for p in pods_of(client, "indexed", namespace)
    )
    assert indexes == ["0", "1", "2"]


def test_failing_job_exceeds_backoff_limit(client: Client, namespace: str) -> None:
    job = Job(
        metadata=ObjectMeta(name="failing"),
        spec=JobSpec(
            backoffLimit=1,
            template=podspecs.template(
                {"outcome": "fail", "exit-code": "137", "reason": "OOMKilled", "duration": "100ms"}
            ),
        ),
    )
    client.create(job, namespace=namespace)
    failed = helpers.wait_for(client, Job, "failing", namespace, helpers.has_condition("Failed"), timeout=90)
    assert helpers.condition(failed, "Failed").reason == "BackoffLimitExceeded"
    pods = pods_of(client, "failing", namespace)
    assert len(pods) == 2  # the first try and one retry
    terminated = pods[0].status.containerStatuses[0].state.terminated
    assert (terminated.exitCode, terminated.reason) == (137, "OOMKilled")


def test_retried_job_succeeds_on_a_later_attempt(client: Client, namespace: str) -> None:
    job = Job(
        metadata=ObjectMeta(name="flaky"),
        spec=JobSpec(backoffLimit=3, template=podspecs.template({"fail-attempts": "1", "duration": "100ms"})),
    )
    client.create(job, namespace=namespace)
    done = helpers.wait_for(client, Job, "flaky", namespace, helpers.has_condition("Complete"), timeout=90)
    assert done.status.failed == 1
    assert done.status.succeeded == 1


def test_garbage_collector_deletes_owned_objects(client: Client, namespace: str) -> None:
    owner = client.create(ConfigMap(metadata=ObjectMeta(name="owner"), data={"k": "v"}), namespace=namespace)
    ref = OwnerReference(
        apiVersion="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid, controller=True
    )
    client.create(ConfigMap(metadata=ObjectMeta(name="child", ownerReferences=[ref])), namespace=namespace)
    client.delete(ConfigMap, "owner", namespace=namespace)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            client.get(ConfigMap, "child", namespace=namespace)
        except ApiError as e:
            if e.status.code == 404:
                return
            raise
        time.sleep(0.2)
    pytest.fail("the garbage collector did not delete the owned ConfigMap within 60s")


def test_crd_cel_rule_rejects_invalid_object(client: Client, namespace: str) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.test.dataworks.io"
    message = "spec.replicas must not exceed spec.maxReplicas"
    crd = CustomResourceDefinition(
        metadata=ObjectMeta(name=f"widgets.{group}"),
        spec=CustomResourceDefinitionSpec(
            group=group,
            scope="Namespaced",
            names=CustomResourceDefinitionNames(plural="widgets", singular="widget", kind="Widget"),
            versions=[
                CustomResourceDefinitionVersion(
                    name="v1",
                    served=True,
                    storage=True,
                    schema=CustomResourceValidation(
                        openAPIV3Schema=JSONSchemaProps(
                            type="object",
                            properties={
                                "spec": JSONSchemaProps(
                                    type="object",
                                    properties={
                                        "replicas": JSONSchemaProps(type="integer"),
                                        "maxReplicas": JSONSchemaProps(type="integer"),
                                    },
                                    x_kubernetes_validations=[
                                        ValidationRule(
                                            rule="self.replicas <= self.maxReplicas", message=message
                                        )
                                    ],
                                )
                            },
                        )
                    ),
                )
            ],
        ),
    )
    client.create(crd)
    try:
        helpers.wait_for(
            client, CustomResourceDefinition, crd.metadata.name, None, helpers.has_condition("Established")
        )
        Widget = create_namespaced_resource(group, "v1", "Widget", "widgets")
        ok = Widget(metadata=ObjectMeta(name="ok"), spec={"replicas": 1, "maxReplicas": 2})
        client.create(ok, namespace=namespace)
        bad = Widget(metadata=ObjectMeta(name="bad"), spec={"replicas": 3, "maxReplicas": 2})
        with pytest.raises(ApiError) as err:
            client.create(bad, namespace=namespace)
        assert err.value.status.code == 422
        assert message in err.value.status.message
    finally:
        client.delete(CustomResourceDefinition, crd.metadata.name)


def test_restricted_namespace_rejects_privileged_pod(client: Client, namespace: str) -> None:
    privileged = Pod(
        metadata=ObjectMeta(name="privileged"),
        spec=PodSpec(
            containers=[
                Container(name="c", image="busybox", securityContext=SecurityContext(privileged=True))
            ]
        ),
    )
    with pytest.raises(ApiError) as err:
        client.create(privileged, namespace=namespace)
    assert err.value.status.code == 403
    assert 'violates PodSecurity "restricted:latest"' in err.value.status.message
    compliant = Pod(metadata=ObjectMeta(name="compliant"), spec=podspecs.restricted_spec())
    created = client.create(compliant, namespace=namespace)
    assert created.metadata.uid


def test_unschedulable_pod_stays_pending(client: Client, namespace: str) -> None:
    pod = Pod(
        metadata=ObjectMeta(name="nowhere"),
        spec=podspecs.restricted_spec(nodeSelector={"workload-type": "quantum"}),
    )
    client.create(pod, namespace=namespace)
    got = helpers.wait_for(client, Pod, "nowhere", namespace, helpers.has_condition("PodScheduled", "False"))
    assert got.status.phase == "Pending"
    assert helpers.condition(got, "PodScheduled").reason == "Unschedulable"


def test_gpu_pod_is_scheduled_on_the_gpu_node_only_with_a_toleration(client: Client, namespace: str) -> None:
    gpu = ResourceRequirements(limits={"nvidia.com/gpu": "1"}, requests={"nvidia.com/gpu": "1"})
    container = podspecs.restricted_container()
    container.resources = gpu
    tolerated = Pod(
        metadata=ObjectMeta(name="gpu"),
        spec=podspecs.restricted_spec(
            containers=[container],
            tolerations=[Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")],
        ),
    )
    client.create(tolerated, namespace=namespace)
    got = helpers.wait_for(client, Pod, "gpu", namespace, lambda p: bool(p.spec.nodeName))
    node = client.get(Node, got.spec.nodeName)
    assert node.status.allocatable["nvidia.com/gpu"] == "4"
    untolerated = Pod(
        metadata=ObjectMeta(name="gpu-no-toleration"), spec=podspecs.restricted_spec(containers=[container])
    )
    client.create(untolerated, namespace=namespace)
    helpers.wait_for(
        client, Pod, "gpu-no-toleration", namespace, helpers.has_condition("PodScheduled", "False")
    )


def test_completed_pod_log_comes_back_through_the_api(client: Client, namespace: str) -> None:
    lines = ["starting", "PROGRESS: 50.0%", "PROGRESS: 100.0%", "done index={index} attempt={attempt}"]
    job = Job(
        metadata=ObjectMeta(name="logger"),
        spec=JobSpec(
            completions=1, completionMode="Indexed", template=podspecs.template({"logs": "\n".join(lines)})
        ),
    )
    client.create(job, namespace=namespace)
    helpers.wait_for(client, Job, "logger", namespace, helpers.has_condition("Complete"))
    (pod,) = pods_of(client, "logger", namespace)
    got = [line.rstrip("\n") for line in client.log(pod.metadata.name, namespace=namespace)]
    assert got == ["starting", "PROGRESS: 50.0%", "PROGRESS: 100.0%", "done index=0 attempt=1"]


def test_a_running_pod_marked_not_ready_is_ready_again_as_a_kubelet_would_report(
    client: Client, namespace: str
) -> None:
    # The node lifecycle controller sets Ready=False on every pod of a node that missed its
    # heartbeats; a kubelet reports its pods ready again once the node is back. kwok does not
    # (kubernetes-sigs/kwok#1464), so the harness's stage does; this marks a pod the same way.
    job = Job(
        metadata=ObjectMeta(name="steady"),
        spec=JobSpec(completions=1, template=podspecs.template({"duration": "120s"})),
    )
    client.create(job, namespace=namespace)
    helpers.wait_for(client, Job, "steady", namespace, lambda j: (j.status.ready or 0) == 1, what="1 ready")
    (pod,) = pods_of(client, "steady", namespace)
    marked = client.patch(
        Pod.Status,
        pod.metadata.name,
        {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "NodeNotReady"}]}},
        namespace=namespace,
    )
    assert [c.status for c in marked.status.conditions if c.type == "Ready"] == ["False"]
    helpers.wait_for(
        client, Pod, pod.metadata.name, namespace, helpers.has_condition("Ready"), what="Ready again"
    )
    helpers.wait_for(client, Job, "steady", namespace, lambda j: (j.status.ready or 0) == 1, what="1 ready")
    assert pods_of(client, "steady", namespace)[0].status.phase == "Running"


def test_claim_binds_through_the_volume_binder_and_its_pod_schedules(client: Client, namespace: str) -> None:
    claim = PersistentVolumeClaim(
        metadata=ObjectMeta(name="data"),
        spec=PersistentVolumeClaimSpec(
            accessModes=["ReadWriteOnce"], resources=VolumeResourceRequirements(requests={"storage": "2Gi"})
        ),
    )
    client.create(claim, namespace=namespace)
    bound = helpers.wait_for(
        client, PersistentVolumeClaim, "data", namespace, lambda c: c.status.phase == "Bound", what="Bound"
    )
    # The default StorageClass's provisioner made the volume; the real binder bound it.
    assert bound.spec.storageClassName == "standard"
    volume = client.get(PersistentVolume, bound.spec.volumeName)
    assert volume.spec.claimRef.uid == bound.metadata.uid
    assert volume.spec.capacity["storage"] == "2Gi"
    volumes = [Volume(name="data", persistentVolumeClaim=PersistentVolumeClaimVolumeSource(claimName="data"))]
    client.create(
        Pod(metadata=ObjectMeta(name="user"), spec=podspecs.restricted_spec(volumes=volumes)),
        namespace=namespace,
    )
    running = helpers.wait_for(
        client, Pod, "user", namespace, lambda p: p.status.phase == "Running", what="Running"
    )
    assert running.spec.nodeName
    client.delete(Pod, "user", namespace=namespace, grace_period=0)
    client.delete(PersistentVolumeClaim, "data", namespace=namespace)
    deadline = time.monotonic() + 60
    while any(v.metadata.name == volume.metadata.name for v in client.list(PersistentVolume)):
        assert time.monotonic() < deadline, "the released volume of reclaim policy Delete was not deleted"
        time.sleep(0.2)


def test_rbac_forbids_until_a_role_is_bound(cluster: Cluster, namespace: str) -> None:
    admin = cluster.client
    admin.create(ServiceAccount(metadata=ObjectMeta(name="robot")), namespace=namespace)
    robot = clients.sync_client(
        cluster.kubeconfig, impersonate=clients.Identity.service_account(namespace, "robot")
    )
    try:
        _robot_may_create_jobs_only_once_bound(admin, robot, namespace)
    finally:
        robot.close()


def _robot_may_create_jobs_only_once_bound(admin: Client, robot: Client, namespace: str) -> None:
    job = Job(metadata=ObjectMeta(name="by-robot"), spec=JobSpec(template=podspecs.template()))
    with pytest.raises(ApiError) as err:
        robot.create(job, namespace=namespace)
    assert err.value.status.code == 403
    assert 'cannot create resource "jobs"' in err.value.status.message
    admin.create(
        Role(
            metadata=ObjectMeta(name="job-maker"),
            rules=[PolicyRule(apiGroups=["batch"], resources=["jobs"], verbs=["create"])],
        ),
        namespace=namespace,
    )
    admin.create(
        RoleBinding(
            metadata=ObjectMeta(name="robot-makes-jobs"),
            roleRef=RoleRef(apiGroup="rbac.authorization.k8s.io", kind="Role", name="job-maker"),
            subjects=[Subject(kind="ServiceAccount", name="robot", namespace=namespace)],
        ),
        namespace=namespace,
    )
    deadline = time.monotonic() + 10  # the RBAC authorizer learns of bindings through a watch
    while True:
        try:
            created = robot.create(job, namespace=namespace)
            break
        except ApiError as e:
            if e.status.code != 403 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert created.metadata.name == "by-robot"


def test_kubectl_shows_the_fake_nodes_ready(cluster: Cluster) -> None:
    out = cluster.kubectl("get", "nodes", "-L", "workload-type", "--no-headers").stdout.splitlines()
    assert len(out) >= 1
    for line in out:
        assert line.split()[1] == "Ready", line
    if cluster.proc is not None:  # our own cluster: the documented node set
        types = {line.split()[-1] for line in out}
        assert types == {"network", "compute", "memory", "storage"}


def test_every_node_holds_a_lease_renewed_like_a_kubelets(client: Client) -> None:
    # Without a lease the node lifecycle controller finds a node silent 60 s after its last
    # status write, turns it NotReady and marks every pod on it not ready. (A real cluster's
    # kubelets renew theirs every 10 s too.)
    nodes = {n.metadata.name for n in client.list(Node)}

    def renewed() -> dict[str, datetime]:
        leases = client.list(Lease, namespace="kube-node-lease")
        return {x.metadata.name: x.spec.renewTime for x in leases if x.spec and x.spec.renewTime}

    deadline = time.monotonic() + 30
    first = renewed()
    while set(first) != nodes and time.monotonic() < deadline:
        time.sleep(0.5)
        first = renewed()
    assert set(first) == nodes
    while time.monotonic() < deadline and not all(renewed().get(n, first[n]) > first[n] for n in nodes):
        time.sleep(1)
    later = renewed()
    assert all(later[n] > first[n] for n in nodes), (first, later)
