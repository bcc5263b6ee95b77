"""TrainingJob on the real control plane: children, states, gang restarts, suspend, validation.

Workers are played by the test cluster's fate annotations (test/cluster/README.md),
given through `spec.podAnnotations`; real PyTorch runs in the local tier.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import ApiError, Client, codecs
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Event, Node, PersistentVolumeClaim, Pod, Service
from lightkube.types import PatchType

from dataworks.api import trainingjob as api
from dataworks.kube import resources
from tests.cluster import helpers
from tests.cluster.conftest import Operator

pytestmark = pytest.mark.usefixtures("operator")

TrainingJob = resources.of(api.INFO)
FATE = "fate.testcluster.dataworks.io/"
OWNER = api.OWNER_LABEL
REPO = Path(__file__).resolve().parents[2]
# The seed's test-job, with only its apiVersion changed (docs/trainingjob.md shows it).
SEED = yaml.safe_load((REPO / "examples" / "training" / "test-job.yaml").read_text())


def manifest(name: str, workers: int = 2, fate: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    obj = copy.deepcopy(SEED)
    obj["metadata"]["name"] = name
    obj["spec"].update(numWorkers=workers, gpusPerWorker=0, image="busybox:1.36", command=["true"])
    obj["spec"]["podAnnotations"] = {
        FATE + "duration": "1s",
        **{FATE + k: v for k, v in (fate or {}).items()},
    }
    obj["spec"].update(spec)
    return obj


def create(client: Client, namespace: str, obj: dict[str, Any]) -> None:
    client.create(codecs.from_dict(obj), namespace=namespace)


def status(client: Client, namespace: str, name: str) -> dict[str, Any]:
    return dict(client.get(TrainingJob, name, namespace=namespace).to_dict().get("status") or {})


def wait_state(
    client: Client, namespace: str, name: str, *states: str, timeout: float = 60
) -> dict[str, Any]:
    obj = helpers.wait_for(
        client,
        TrainingJob,
        name,
        namespace,
        lambda o: (o.to_dict().get("status") or {}).get("state") in states,
        timeout=timeout,
        what=f"state in {states}",
    )
    return dict(obj.to_dict()["status"])


def condition(st: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in st.get("conditions") or [] if c["type"] == type_), None)


def test_the_seeds_example_runs_on_the_gpu_node_to_completion(client: Client, namespace: str) -> None:
    create(client, namespace, SEED)
    st = wait_state(client, namespace, "test-job", "Succeeded", timeout=60)
    assert condition(st, "Running")["reason"] == "Succeeded"  # type: ignore[index]
    job = client.get(Job, "test-job-a1", namespace=namespace)
    pod = job.spec.template.spec
    worker = pod.containers[0]
    assert worker.image == "training-image:resnet50"  # the operator's default pattern
    assert worker.command == ["torchrun", "/app/train.py"]
    assert worker.resources.limits["nvidia.com/gpu"] == "1"
    assert any(t.key == "nvidia.com/gpu" for t in pod.tolerations)
    env = {e.name: e.value for e in worker.env}
    assert env["PET_NNODES"] == "2"
    assert env["PET_NPROC_PER_NODE"] == "1"
    assert env["PET_MASTER_ADDR"] == f"test-job-a1-0.test-job.{namespace}.svc"
    assert env["PET_MASTER_PORT"] == "29500"
    assert env["HYPERPARAM_LEARNING_RATE"] == "0.001"
    assert env["DATAWORKS_BACKEND"] == "nccl"
    assert env["DATAWORKS_CHECKPOINT_DIR"] == "/checkpoints"
    rank = next(e for e in worker.env if e.name == "PET_NODE_RANK")
    assert "job-completion-index" in rank.valueFrom.fieldRef.fieldPath


def test_workers_that_cannot_schedule_say_why_in_the_schedulers_words(client: Client, namespace: str) -> None:
    create(client, namespace, manifest("greedy", gpusPerWorker=8))
    st = wait_state(client, namespace, "greedy", "Initializing")
    deadline = time.monotonic() + 30
    while "nvidia.com/gpu" not in (st.get("message") or "") and time.monotonic() < deadline:
        time.sleep(0.3)
        st = status(client, namespace, "greedy")
    assert "Insufficient nvidia.com/gpu" in st["message"], st
    cond = condition(st, "Initializing")
    assert cond is not None
    assert cond["reason"] == "Unschedulable"


def test_workers_run_then_succeed_with_their_children(client: Client, namespace: str, cluster: Any) -> None:
    create(client, namespace, manifest("small", workers=3))
    st = wait_state(client, namespace, "small", "Succeeded", timeout=60)
    assert st["ready"] == "0/3"
    assert st["attempt"] == 1
    assert st["restartCount"] == 0
    assert condition(st, "Succeeded")["status"] == "True"  # type: ignore[index]
    running = condition(st, "Running")
    assert running is not None  # it ran, and is no longer running
    assert (running["status"], running["reason"]) == ("False", "Succeeded")
    job = client.get(Job, "small-a1", namespace=namespace)
    assert job.spec.completionMode == "Indexed"
    assert job.spec.completions == 3
    assert job.spec.template.spec.subdomain == "small"
    svc = client.get(Service, "small", namespace=namespace)
    assert svc.spec.clusterIP == "None"
    assert svc.spec.publishNotReadyAddresses
    cm = client.get(ConfigMap, "small-config", namespace=namespace)
    assert cm.data["backend"] == "gloo"
    claim = client.get(PersistentVolumeClaim, "small-checkpoints", namespace=namespace)
    assert claim.spec.accessModes == ["ReadWriteMany"]
    for obj in (job, svc, cm, claim):
        assert obj.metadata.ownerReferences[0].kind == "TrainingJob"
    printed = cluster.kubectl("get", "tj", "small", "-n", namespace).stdout.split("\n")
    assert printed[0].split() == ["NAME", "STATE", "READY", "EPOCH", "PROGRESS", "LOSS", "RESTARTS", "AGE"]
    assert printed[1].split()[:4] == ["small", "Succeeded", "0/3", "0"]


def test_a_failed_worker_restarts_the_whole_gang_and_the_history_says_why(
    client: Client, namespace: str
) -> None:
    fate = {"fail-if-label": "dataworks.io/attempt=1", "exit-code": "3", "message": "worker {index} lost"}
    create(client, namespace, manifest("flaky", fate=fate))
    st = wait_state(client, namespace, "flaky", "Succeeded", timeout=90)
    assert st["attempt"] == 2
    assert st["restartCount"] == 1
    (restart,) = st["restarts"]
    assert restart["attempt"] == 2
    assert restart["cause"] == "ExitCode"
    assert restart["exitCode"] == 3
    assert restart["worker"] in (0, 1)
    assert restart["counted"]
    with pytest.raises(ApiError):
        client.get(Job, "flaky-a1", namespace=namespace)  # the failed attempt's Job is gone


def test_a_non_retryable_failure_fails_at_once_naming_the_worker(client: Client, namespace: str) -> None:
    fate = {"outcome": "fail", "exit-code": "137", "reason": "OOMKilled", "fail-indexes": "1"}
    obj = manifest("oom", fate=fate, failurePolicy={"nonRetryableReasons": ["OOMKilled"]})
    create(client, namespace, obj)
    st = wait_state(client, namespace, "oom", "Failed", timeout=60)
    assert st["attempt"] == 1
    assert "worker 1 failed with exit code 137 (OOMKilled)" in st["message"], st
    assert condition(st, "Failed")["reason"] == "OOMKilled"  # type: ignore[index]


def test_the_restart_budget_runs_out(client: Client, namespace: str) -> None:
    create(client, namespace, manifest("doomed", fate={"outcome": "fail", "exit-code": "1"}, backoffLimit=1))
    st = wait_state(client, namespace, "doomed", "Failed", timeout=90)
    assert st["attempt"] == 2
    assert st["restartCount"] == 1
    assert "backoffLimit (1 restarts) reached" in st["message"]


def test_suspend_and_resume(client: Client, namespace: str) -> None:
    create(client, namespace, manifest("pausable", fate={"duration": "30s"}))
    wait_state(client, namespace, "pausable", "Running", timeout=60)
    client.patch(
        TrainingJob, "pausable", {"spec": {"suspend": True}}, namespace=namespace, patch_type=PatchType.MERGE
    )
    wait_state(client, namespace, "pausable", "Suspended")
    helpers.wait_for(
        client, Job, "pausable-a1", namespace, lambda j: bool(j.spec.suspend), what="Job suspended"
    )
    client.patch(
        TrainingJob, "pausable", {"spec": {"suspend": False}}, namespace=namespace, patch_type=PatchType.MERGE
    )
    st = wait_state(client, namespace, "pausable", "Initializing", "Running")
    assert st["attempt"] == 1


def test_the_immutable_fields_cannot_change_while_it_runs(client: Client, namespace: str) -> None:
    create(client, namespace, manifest("fixed", fate={"duration": "30s"}))
    wait_state(client, namespace, "fixed", "Running", timeout=60)
    with pytest.raises(ApiError) as err:
        client.patch(
            TrainingJob, "fixed", {"spec": {"numWorkers": 4}}, namespace=namespace, patch_type=PatchType.MERGE
        )
    assert "spec.numWorkers cannot change while the training runs" in err.value.status.message
    client.patch(
        TrainingJob, "fixed", {"spec": {"backoffLimit": 5}}, namespace=namespace, patch_type=PatchType.MERGE
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"numWorkers": 33}, "spec.numWorkers", id="too-many-workers"),
        pytest.param({"numWorkers": 0}, "spec.numWorkers", id="no-workers"),
        pytest.param({"gpusPerWorker": 9}, "spec.gpusPerWorker", id="too-many-gpus"),
        pytest.param({"backoffLimit": 11}, "spec.backoffLimit", id="backoff-limit-over-10"),
        pytest.param({"model": ""}, "spec.model", id="empty-model"),
        pytest.param(
            {"checkpoint": {"storage": {"type": "nfs"}}}, "spec.checkpoint.storage.type", id="storage-type"
        ),
        pytest.param({"networking": {"backend": "mpi"}}, "spec.networking.backend", id="backend"),
        pytest.param({"networking": {"masterPort": 80}}, "spec.networking.masterPort", id="privileged-port"),
        pytest.param({"checkpoint": {"frequency": 0}}, "spec.checkpoint.frequency", id="frequency-zero"),
        pytest.param({"numWorker": 2}, "numWorker", id="misspelt-field"),
        pytest.param(
            {"networking": {"rendezvousTimeoutSeconds": 5}},
            "spec.networking.rendezvousTimeoutSeconds",
            id="rendezvous-timeout-too-short",
        ),
        pytest.param(
            {"tracking": {"mlflow": {"trackingUri": "mlflow:5000"}}},
            "spec.tracking.mlflow.trackingUri",
            id="tracking-uri-not-http",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_field(  # noqa: PLR0917 (fixtures, then the table's columns)
    client: Client, namespace: str, cluster: Any, tmp_path: Any, change: dict[str, Any], field: str
) -> None:
    obj = manifest("bad")
    obj["spec"].update(change)
    path = tmp_path / "tj.yaml"
    path.write_text(yaml.safe_dump(obj))
    out = cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", str(path), check=False)
    assert out.returncode != 0
    assert field in out.stderr, out.stderr


def test_a_name_too_long_for_the_workers_hostnames_is_refused(client: Client, namespace: str) -> None:
    with pytest.raises(ApiError) as err:
        create(client, namespace, manifest("x" * 51))
    assert "at most 50 characters" in err.value.status.message


def progress_line(epoch: int, loss: float, run_id: str | None = None) -> str:
    saved = {
        "epoch": epoch - 1,
        "step": 0,
        "path": f"/checkpoints/ckpt-{epoch - 1:06d}",
        "time": 1796040000.0,
    }
    body = {"epoch": epoch, "totalEpochs": 10, "metrics": {"loss": loss}, "checkpoint": saved}
    if run_id:
        body["mlflow"] = {"runId": run_id, "url": f"http://mlflow:5000/#/experiments/1/runs/{run_id}"}
    return "DATAWORKS_PROGRESS " + json.dumps(body, separators=(",", ":"), sort_keys=True)


def test_rank_zeros_progress_lines_reach_the_status(client: Client, namespace: str, cluster: Any) -> None:
    lines = "\n".join(["starting", progress_line(1, 0.9), progress_line(5, 0.5, run_id="f00d")])
    fate = {"duration": "180s", "logs": lines, "log-interval": "1s"}
    # No checkpoint claim: its binding is not what this test is about, and it slows a loaded machine.
    obj = manifest("learner", fate=fate, progressDeadlineSeconds=10, checkpoint={"enabled": False})
    create(client, namespace, obj)
    obj = helpers.wait_for(
        client,
        TrainingJob,
        "learner",
        namespace,
        lambda o: (o.to_dict().get("status") or {}).get("currentEpoch") == 5,
        timeout=150,  # a loaded CI machine has taken over 60 s
        what="epoch 5 in status",
    )
    st = obj.to_dict()["status"]
    assert st["progress"] == "50%"
    assert st["totalEpochs"] == 10
    assert st["metrics"] == {"loss": 0.5}
    assert st["lastCheckpoint"]["epoch"] == 4
    assert st["lastCheckpoint"]["path"] == "/checkpoints/ckpt-000004"
    assert st["tracking"] == {
        "mlflowRunId": "f00d",
        "mlflowRunUrl": "http://mlflow:5000/#/experiments/1/runs/f00d",
    }
    printed = cluster.kubectl("get", "tj", "learner", "-n", namespace).stdout.split("\n")[1].split()
    assert printed[1:6] == ["Running", "2/2", "5", "50%", "0.5"]
    ctl = str(Path(sys.executable).parent / "dataworks")
    described = subprocess.run(
        [ctl, "describe", "tj/learner", "--kubeconfig", cluster.kubeconfig, "-n", namespace],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert described.returncode == 0, described.stderr
    assert "Progress:    epoch 5 of 10 (50%); loss 0.5" in described.stdout
    assert "Checkpoint:  epoch 4 step 0 at /checkpoints/ckpt-000004" in described.stdout
    assert "MLflow run:  f00d  http://mlflow:5000/#/experiments/1/runs/f00d" in described.stdout


def test_a_worker_that_stops_being_ready_leaves_the_gang_running(client: Client, namespace: str) -> None:
    # A failing readiness probe, or a node that missed its heartbeats, makes a running pod not
    # ready. The gang keeps running, says so, and still reports progress; it is ready again after.
    fate = {"duration": "120s", "logs": progress_line(2, 0.8), "log-interval": "1s"}
    create(client, namespace, manifest("steady", fate=fate, checkpoint={"enabled": False}))
    wait_state(client, namespace, "steady", "Running")
    (pod,) = [
        p
        for p in client.list(Pod, namespace=namespace, labels={"batch.kubernetes.io/job-name": "steady-a1"})
        if p.metadata.annotations["batch.kubernetes.io/job-completion-index"] == "1"
    ]
    unready = [
        {"type": t, "status": "False", "reason": "ReadinessProbeFailed"} for t in ("Ready", "ContainersReady")
    ]
    client.patch(Pod.Status, pod.metadata.name, {"status": {"conditions": unready}}, namespace=namespace)
    obj = helpers.wait_for(
        client,
        TrainingJob,
        "steady",
        namespace,
        lambda o: (o.to_dict().get("status") or {}).get("ready") == "1/2",
        what="1/2 ready",
    )
    st = obj.to_dict()["status"]
    assert st["state"] == "Running"
    assert condition(st, "Running")["reason"] == "WorkersNotReady"  # type: ignore[index]
    assert st["message"].startswith("1 of 2 workers are not ready (attempt 1)")
    helpers.wait_for(
        client,
        TrainingJob,
        "steady",
        namespace,
        lambda o: (o.to_dict().get("status") or {}).get("currentEpoch") == 2,
        what="progress while a worker is not ready",
    )
    warned = [
        e
        for e in client.list(Event, namespace=namespace)
        if e.involvedObject.name == "steady" and e.reason == "WorkersNotReady"
    ]
    assert [e.type for e in warned] == ["Warning"]
    ready = [{"type": t, "status": "True"} for t in ("Ready", "ContainersReady")]
    client.patch(Pod.Status, pod.metadata.name, {"status": {"conditions": ready}}, namespace=namespace)
    obj = helpers.wait_for(
        client,
        TrainingJob,
        "steady",
        namespace,
        lambda o: (o.to_dict().get("status") or {}).get("ready") == "2/2",
        what="2/2 ready again",
    )
    assert obj.to_dict()["status"]["message"] == "all 2 workers are running (attempt 1)"


def test_an_eviction_restarts_the_gang_without_counting_against_the_budget(
    client: Client, namespace: str
) -> None:
    # backoffLimit 0: a counted restart would fail the TrainingJob at once. The eviction goes
    # through the Eviction API, as `kubectl drain` does; the API server marks the pod with
    # DisruptionTarget, the harness stops it as a kubelet would (Failed), and the Job's
    # podFailurePolicy fails the attempt naming the pod.
    create(client, namespace, manifest("evicted", fate={"duration": "120s"}, backoffLimit=0))
    wait_state(client, namespace, "evicted", "Running")
    (pod,) = [
        p
        for p in client.list(Pod, namespace=namespace, labels={"batch.kubernetes.io/job-name": "evicted-a1"})
        if p.metadata.annotations["batch.kubernetes.io/job-completion-index"] == "1"
    ]
    eviction = Pod.Eviction(metadata=ObjectMeta(name=pod.metadata.name, namespace=namespace))
    client.create(eviction, name=pod.metadata.name, namespace=namespace)
    obj = helpers.wait_for(
        client,
        TrainingJob,
        "evicted",
        namespace,
        lambda o: (o.to_dict().get("status") or {}).get("attempt") == 2,
        timeout=60,
        what="the gang restarted as attempt 2",
    )
    st = obj.to_dict()["status"]
    assert st["state"] != "Failed", st
    (restart,) = st["restarts"]
    assert restart["cause"] == "Evicted", restart
    assert restart["worker"] == 1, restart
    assert restart["counted"] is False
    assert st.get("restartCount", 0) == 0
    st = wait_state(client, namespace, "evicted", "Running")
    assert st["attempt"] == 2
    reasons = [
        e.reason for e in client.list(Event, namespace=namespace) if e.involvedObject.name == "evicted"
    ]
    assert "Restarting" in reasons, reasons


@pytest.mark.parametrize(
    ("example", "workers", "gpus"),
    [
        pytest.param("trainingjob-simple.yaml", 1, 0, id="simple"),
        pytest.param("trainingjob-distributed.yaml", 4, 0, id="distributed"),
        pytest.param("trainingjob-gpu.yaml", 2, 2, id="gpu"),
    ],
)
def test_the_seeds_three_examples_run_to_completion(
    client: Client, namespace: str, example: str, workers: int, gpus: int
) -> None:
    obj = yaml.safe_load((REPO / "examples" / "training" / example).read_text())
    name = obj["metadata"]["name"]
    create(client, namespace, obj)
    st = wait_state(client, namespace, name, "Succeeded", timeout=90)
    assert st["attempt"] == 1
    job = client.get(Job, f"{name}-a1", namespace=namespace)
    assert job.spec.completions == job.spec.parallelism == workers
    (worker,) = job.spec.template.spec.containers
    assert (worker.resources.limits or {}).get("nvidia.com/gpu") == (str(gpus) if gpus else None)
    pods = list(client.list(Pod, namespace=namespace, labels={"batch.kubernetes.io/job-name": f"{name}-a1"}))
    nodes = {p.spec.nodeName for p in pods}
    if gpus:
        assert all(client.get(Node, n).metadata.labels.get("accelerator") == "nvidia" for n in nodes)
    assert len(pods) >= workers


def test_operator_killed_while_a_worker_fails_restarts_the_gang_once(
    client: Client, namespace: str, operator: Operator
) -> None:
    # Worker 1 of attempt 1 fails while the operator is down (SIGKILL): the new process finds the
    # failed attempt, restarts the gang exactly once, and no child is created twice.
    fate = {
        "fail-if-label": "dataworks.io/attempt=1",
        "fail-indexes": "1",
        "duration": "3s",
        "exit-code": "3",
    }
    create(client, namespace, manifest("survivor", fate=fate))
    wait_state(client, namespace, "survivor", "Running")
    operator.stop(kill=True)
    try:
        helpers.wait_for(client, Job, "survivor-a1", namespace, helpers.has_condition("Failed"), timeout=60)
    finally:
        operator.start()
    st = wait_state(client, namespace, "survivor", "Succeeded", timeout=90)
    assert st["attempt"] == 2
    assert [r["attempt"] for r in st["restarts"]] == [2]
    assert st["restarts"][0]["worker"] == 1
    owned = {OWNER: "survivor"}
    assert [j.metadata.name for j in client.list(Job, namespace=namespace, labels=owned)] == ["survivor-a2"]
    for kind in (ConfigMap, Service, PersistentVolumeClaim):
        assert len(list(client.list(kind, namespace=namespace, labels=owned))) == 1, kind


def test_deleting_a_trainingjob_removes_its_children(client: Client, namespace: str) -> None:
    create(client, namespace, manifest("doomed", fate={"duration": "120s"}))
    wait_state(client, namespace, "doomed", "Running")
    owned = {OWNER: "doomed"}
    kinds = (Job, ConfigMap, Service, PersistentVolumeClaim)
    assert all(list(client.list(kind, namespace=namespace, labels=owned)) for kind in kinds)
    client.delete(TrainingJob, "doomed", namespace=namespace)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the garbage collector follows the ownerReferences
        left = [k.__name__ for k in kinds if list(client.list(k, namespace=namespace, labels=owned))]
        if not left:
            break
        time.sleep(0.5)
    assert not left, f"still there: {left}"


def test_a_silent_rank_zero_turns_stalled(client: Client, namespace: str) -> None:
    # One report, then silence while the workers run (a hung collective): Stalled after the deadline.
    fate = {"duration": "120s", "logs": progress_line(1, 0.9)}
    create(
        client,
        namespace,
        manifest("quiet", fate=fate, progressDeadlineSeconds=10, checkpoint={"enabled": False}),
    )
    obj = helpers.wait_for(
        client,
        TrainingJob,
        "quiet",
        namespace,
        lambda o: (condition(o.to_dict().get("status") or {}, "Stalled") or {}).get("status") == "True",
        timeout=90,
        what="Stalled",
    )
    st = obj.to_dict()["status"]
    stalled = condition(st, "Stalled")
    assert stalled is not None
    assert stalled["reason"] == "ProgressDeadlineExceeded"
    assert "(progressDeadlineSeconds: 10)" in stalled["message"]
    assert st["state"] == "Running"
    assert st["currentEpoch"] == 1
