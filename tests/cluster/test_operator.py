"""The Pipeline operator against the real control plane."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from lightkube import ApiError, Client, codecs
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Event, Pod

from dataworks.kube.resources import Pipeline
from tests.cluster import helpers
from tests.cluster.conftest import Cluster, Operator
from tests.cluster.pipelines import (
    JobRecorder,
    create,
    eventually,
    jobs,
    manifest,
    patch_spec,
    status,
    step,
    step_phases,
    wait_phase,
)

REPO = Path(__file__).resolve().parents[2]
CHUNK_SQL = {"sql": "SELECT * FROM chunk"}  # a fan-out's workers need something to run
pytestmark = pytest.mark.usefixtures("operator")


def test_diamond_runs_in_dependency_order(cluster: Cluster, client: Client, namespace: str) -> None:
    diamond = manifest("diamond", [step("a"), step("b", ["a"]), step("c", ["a"]), step("d", ["b", "c"])])
    with JobRecorder(cluster.kubeconfig, namespace) as rec:
        create(client, namespace, diamond)
        st = wait_phase(client, namespace, "diamond", "Completed")
        eventually(
            lambda: ("complete", "diamond-d") in rec.events, what="the watch to see diamond-d Complete"
        )
    assert st["progress"] == "4/4"
    for upstream, downstream in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]:
        assert rec.index("complete", f"diamond-{upstream}") < rec.index("created", f"diamond-{downstream}")
    # b and c run in parallel: both exist before either completes
    assert max(rec.index("created", "diamond-b"), rec.index("created", "diamond-c")) < min(
        rec.index("complete", "diamond-b"), rec.index("complete", "diamond-c")
    )
    job = client.get(Job, "diamond-a", namespace=namespace)
    assert job.metadata.labels["dataworks.io/pipeline"] == "diamond"
    assert job.metadata.labels["dataworks.io/step"] == "a"
    assert job.metadata.labels["dataworks.io/step-type"] == "container"
    (ref,) = job.metadata.ownerReferences
    assert (ref.kind, ref.name, ref.controller) == ("Pipeline", "diamond", True)


def test_seed_marketing_pipeline_completes(client: Client, namespace: str, cluster: Cluster) -> None:
    obj = yaml.safe_load((REPO / "examples" / "seed" / "marketing-q1-analysis.yaml").read_text())
    client.create(codecs.from_dict(obj), namespace=namespace)
    st = wait_phase(client, namespace, "marketing-q1-analysis", "Completed")
    assert step_phases(st) == {
        "fetch-campaign-data": "Completed",
        "join-user-data": "Completed",
        "generate-insights": "Completed",
    }
    fan_out = next(s for s in st["stepStatuses"] if s["name"] == "generate-insights")
    assert fan_out["workers"]["succeeded"] == 5
    cm = client.get(ConfigMap, "marketing-q1-analysis-steps", namespace=namespace)
    assert "JOIN users u ON c.user_id = u.id" in cm.data["join-user-data.json"]
    out = cluster.kubectl("get", "pipelines", "-n", namespace).stdout
    assert "marketing-q1-analysis   Completed   3/3" in out
    waited = cluster.kubectl(
        "wait", "--for=condition=Complete", "pipeline/marketing-q1-analysis", "-n", namespace, "--timeout=5s"
    )
    assert "condition met" in waited.stdout


def test_seed_production_pipeline_is_invalid_for_bigquery(client: Client, namespace: str) -> None:
    obj = yaml.safe_load((REPO / "examples" / "seed" / "production-etl-2024-01-15.yaml").read_text())
    client.create(codecs.from_dict(obj), namespace=namespace)
    st = wait_phase(client, namespace, "production-etl-2024-01-15", "Failed")
    valid = next(c for c in st["conditions"] if c["type"] == "Valid")
    assert valid["reason"] == "InvalidSpec"
    assert "step 'publish-to-warehouse'" in valid["message"]
    assert (
        "'bigquery' is not supported; supported destinations: postgres, file, duckdb, sqlite"
        in valid["message"]
    )
    assert jobs(client, namespace, "production-etl-2024-01-15") == []
    events = list(
        client.list(Event, namespace=namespace, fields={"involvedObject.name": "production-etl-2024-01-15"})
    )
    assert [(e.type, e.reason) for e in events] == [("Warning", "InvalidSpec")]


def test_fan_out_of_ten_workers(client: Client, namespace: str) -> None:
    create(
        client,
        namespace,
        manifest(
            "fan", [step("many", type="fan-out", image=None, command=None, parallelism=10, config=CHUNK_SQL)]
        ),
    )
    st = wait_phase(client, namespace, "fan", "Completed")
    (s,) = st["stepStatuses"]
    assert s["workers"] == {"active": 0, "succeeded": 10, "failed": 0}
    job = client.get(Job, "fan-many", namespace=namespace)
    assert (job.spec.completionMode, job.spec.completions, job.spec.parallelism) == ("Indexed", 10, 10)
    assert job.spec.backoffLimitPerIndex == 1
    env = {e.name: e for e in job.spec.template.spec.containers[0].env}
    assert env["TOTAL_WORKERS"].value == "10"
    assert "job-completion-index" in env["WORKER_INDEX"].valueFrom.fieldRef.fieldPath
    indexes = {
        p.metadata.annotations["batch.kubernetes.io/job-completion-index"]
        for p in client.list(Pod, namespace=namespace, labels={"batch.kubernetes.io/job-name": "fan-many"})
    }
    assert indexes == {str(i) for i in range(10)}


def test_step_fails_first_attempt_then_succeeds(client: Client, namespace: str) -> None:
    create(client, namespace, manifest("flaky", [step("x", fate={"fail-attempts": "1"}, retry={"limit": 2})]))
    st = wait_phase(client, namespace, "flaky", "Completed", timeout=120)
    assert st["stepStatuses"][0]["phase"] == "Completed"
    job = client.get(Job, "flaky-x", namespace=namespace)
    assert (job.status.failed, job.status.succeeded) == (1, 1)


@pytest.mark.parametrize(
    ("on_failure", "expected", "phase"),
    [
        (
            "fail",
            {"a": "Completed", "b": "Failed", "c": "Completed", "d": "Skipped", "e": "Completed"},
            "Failed",
        ),
        (
            "skip-dependents",
            {"a": "Completed", "b": "Failed", "c": "Completed", "d": "Skipped", "e": "Completed"},
            "Completed",
        ),
        (
            "continue",
            {"a": "Completed", "b": "Failed", "c": "Completed", "d": "Completed", "e": "Completed"},
            "Completed",
        ),
    ],
)
def test_failed_step_and_on_failure(
    client: Client, namespace: str, on_failure: str, expected: dict[str, str], phase: str
) -> None:
    steps = [
        step("a"),
        step(
            "b", ["a"], fate={"outcome": "fail", "exit-code": "3"}, retry={"limit": 0}, onFailure=on_failure
        ),
        step("c", ["a"]),
        step("d", ["b", "c"]),
        step("e", ["c"]),  # independent of b: always completes
    ]
    create(client, namespace, manifest("branchy", steps))
    st = wait_phase(client, namespace, "branchy", "Completed", "Failed")
    assert step_phases(st) == expected
    assert st["phase"] == phase
    if phase == "Failed":
        assert (
            st["message"]
            == "step b failed: BackoffLimitExceeded (Job has reached the specified backoff limit)"
        )
        failed = next(c for c in st["conditions"] if c["type"] == "Failed")
        assert (failed["status"], failed["reason"]) == ("True", "BackoffLimitExceeded")
        # Events are posted after the status write that they follow (by design), so wait for them.
        deadline = time.monotonic() + 15
        reasons: list[str | None] = []
        while "PipelineFailed" not in reasons and time.monotonic() < deadline:
            time.sleep(0.2)
            reasons = [
                e.reason
                for e in client.list(Event, namespace=namespace, fields={"involvedObject.name": "branchy"})
            ]
        assert "StepFailed" in reasons
        assert "PipelineFailed" in reasons


def test_cancel_deletes_running_jobs(client: Client, namespace: str) -> None:
    create(
        client,
        namespace,
        manifest("cancel-me", [step("slow", fate={"outcome": "run"}), step("after", ["slow"])]),
    )
    eventually(lambda: len(jobs(client, namespace, "cancel-me")) == 1, what="the first Job")
    patch_spec(client, namespace, "cancel-me", {"shutdown": "Terminate"})
    st = wait_phase(client, namespace, "cancel-me", "Cancelled")
    assert step_phases(st) == {"slow": "Cancelled", "after": "Cancelled"}
    eventually(lambda: jobs(client, namespace, "cancel-me") == [], what="the running Job to be deleted")


def test_suspend_and_resume(client: Client, namespace: str) -> None:
    create(
        client,
        namespace,
        manifest("pause", [step("one", fate={"duration": "2s"}), step("two", ["one"])], suspend=False),
    )
    eventually(lambda: len(jobs(client, namespace, "pause")) == 1, what="the first Job")
    patch_spec(client, namespace, "pause", {"suspend": True})
    wait_phase(client, namespace, "pause", "Suspended")
    eventually(
        lambda: bool(client.get(Job, "pause-one", namespace=namespace).spec.suspend), what="Job suspended"
    )
    time.sleep(3)
    assert [j.metadata.name for j in jobs(client, namespace, "pause")] == ["pause-one"]  # nothing new started
    patch_spec(client, namespace, "pause", {"suspend": False})
    st = wait_phase(client, namespace, "pause", "Completed")
    assert st["progress"] == "2/2"


def test_retry_all_failed_then_one_step(client: Client, namespace: str) -> None:
    steps = [
        step("a"),
        step("b", ["a"], fate={"fail-if-label": "dataworks.io/attempt=1"}, retry={"limit": 0}),
        step("c", ["b"]),
    ]
    create(client, namespace, manifest("again", steps))
    st = wait_phase(client, namespace, "again", "Failed")
    assert step_phases(st) == {"a": "Completed", "b": "Failed", "c": "Skipped"}
    patch_spec(client, namespace, "again", {"retry": {"id": "first"}})
    st = wait_phase(client, namespace, "again", "Completed")
    assert {s["name"]: s["attempt"] for s in st["stepStatuses"]} == {"a": 1, "b": 2, "c": 1}
    names = sorted(j.metadata.name for j in jobs(client, namespace, "again"))
    assert names == ["again-a", "again-b", "again-b-a2", "again-c"]
    # One named step, on a completed pipeline: only it re-runs.
    patch_spec(client, namespace, "again", {"retry": {"id": "second", "step": "a"}})

    # The new Job appears before the status write of the same reconcile: wait for the status itself.
    def a_rerun(p: object) -> bool:
        st = status(p)
        a = next(s for s in st.get("stepStatuses", []) if s["name"] == "a")
        return st.get("phase") == "Completed" and a["attempt"] == 2 and a["phase"] == "Completed"

    done = helpers.wait_for(client, Pipeline, "again", namespace, a_rerun, what="step a re-run")
    assert {s["name"]: s["attempt"] for s in status(done)["stepStatuses"]} == {"a": 2, "b": 2, "c": 1}
    assert len(jobs(client, namespace, "again")) == 5


def test_operator_restart_mid_pipeline_creates_no_duplicates(
    client: Client, namespace: str, operator: Operator
) -> None:
    chain = [
        step("s1", fate={"duration": "1s"}),
        step("s2", ["s1"], fate={"duration": "1s"}),
        step("s3", ["s2"]),
    ]
    create(client, namespace, manifest("survivor", chain))
    eventually(lambda: len(jobs(client, namespace, "survivor")) >= 1, what="the first Job")
    operator.stop(kill=True)
    time.sleep(2)
    operator.start()
    st = wait_phase(client, namespace, "survivor", "Completed")
    assert st["progress"] == "3/3"
    assert sorted(j.metadata.name for j in jobs(client, namespace, "survivor")) == [
        "survivor-s1",
        "survivor-s2",
        "survivor-s3",
    ]


def test_deleting_a_pipeline_removes_its_jobs(client: Client, namespace: str) -> None:
    create(client, namespace, manifest("gone", [step("x", fate={"outcome": "run"})]))
    eventually(lambda: len(jobs(client, namespace, "gone")) == 1, what="the Job")
    client.delete(Pipeline, "gone", namespace=namespace)
    eventually(lambda: jobs(client, namespace, "gone") == [], timeout=60, what="the garbage collector")
    with pytest.raises(ApiError):
        client.get(Pipeline, "gone", namespace=namespace)


def test_every_operator_pod_is_admitted_under_restricted(client: Client, namespace: str) -> None:
    create(
        client,
        namespace,
        manifest(
            "admitted",
            [
                step("c"),
                step("f", ["c"], type="fan-out", image=None, command=None, parallelism=3, config=CHUNK_SQL),
            ],
        ),
    )
    wait_phase(client, namespace, "admitted", "Completed")
    pods = list(client.list(Pod, namespace=namespace, labels={"dataworks.io/pipeline": "admitted"}))
    assert len(pods) == 4
    failed_creates = [e for e in client.list(Event, namespace=namespace) if e.reason == "FailedCreate"]
    assert failed_creates == []
    for p in pods:
        sc = p.spec.containers[0].securityContext
        assert sc.allowPrivilegeEscalation is False
        assert sc.capabilities.drop == ["ALL"]
        assert p.spec.securityContext.runAsNonRoot is True
        assert p.spec.securityContext.seccompProfile.type == "RuntimeDefault"


def test_status_is_kept_true_for_kubectl(client: Client, namespace: str) -> None:
    create(client, namespace, manifest("simple", [step("only")]))
    p = client.get(Pipeline, "simple", namespace=namespace)
    assert p.metadata.generation == 1
    st = wait_phase(client, namespace, "simple", "Completed")
    assert st["observedGeneration"] == 1
    assert st["totalSteps"] == 1
    assert st["completedSteps"] == 1
    assert st["startTime"] <= st["completionTime"]
    assert status(client.get(Pipeline, "simple", namespace=namespace))["duration"]


def test_ttl_after_finished_deletes_the_pipeline_and_its_jobs(client: Client, namespace: str) -> None:
    create(client, namespace, manifest("short-lived", [step("x")], ttlSecondsAfterFinished=2))
    wait_phase(client, namespace, "short-lived", "Completed")

    def gone() -> bool:
        try:
            client.get(Pipeline, "short-lived", namespace=namespace)
        except ApiError as e:
            return e.status.code == 404
        return False

    eventually(gone, timeout=30, what="the pipeline to be deleted after its TTL")
    eventually(
        lambda: jobs(client, namespace, "short-lived") == [], timeout=60, what="its Jobs to be collected"
    )


def test_active_deadline_fails_the_pipeline_on_time(client: Client, namespace: str) -> None:
    create(
        client,
        namespace,
        manifest("late", [step("forever", fate={"outcome": "run"})], activeDeadlineSeconds=3),
    )
    st = wait_phase(client, namespace, "late", "Failed", timeout=30)
    failed = next(c for c in st["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "DeadlineExceeded"
    assert step_phases(st) == {"forever": "Cancelled"}
    eventually(lambda: jobs(client, namespace, "late") == [], what="the running Job to be deleted")


def test_editing_a_waiting_step_applies_and_a_running_one_is_reported(client: Client, namespace: str) -> None:
    steps = [
        step("first", fate={"duration": "3s"}),
        step(
            "aggregate", ["first"], type="fan-out", image=None, command=None, parallelism=2, config=CHUNK_SQL
        ),
    ]
    create(client, namespace, manifest("edited", steps))
    eventually(lambda: len(jobs(client, namespace, "edited")) == 1, what="the first Job")
    # The seed's `kubectl patch` of a waiting fan-out's resources, and an edit to the running step.
    edited = [
        {**steps[0], "args": ["changed"]},
        {**steps[1], "resources": {"requests": {"cpu": "3", "memory": "6Gi"}}},
    ]
    patch_spec(client, namespace, "edited", {"steps": edited})
    wait_phase(client, namespace, "edited", "Completed")
    job = client.get(Job, "edited-aggregate", namespace=namespace)
    assert job.spec.template.spec.containers[0].resources.requests == {"cpu": "3", "memory": "6Gi"}
    first = client.get(Job, "edited-first", namespace=namespace)
    assert not first.spec.template.spec.containers[0].args
    events = [e for e in client.list(Event, namespace=namespace, fields={"involvedObject.name": "edited"})]
    ignored = [e.message for e in events if e.reason == "SpecChangeIgnored"]
    assert ignored == ["step first is running: the edit applies to its next attempt (spec.retry)"]


def test_oom_killed_step_names_the_reason(client: Client, namespace: str) -> None:
    oom = {"outcome": "fail", "exit-code": "137", "reason": "OOMKilled"}
    create(client, namespace, manifest("hungry", [step("big", fate=oom, retry={"limit": 0})]))
    st = wait_phase(client, namespace, "hungry", "Failed")
    (s,) = st["stepStatuses"]
    assert s["reason"] == "OOMKilled"
    assert st["message"].startswith("step big failed: OOMKilled (BackoffLimitExceeded:")
    failed = next(c for c in st["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "OOMKilled"


def test_the_workers_error_line_reaches_the_step_status(client: Client, namespace: str) -> None:
    said = {
        "outcome": "fail",
        "message": "PROGRESS: 40.0%\nerror: step 'load': load into orders failed and was rolled back",
    }
    create(client, namespace, manifest("talks", [step("load", fate=said, retry={"limit": 0})]))
    st = wait_phase(client, namespace, "talks", "Failed")
    (s,) = st["stepStatuses"]
    assert s["message"].endswith(": step 'load': load into orders failed and was rolled back")


def test_a_join_of_249_steps_completes(client: Client, namespace: str) -> None:
    # dependsOn had maxItems 100: the API server refused this pipeline (422 "Too many").
    branches = [step(f"s{n:03d}", fate={"duration": "100ms"}) for n in range(249)]
    join = step("join", [b["name"] for b in branches])
    create(client, namespace, manifest("wide", [*branches, join]))
    st = wait_phase(client, namespace, "wide", "Completed", timeout=300)
    assert st["progress"] == "250/250"
    finished = {s["name"]: s["completionTime"] for s in st["stepStatuses"]}
    started = next(s["startTime"] for s in st["stepStatuses"] if s["name"] == "join")
    assert started >= max(t for name, t in finished.items() if name != "join")
    # The largest pipeline allowed, whose last step joins all 499 others, is accepted too.
    most = [step(f"m{n:03d}") for n in range(499)]
    biggest = manifest("biggest", [*most, step("join", [m["name"] for m in most])])
    client.create(codecs.from_dict(biggest), namespace=namespace, dry_run=True)


def test_no_retry_exit_code_137_fails_an_oom_killed_step_at_once(client: Client, namespace: str) -> None:
    # What replaces noRetryReasons: [OOMKilled] (docs/decisions.md): the Job's podFailurePolicy.
    oom = {"outcome": "fail", "exit-code": "137", "reason": "OOMKilled"}
    retry = {"limit": 3, "noRetryExitCodes": [137]}
    create(client, namespace, manifest("oom-once", [step("big", fate=oom, retry=retry)]))
    st = wait_phase(client, namespace, "oom-once", "Failed")
    (s,) = st["stepStatuses"]
    assert s["reason"] == "OOMKilled"
    assert st["message"].startswith("step big failed: OOMKilled (PodFailurePolicy:")
    pods = list(client.list(Pod, namespace=namespace, labels={"dataworks.io/pipeline": "oom-once"}))
    assert len(pods) == 1  # no retry
