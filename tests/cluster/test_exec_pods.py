"""Exec pods: the test control plane runs a pod's container command as a real process.

A pod opts in with the annotation fate.testcluster.dataworks.io/exec: "true" (see
test/cluster/README.md, "The exec contract"). Each test asserts something only a real
process produces: an exit code, its output, a file it wrote, a name it resolved, a
request it made with its own token, a signal it trapped.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from lightkube import Client
from lightkube.models.batch_v1 import JobSpec
from lightkube.models.core_v1 import (
    ConfigMapVolumeSource,
    Container,
    EmptyDirVolumeSource,
    EnvVar,
    EnvVarSource,
    ObjectFieldSelector,
    PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource,
    PodTemplateSpec,
    ResourceRequirements,
    ServicePort,
    ServiceSpec,
    Volume,
    VolumeMount,
    VolumeResourceRequirements,
)
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.models.rbac_v1 import PolicyRule, RoleRef, Subject
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import (
    ConfigMap,
    Namespace,
    PersistentVolumeClaim,
    Pod,
    Service,
    ServiceAccount,
)
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding

from tests.cluster import helpers, podspecs
from tests.cluster.conftest import Cluster, _start, terminate

EXEC = {podspecs.FATE + "exec": "true"}
PYTHON = "python:3.12-slim"  # on the test control plane: the machine's python3


def container(command: list[str], image: str = "busybox:1.36", **fields: object) -> Container:
    c = podspecs.restricted_container(image=image)
    c.command = command
    for k, v in fields.items():
        setattr(c, k, v)
    return c


def exec_pod(name: str, c: Container, labels: dict[str, str] | None = None, **spec: object) -> Pod:
    return Pod(
        metadata=ObjectMeta(name=name, annotations=dict(EXEC), labels=labels),
        spec=podspecs.restricted_spec(containers=[c], **spec),
    )


def exec_template(c: Container, **spec: object) -> PodTemplateSpec:
    return PodTemplateSpec(
        metadata=ObjectMeta(annotations=dict(EXEC)), spec=podspecs.restricted_spec(containers=[c], **spec)
    )


def phase_is(*phases: str):  # type: ignore[no-untyped-def]
    return lambda p: p.status is not None and p.status.phase in phases


def logs(client: Client, pod: str, namespace: str) -> list[str]:
    return [line.rstrip("\n") for line in client.log(pod, namespace=namespace)]


def job_pods(client: Client, job: str, namespace: str) -> list[Pod]:
    return list(client.list(Pod, namespace=namespace, labels={"batch.kubernetes.io/job-name": job}))


def claim(client: Client, name: str, namespace: str) -> PersistentVolumeClaim:
    client.create(
        PersistentVolumeClaim(
            metadata=ObjectMeta(name=name),
            spec=PersistentVolumeClaimSpec(
                accessModes=["ReadWriteOnce"],
                resources=VolumeResourceRequirements(requests={"storage": "1Gi"}),
            ),
        ),
        namespace=namespace,
    )
    return helpers.wait_for(
        client,
        PersistentVolumeClaim,
        name,
        namespace,
        lambda c: c.status is not None and c.status.phase == "Bound",
        what="claim Bound",
    )


def data_volume(claim_name: str) -> dict[str, object]:
    return {
        "volumes": [
            Volume(name="data", persistentVolumeClaim=PersistentVolumeClaimVolumeSource(claimName=claim_name))
        ]
    }


DATA_MOUNT = [VolumeMount(name="data", mountPath="/data")]


def test_failing_job_reports_the_exit_code_and_the_printed_line(cluster: Cluster, namespace: str) -> None:
    client = cluster.client
    env = [EnvVar(name="RUN", value="run-42"), EnvVar(name="MY_INDEX", value="$(RUN)-index")]
    job = Job(
        metadata=ObjectMeta(name="exits-3"),
        spec=JobSpec(
            backoffLimit=0, template=exec_template(container(["sh", "-c", "echo $MY_INDEX; exit 3"], env=env))
        ),
    )
    client.create(job, namespace=namespace)
    failed = helpers.wait_for(client, Job, "exits-3", namespace, helpers.has_condition("Failed"), timeout=90)
    assert helpers.condition(failed, "Failed").reason == "BackoffLimitExceeded"
    (pod,) = job_pods(client, "exits-3", namespace)
    assert pod.status.phase == "Failed"
    terminated = pod.status.containerStatuses[0].state.terminated
    assert (terminated.exitCode, terminated.reason) == (3, "Error")
    out = cluster.kubectl("logs", "-n", namespace, pod.metadata.name)
    assert out.stdout.splitlines() == ["run-42-index"]
    assert logs(client, pod.metadata.name, namespace) == ["run-42-index"]


def test_indexed_job_processes_see_their_completion_index(client: Client, namespace: str) -> None:
    script = 'echo "index=$JOB_COMPLETION_INDEX host=$(hostname) env=$HOSTNAME uid=$(id -u)"'
    job = Job(
        metadata=ObjectMeta(name="indexed"),
        spec=JobSpec(
            completions=3,
            parallelism=3,
            completionMode="Indexed",
            template=exec_template(container(["sh", "-c", script])),
        ),
    )
    client.create(job, namespace=namespace)
    helpers.wait_for(client, Job, "indexed", namespace, helpers.has_condition("Complete"), timeout=90)
    seen = {}
    for pod in job_pods(client, "indexed", namespace):
        index = pod.metadata.annotations["batch.kubernetes.io/job-completion-index"]
        (line,) = logs(client, pod.metadata.name, namespace)
        seen[index] = line
        assert pod.status.containerStatuses[0].state.terminated.exitCode == 0
    # The Job controller names each pod's host <job>-<index>; the process sees it as its hostname.
    # The process runs as the pod's runAsUser (podspecs: 1000), not as the harness's user.
    assert seen == {i: f"index={i} host=indexed-{i} env=indexed-{i} uid=1000" for i in ("0", "1", "2")}


def test_configmap_volume_is_readable_at_its_mount_path(client: Client, namespace: str) -> None:
    content = "threshold: 0.25\nmode: strict\n"
    client.create(
        ConfigMap(metadata=ObjectMeta(name="settings"), data={"settings.yaml": content}), namespace=namespace
    )
    c = container(
        ["sh", "-c", "cat /etc/dataworks-test/settings.yaml; ls /etc/dataworks-test"],
        volumeMounts=[VolumeMount(name="cfg", mountPath="/etc/dataworks-test", readOnly=True)],
    )
    pod = exec_pod(
        "reader", c, volumes=[Volume(name="cfg", configMap=ConfigMapVolumeSource(name="settings"))]
    )
    client.create(pod, namespace=namespace)
    helpers.wait_for(client, Pod, "reader", namespace, phase_is("Succeeded", "Failed"), timeout=60)
    assert logs(client, "reader", namespace) == ["threshold: 0.25", "mode: strict", "settings.yaml"]
    assert client.get(Pod, "reader", namespace=namespace).status.phase == "Succeeded"


def test_an_images_exposed_files_stay_reachable_under_a_volume_over_their_parent(
    client: Client, namespace: str, tmp_path: Path
) -> None:
    """A mapped image whose files live in /tmp (a checkout's venv, say) still runs when the pod
    mounts an emptyDir on /tmp, as the shipped operator Deployment does."""
    image = tmp_path / "image"  # under /tmp, and under pytest's private (0700) directory
    tool = image / "bin" / "hello"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\necho hello from the image\n")
    tool.chmod(0o755)
    image.chmod(0o755)
    mapping = {"image": "example.com/hello:1", "entrypoint": ["hello"], "path": [str(tool.parent)]}
    mapping["expose"] = [str(image)]
    cm = ConfigMap(
        metadata=ObjectMeta(name="testcluster-exec"),
        data={"config.yaml": yaml.safe_dump({"images": [mapping]})},
    )
    client.apply(cm, namespace="kube-system", field_manager="dataworks-tests", force=True)
    try:
        c = podspecs.restricted_container(image="example.com/hello:1")
        c.command = None  # the image's entrypoint
        c.volumeMounts = [VolumeMount(name="tmp", mountPath="/tmp")]
        pod = exec_pod("hello", c, volumes=[Volume(name="tmp", emptyDir=EmptyDirVolumeSource())])
        client.create(pod, namespace=namespace)
        helpers.wait_for(client, Pod, "hello", namespace, phase_is("Succeeded", "Failed"), timeout=60)
        got = client.get(Pod, "hello", namespace=namespace)
        assert got.status.phase == "Succeeded", got.status.containerStatuses
        printed = logs(client, "hello", namespace)
        assert printed == ["hello from the image"], (printed, got.status.containerStatuses)
    finally:
        client.delete(ConfigMap, "testcluster-exec", namespace="kube-system")


def test_claim_of_the_default_class_binds_and_is_shared_by_two_pods(client: Client, namespace: str) -> None:
    bound = claim(client, "shared", namespace)
    assert bound.spec.storageClassName == "standard"
    writer = exec_pod(
        "writer",
        container(["sh", "-c", "echo written-by-$HOSTNAME > /data/note"], volumeMounts=DATA_MOUNT),
        **data_volume("shared"),
    )
    client.create(writer, namespace=namespace)
    helpers.wait_for(client, Pod, "writer", namespace, phase_is("Succeeded"), timeout=60)
    reader = exec_pod(
        "reader", container(["cat", "/data/note"], volumeMounts=DATA_MOUNT), **data_volume("shared")
    )
    client.create(reader, namespace=namespace)
    helpers.wait_for(client, Pod, "reader", namespace, phase_is("Succeeded"), timeout=60)
    assert logs(client, "reader", namespace) == ["written-by-writer"]


PEER = """
import http.server, os, socket, threading, time, urllib.request
me, peer, sub = os.environ["HOSTNAME"], os.environ["PEER"], os.environ["SUBDOMAIN"]
served = threading.Event()
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(me.encode()); served.set()
    def log_message(self, *args): pass
server = http.server.HTTPServer((os.environ["POD_IP"], 8080), Hello)
threading.Thread(target=server.serve_forever, daemon=True).start()
deadline = time.monotonic() + 60
while True:
    try:
        body = urllib.request.urlopen(f"http://{peer}.{sub}:8080/", timeout=2).read().decode()
        break
    except OSError as e:
        if time.monotonic() > deadline: raise
        time.sleep(0.2)
print(f"{me} ({socket.gethostbyname(peer + '.' + sub)}) got {body}", flush=True)
served.wait(60)
time.sleep(0.5)
"""


def test_pods_behind_a_headless_service_reach_each_other_by_name_on_the_same_port(
    client: Client, namespace: str
) -> None:
    client.create(
        Service(
            metadata=ObjectMeta(name="ranks"),
            spec=ServiceSpec(clusterIP="None", selector={"app": "ranks"}, ports=[ServicePort(port=8080)]),
        ),
        namespace=namespace,
    )
    pod_ip = EnvVar(
        name="POD_IP", valueFrom=EnvVarSource(fieldRef=ObjectFieldSelector(fieldPath="status.podIP"))
    )
    for me, peer in (("a", "b"), ("b", "a")):
        env = [pod_ip, EnvVar(name="PEER", value=peer), EnvVar(name="SUBDOMAIN", value="ranks")]
        c = container(["python3", "-c", PEER], image=PYTHON, env=env)
        client.create(
            exec_pod(me, c, labels={"app": "ranks"}, hostname=me, subdomain="ranks"), namespace=namespace
        )
    a = helpers.wait_for(client, Pod, "a", namespace, phase_is("Succeeded", "Failed"), timeout=90)
    b = helpers.wait_for(client, Pod, "b", namespace, phase_is("Succeeded", "Failed"), timeout=90)
    ip_a, ip_b = a.status.podIP, b.status.podIP
    assert ip_a != ip_b
    assert ip_a.startswith("127.")
    assert ip_b.startswith("127.")
    assert logs(client, "a", namespace) == [f"a ({ip_b}) got b"]
    assert logs(client, "b", namespace) == [f"b ({ip_a}) got a"]
    assert (a.status.phase, b.status.phase) == ("Succeeded", "Succeeded")


API_CALLS = """
import json, os, ssl, urllib.error, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
token, ns = open(f"{sa}/token").read(), open(f"{sa}/namespace").read()
ctx = ssl.create_default_context(cafile=f"{sa}/ca.crt")
base = f"https://{os.environ['KUBERNETES_SERVICE_HOST']}:{os.environ['KUBERNETES_SERVICE_PORT']}"
for kind in ("configmaps", "secrets"):
    url, auth = f"{base}/api/v1/namespaces/{ns}/{kind}", {"Authorization": f"Bearer {token}"}
    req = urllib.request.Request(url, headers=auth)
    try:
        items = json.load(urllib.request.urlopen(req, context=ctx))["items"]
        print(kind, 200, sorted(i["metadata"]["name"] for i in items))
    except urllib.error.HTTPError as e:
        print(kind, e.code, json.load(e)["reason"])
"""


def test_service_account_token_lists_what_its_role_allows_and_nothing_else(
    client: Client, namespace: str
) -> None:
    client.create(ServiceAccount(metadata=ObjectMeta(name="reader")), namespace=namespace)
    client.create(
        Role(
            metadata=ObjectMeta(name="read-configmaps"),
            rules=[PolicyRule(apiGroups=[""], resources=["configmaps"], verbs=["list"])],
        ),
        namespace=namespace,
    )
    client.create(
        RoleBinding(
            metadata=ObjectMeta(name="reader"),
            roleRef=RoleRef(apiGroup="rbac.authorization.k8s.io", kind="Role", name="read-configmaps"),
            subjects=[Subject(kind="ServiceAccount", name="reader", namespace=namespace)],
        ),
        namespace=namespace,
    )
    client.create(ConfigMap(metadata=ObjectMeta(name="visible"), data={"k": "v"}), namespace=namespace)
    pod = exec_pod(
        "caller", container(["python3", "-c", API_CALLS], image=PYTHON), serviceAccountName="reader"
    )
    client.create(pod, namespace=namespace)
    helpers.wait_for(client, Pod, "caller", namespace, phase_is("Succeeded", "Failed"), timeout=60)
    assert logs(client, "caller", namespace) == [
        "configmaps 200 ['kube-root-ca.crt', 'visible']",
        "secrets 403 Forbidden",
    ]


def test_on_failure_restarts_in_place_with_the_previous_log_and_the_termination_message(
    cluster: Cluster, namespace: str
) -> None:
    client = cluster.client
    # The emptyDir outlives the container: each attempt counts itself there.
    script = (
        "n=$(( $(cat /scratch/n 2>/dev/null || echo 0) + 1 )); echo $n > /scratch/n; echo attempt $n;"
        ' if [ $n -lt 3 ]; then echo "gave up on attempt $n" > /dev/termination-log; exit 7; fi'
    )
    c = container(["sh", "-c", script], volumeMounts=[VolumeMount(name="scratch", mountPath="/scratch")])
    pod = exec_pod(
        "flaky",
        c,
        restartPolicy="OnFailure",
        volumes=[Volume(name="scratch", emptyDir=EmptyDirVolumeSource())],
    )
    client.create(pod, namespace=namespace)
    done = helpers.wait_for(client, Pod, "flaky", namespace, phase_is("Succeeded", "Failed"), timeout=90)
    assert done.status.phase == "Succeeded"
    (status,) = done.status.containerStatuses
    assert status.restartCount == 2
    assert (status.lastState.terminated.exitCode, status.lastState.terminated.message) == (
        7,
        "gave up on attempt 2\n",
    )
    assert status.state.terminated.exitCode == 0
    assert logs(client, "flaky", namespace) == ["attempt 3"]
    previous = cluster.kubectl("logs", "--previous", "-n", namespace, "flaky")
    assert previous.stdout.splitlines() == ["attempt 2"]


def test_the_previous_log_is_there_as_soon_as_the_restart_count_says_so(
    cluster: Cluster, namespace: str
) -> None:
    # A reader that sees restartCount 1 asks for the previous log at once, often within
    # the 1 s back-off, before the next instance starts (the job-completion handler does).
    client = cluster.client
    script = (
        "n=$(( $(cat /scratch/n 2>/dev/null || echo 0) + 1 )); echo $n > /scratch/n; echo attempt $n;"
        " if [ $n -lt 2 ]; then exit 7; fi; sleep 2"
    )
    c = container(["sh", "-c", script], volumeMounts=[VolumeMount(name="scratch", mountPath="/scratch")])
    volumes = [Volume(name="scratch", emptyDir=EmptyDirVolumeSource())]
    client.create(exec_pod("backoff", c, restartPolicy="OnFailure", volumes=volumes), namespace=namespace)
    restarted = helpers.wait_for(
        client,
        Pod,
        "backoff",
        namespace,
        lambda p: bool(p.status.containerStatuses and p.status.containerStatuses[0].restartCount),
        timeout=60,
        interval=0.05,
    )
    previous = cluster.kubectl("logs", "--previous", "-n", namespace, "backoff")
    state = restarted.status.containerStatuses[0].state
    assert previous.stdout.splitlines() == ["attempt 1"], (previous.stderr, state)


def test_a_container_over_its_memory_limit_is_oom_killed(client: Client, namespace: str) -> None:
    grab = "x = bytearray(256 * 1024 * 1024); print('allocated', len(x))"
    limits = ResourceRequirements(limits={"memory": "64Mi", "cpu": "500m"})
    client.create(
        exec_pod("hog", container(["python3", "-c", grab], image=PYTHON, resources=limits)),
        namespace=namespace,
    )
    done = helpers.wait_for(client, Pod, "hog", namespace, phase_is("Succeeded", "Failed"), timeout=60)
    terminated = done.status.containerStatuses[0].state.terminated
    assert (done.status.phase, terminated.reason, terminated.exitCode) == ("Failed", "OOMKilled", 137)
    assert logs(client, "hog", namespace) == []


def test_deleting_a_running_pod_delivers_sigterm(client: Client, namespace: str) -> None:
    claim(client, "signals", namespace)
    trap = 'trap "echo got-SIGTERM > /data/term; exit 0" TERM; echo ready; while true; do sleep 0.2; done'
    pod = exec_pod(
        "trapper", container(["sh", "-c", trap], volumeMounts=DATA_MOUNT), **data_volume("signals")
    )
    pod.spec.terminationGracePeriodSeconds = 30
    client.create(pod, namespace=namespace)
    helpers.wait_for(client, Pod, "trapper", namespace, phase_is("Running"), timeout=60)
    deadline = time.monotonic() + 30
    while logs(client, "trapper", namespace) != ["ready"]:
        assert time.monotonic() < deadline, "the trap was never set"
        time.sleep(0.2)
    started = time.monotonic()
    client.delete(Pod, "trapper", namespace=namespace)
    while any(p.metadata.name == "trapper" for p in client.list(Pod, namespace=namespace)):
        assert time.monotonic() - started < 25, "the pod outlived SIGTERM: it must have waited for SIGKILL"
        time.sleep(0.2)
    check = exec_pod(
        "check", container(["cat", "/data/term"], volumeMounts=DATA_MOUNT), **data_volume("signals")
    )
    client.create(check, namespace=namespace)
    helpers.wait_for(client, Pod, "check", namespace, phase_is("Succeeded", "Failed"), timeout=60)
    assert logs(client, "check", namespace) == ["got-SIGTERM"]


def processes_with(marker: str) -> list[int]:
    """PIDs on this machine whose environment holds MARKER=marker (inherited by every descendant)."""
    found = []
    needle = f"MARKER={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A second control plane allowing one exec pod at a time, only for this test, which kills it."""
    c = _start(tmp_path, "--exec-max-pods", "1")
    try:
        yield c
    finally:
        c.client.close()
        if c.proc is not None and c.proc.poll() is None:
            terminate(c.proc)
        if c.proc is not None and c.proc.stdout is not None:
            c.proc.stdout.close()
        if c.log is not None:
            c.log.close()


def test_the_cap_holds_pods_pending_and_killing_the_harness_leaves_no_process_behind(
    own_cluster: Cluster,
) -> None:
    client, proc = own_cluster.client, own_cluster.proc
    assert proc is not None
    ns = f"t-{uuid.uuid4().hex[:10]}"
    client.create(Namespace(metadata=ObjectMeta(name=ns)))
    helpers.wait_for(client, ServiceAccount, "default", ns, lambda sa: True, timeout=30)
    marker = f"marker{uuid.uuid4().hex[:12]}"
    # sh ignores SIGTERM and has two children: one in the background, one in the foreground.
    script = 'trap "" TERM; sleep 1000 & sleep 1001; wait'
    env = [EnvVar(name="MARKER", value=marker)]
    client.create(exec_pod("survivor", container(["sh", "-c", script], env=env)), namespace=ns)
    helpers.wait_for(client, Pod, "survivor", ns, phase_is("Running"), timeout=60)
    client.create(exec_pod("second", container(["sleep", "1002"], env=env)), namespace=ns)
    waiting = helpers.wait_for(
        client,
        Pod,
        "second",
        ns,
        lambda p: bool(
            p.status and p.status.containerStatuses and p.status.containerStatuses[0].state.waiting
        ),
        what="a waiting container",
    )
    assert waiting.status.phase == "Pending"
    assert "waiting for an exec slot" in waiting.status.containerStatuses[0].state.waiting.message
    deadline = time.monotonic() + 30
    while len(processes_with(marker)) < 3:  # sh and its two sleeps
        assert time.monotonic() < deadline, f"the pod's processes never appeared: {processes_with(marker)}"
        time.sleep(0.2)
    time.sleep(1)
    assert client.get(Pod, "second", namespace=ns).status.phase == "Pending", "the cap of 1 was not held"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while processes_with(marker):
        assert time.monotonic() < deadline, f"processes survived the harness: {processes_with(marker)}"
        time.sleep(0.2)
