"""SequentialJobs on the real control plane, with the session's operator (every controller).

The seed's example runs with only its apiVersion changed and gives the seed's Events in order;
a failing step stops the sequence unless its onFailure is continue; steps retry per their
backoffLimit and time out per their deadline; a re-run from the failed step keeps the completed
steps' Jobs and outputs; suspend and resume; outputs from termination messages; `kubectl wait`
on Complete and on Progressing=False; an operator SIGKILLed mid-sequence duplicates no Job and no
Event; and a bad-input matrix whose every refusal names the field.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import ApiError, Client, codecs
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import PersistentVolumeClaim

from dataworks.kube import clients
from tests.builders import sequentialjobs as matrix
from tests.builders.sequentialjobs import FATE
from tests.cluster import helpers
from tests.cluster.conftest import Cluster, Operator
from tests.cluster.pipelines import JobRecorder, eventually
from tests.cluster.sequentialjobs import (
    SequentialJob,
    create,
    events,
    jobs,
    manifest,
    patch_spec,
    reasons,
    status,
    steps,
    wait_phase,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "sequentialjob" / "data-processing-pipeline.yaml"
CTL = str(Path(sys.executable).parent / "dataworks")
SEED_EVENTS = ["JobStarted", "JobCompleted"] * 3 + ["SequenceCompleted"]
pytestmark = pytest.mark.usefixtures("operator")


def ctl(cluster: Cluster, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [CTL, *args, "--kubeconfig", cluster.kubeconfig, "-n", namespace]
    env = {**os.environ, "COLUMNS": "200"}  # tables as wide as their rows: nothing wraps
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False, env=env)


def bound_claim(cluster: Cluster, namespace: str, name: str) -> None:
    """A PersistentVolumeClaim of the default StorageClass, bound by the test cluster's real
    volume binder and its directory provisioner (test/cluster/README.md)."""
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    cluster.client.create(codecs.from_dict(claim), namespace=namespace)
    helpers.wait_for(
        cluster.client,
        PersistentVolumeClaim,
        name,
        namespace,
        lambda c: c.status is not None and c.status.phase == "Bound",
        what="claim Bound",
    )


def conditions(st: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in st.get("conditions", [])}


def test_the_seed_example_completes_with_the_seeds_events_in_order(
    cluster: Cluster, client: Client, namespace: str
) -> None:
    bound_claim(cluster, namespace, "pipeline-data")
    cluster.kubectl(
        "create", "secret", "generic", "db-credentials", "-n", namespace, "--from-literal=connection-string=x"
    )
    with JobRecorder(cluster.kubeconfig, namespace) as rec:
        applied = cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE))
        assert applied.stdout.strip() == "sequentialjob.dataworks.io/data-processing-pipeline created"
        waited = cluster.kubectl(
            "wait",
            "-n",
            namespace,
            "--for=condition=Complete",
            "--timeout=60s",
            "sqj/data-processing-pipeline",
        )
        assert waited.returncode == 0, waited.stderr
        eventually(lambda: ("complete", "data-processing-pipeline-load") in rec.events, what="load Complete")
    order = [name.removeprefix("data-processing-pipeline-") for kind, name in rec.events if kind == "created"]
    assert order == ["extract", "transform", "load"]
    for before, after in (("extract", "transform"), ("transform", "load")):  # one Job at a time
        done = rec.index("complete", f"data-processing-pipeline-{before}")
        assert done < rec.index("created", f"data-processing-pipeline-{after}")
    eventually(
        lambda: reasons(client, namespace, "data-processing-pipeline") == SEED_EVENTS, what="the Events"
    )
    messages = [m for _, _, m in events(client, namespace, "data-processing-pipeline")]
    assert messages[:2] == [
        "Started job 0 (extract): Job data-processing-pipeline-extract",
        "Job 0 (extract) completed successfully",
    ]
    st = status(client.get(SequentialJob, "data-processing-pipeline", namespace=namespace))
    assert st["state"] == {"active": 0, "succeeded": 3, "failed": 0}
    assert st["progress"] == {"currentIndex": 2, "completedIndices": [0, 1, 2], "step": "3/3"}
    assert st["startTime"] <= st["completionTime"]
    assert st["observedGeneration"] == 1
    assert conditions(st) == {
        "Progressing": "False",
        "Available": "True",
        "Complete": "True",
        "Failed": "False",
        "Suspended": "False",
    }
    assert {c["observedGeneration"] for c in st["conditions"]} == {1}
    table = cluster.kubectl("get", "sqj", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "STEP", "STATUS", "AGE"]
    assert table[1].split()[:3] == ["data-processing-pipeline", "3/3", "Completed"]
    described = ctl(cluster, namespace, "describe", "sqj/data-processing-pipeline").stdout
    assert "✅ extract (completed in" in described
    assert "  load: job/data-processing-pipeline-load (run 1)" in described
    rows = [line.split() for line in described.split("Events")[-1].splitlines()]
    shown = [row[2] for row in rows if len(row) > 2 and row[2] in set(SEED_EVENTS)]
    assert shown[-len(SEED_EVENTS) :] == SEED_EVENTS, described  # in the order they were sent
    load = client.get(Job, "data-processing-pipeline-load", namespace=namespace)
    pod = load.spec.template
    assert pod.metadata.labels["app"] == "data-pipeline"
    assert pod.spec.volumes[0].persistentVolumeClaim.claimName == "pipeline-data"
    assert [c.name for c in pod.spec.containers] == ["load"]
    (ref,) = load.metadata.ownerReferences
    assert (ref.kind, ref.name, ref.controller) == ("SequentialJob", "data-processing-pipeline", True)


def test_a_failing_middle_step_stops_the_sequence(cluster: Cluster, client: Client, namespace: str) -> None:
    fate = {"fail-if-label": "dataworks.io/step=b", "exit-code": "3", "message": "no rows to transform"}
    create(client, namespace, manifest("stops", ["a", "b", "c"], fate=fate))
    waited = cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Progressing=False", "--timeout=60s", "sqj/stops"
    )
    assert waited.returncode == 0, waited.stderr
    st = wait_phase(client, namespace, "stops", "Failed", timeout=5)
    assert steps(st) == {"a": "Completed", "b": "Failed", "c": "Skipped"}
    assert jobs(client, namespace, "stops") == ["stops-a", "stops-b"]
    assert conditions(st)["Failed"] == "True"
    b = st["steps"][1]
    assert (b["reason"], b["output"]) == ("BackoffLimitExceeded", "no rows to transform")
    assert st["message"] == (
        "job 1 (b) failed: BackoffLimitExceeded "
        "(Job has reached the specified backoff limit: no rows to transform)"
    )
    assert st["progress"]["step"] == "2/3"
    eventually(lambda: "SequenceFailed" in reasons(client, namespace, "stops"), what="SequenceFailed")
    assert reasons(client, namespace, "stops") == [
        "JobStarted",
        "JobCompleted",
        "JobStarted",
        "JobFailed",
        "SequenceFailed",
    ]
    failed = [e for e in events(client, namespace, "stops") if e[1] == "JobFailed"]
    assert failed[0][0] == "Warning"


def test_on_failure_continue_goes_on(client: Client, namespace: str) -> None:
    fate = {"fail-if-label": "dataworks.io/step=b"}
    create(
        client,
        namespace,
        manifest("goes-on", ["a", "b", "c"], fate=fate, steps=[{"name": "b", "onFailure": "continue"}]),
    )
    st = wait_phase(client, namespace, "goes-on", "Completed")
    assert steps(st) == {"a": "Completed", "b": "Failed", "c": "Completed"}
    assert st["state"] == {"active": 0, "succeeded": 2, "failed": 1}
    assert jobs(client, namespace, "goes-on") == ["goes-on-a", "goes-on-b", "goes-on-c"]
    assert st["message"] == "2 of 3 jobs completed; job 1 (b) failed with onFailure: continue"


def test_per_step_retries_and_deadlines(client: Client, namespace: str) -> None:
    flaky = {"fail-if-label": "dataworks.io/step=b", "fail-attempts": "1"}
    create(
        client,
        namespace,
        manifest("retried", ["a", "b"], fate=flaky, steps=[{"name": "b", "backoffLimit": 1}]),
    )
    create(client, namespace, manifest("not-retried", ["a", "b"], fate=flaky))
    slow = {"duration": "30s"}
    create(
        client,
        namespace,
        manifest("timed-out", ["a"], fate=slow, steps=[{"name": "a", "activeDeadlineSeconds": 2}]),
    )
    st = wait_phase(client, namespace, "retried", "Completed")
    assert [(s["name"], s["failedPods"]) for s in st["steps"]] == [("a", 0), ("b", 1)]
    assert client.get(Job, "retried-b", namespace=namespace).spec.backoffLimit == 1
    st = wait_phase(client, namespace, "not-retried", "Failed")
    assert steps(st) == {"a": "Completed", "b": "Failed"}
    st = wait_phase(client, namespace, "timed-out", "Failed", timeout=30)
    assert st["steps"][0]["reason"] == "DeadlineExceeded"


def test_a_rerun_from_the_failed_step_keeps_the_completed_steps(
    cluster: Cluster, client: Client, namespace: str
) -> None:
    bound_claim(cluster, namespace, "shared")
    fate = {"fail-if-label": "dataworks.io/step=b", "message": "made by {pod}"}
    template = {"spec": {"volumes": [{"name": "work", "persistentVolumeClaim": {"claimName": "shared"}}]}}
    mount = [{"name": "work", "mountPath": "/work"}]
    containers: list[str | dict[str, Any]] = [
        {"name": n, "image": "busybox:1.36", "volumeMounts": mount} for n in ("a", "b", "c")
    ]
    create(client, namespace, manifest("again", containers, fate=fate, template=template))
    first = wait_phase(client, namespace, "again", "Failed")
    a_job = client.get(Job, "again-a", namespace=namespace)
    claim = client.get(PersistentVolumeClaim, "shared", namespace=namespace)
    refused = ctl(cluster, namespace, "retry", "sqj/again", "--step", "bb")
    assert refused.returncode == 2
    assert 'sequentialjob again has no step "bb"; did you mean b?' in refused.stderr
    # Fix what failed (here: the fate that failed b; null removes it), then re-run from the failed step.
    fix = {"template": {"metadata": {"annotations": {FATE + "fail-if-label": None}}}}
    patch_spec(client, namespace, "again", fix)
    asked = ctl(cluster, namespace, "retry", "sqj/again")
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.startswith("sequentialjob.dataworks.io/again retry r-")
    assert asked.stdout.rstrip().endswith("requested; will re-run: b, c")
    st = wait_phase(client, namespace, "again", "Completed")
    assert jobs(client, namespace, "again") == ["again-a", "again-b", "again-b-a2", "again-c"]
    assert client.get(Job, "again-a", namespace=namespace).metadata.uid == a_job.metadata.uid
    assert [(s["name"], s["attempt"]) for s in st["steps"]] == [("a", 1), ("b", 2), ("c", 1)]
    assert st["steps"][0]["output"] == first["steps"][0]["output"]
    assert st["steps"][0]["output"].startswith("made by again-a-")
    assert st["steps"][1]["output"].startswith("made by again-b-a2-")
    assert client.get(PersistentVolumeClaim, "shared", namespace=namespace).metadata.uid == claim.metadata.uid
    rerun = client.get(Job, "again-b-a2", namespace=namespace).spec.template.spec.volumes[0]
    assert rerun.persistentVolumeClaim.claimName == "shared"
    eventually(
        lambda: reasons(client, namespace, "again")[-1] == "SequenceCompleted", what="SequenceCompleted"
    )
    assert reasons(client, namespace, "again")[5:] == [
        "Rerun",
        "JobStarted",
        "JobCompleted",
        "JobStarted",
        "JobCompleted",
        "SequenceCompleted",
    ]


def test_suspend_and_resume(cluster: Cluster, client: Client, namespace: str) -> None:
    create(client, namespace, manifest("paused", ["a", "b"], fate={"duration": "3s"}))
    eventually(lambda: jobs(client, namespace, "paused") == ["paused-a"], what="the first Job")
    out = ctl(cluster, namespace, "suspend", "sqj/paused")
    assert out.stdout.strip() == "sequentialjob.dataworks.io/paused suspended", out.stderr
    st = wait_phase(client, namespace, "paused", "Suspended", timeout=20)
    assert conditions(st)["Suspended"] == "True"
    assert conditions(st)["Progressing"] == "True"  # kubectl wait Progressing=False waits for the end
    eventually(
        lambda: bool(client.get(Job, "paused-a", namespace=namespace).spec.suspend), what="Job suspended"
    )
    time.sleep(4)  # longer than the step: a suspended Job does not finish, nothing else starts
    assert jobs(client, namespace, "paused") == ["paused-a"]
    assert wait_phase(client, namespace, "paused", "Suspended", timeout=1)["state"]["active"] == 1
    out = ctl(cluster, namespace, "resume", "sqj/paused")
    assert out.stdout.strip() == "sequentialjob.dataworks.io/paused resumed", out.stderr
    assert steps(wait_phase(client, namespace, "paused", "Completed")) == {"a": "Completed", "b": "Completed"}


def test_outputs_come_from_termination_messages(client: Client, namespace: str) -> None:
    big = "x" * 5000
    create(client, namespace, manifest("outputs", ["a"], fate={"message": "rows=120 from {pod}"}))
    create(client, namespace, manifest("big-output", ["a"], fate={"message": big}))
    st = wait_phase(client, namespace, "outputs", "Completed")
    assert st["steps"][0]["output"].startswith("rows=120 from outputs-a-")
    st = wait_phase(client, namespace, "big-output", "Completed")
    assert st["steps"][0]["output"] == "x" * 4096


def test_the_sequence_deadline_and_ttl(client: Client, namespace: str) -> None:
    create(client, namespace, manifest("late", ["a", "b"], fate={"duration": "60s"}, activeDeadlineSeconds=3))
    create(client, namespace, manifest("brief", ["a"], ttlSecondsAfterFinished=0))
    st = wait_phase(client, namespace, "late", "Failed", timeout=30)
    assert steps(st) == {"a": "Cancelled", "b": "Skipped"}
    assert st["message"] == "the sequence exceeded activeDeadlineSeconds=3"
    eventually(lambda: jobs(client, namespace, "late") == [], what="the running Job deleted")
    eventually(
        lambda: not any(o.metadata.name == "brief" for o in client.list(SequentialJob, namespace=namespace)),
        what="the finished SequentialJob deleted by its TTL",
    )


def test_operator_killed_mid_sequence_duplicates_no_job_or_event(
    client: Client, namespace: str, operator: Operator
) -> None:
    create(client, namespace, manifest("survivor", ["s1", "s2", "s3"], fate={"duration": "1s"}))
    eventually(lambda: "survivor-s2" in jobs(client, namespace, "survivor"), what="the second Job")
    operator.stop(kill=True)
    time.sleep(2)  # s2 finishes while nobody watches
    operator.start()
    wait_phase(client, namespace, "survivor", "Completed")
    assert jobs(client, namespace, "survivor") == ["survivor-s1", "survivor-s2", "survivor-s3"]
    eventually(
        lambda: "SequenceCompleted" in reasons(client, namespace, "survivor"), what="SequenceCompleted"
    )
    found = events(client, namespace, "survivor")
    assert len(found) == len(set(found)), found  # no Event twice
    # In the seed's order, each at most once: an Event the SIGKILL cut off before it was posted is
    # lost, never repeated (Events follow the status write that records their transition).
    expected = [
        item
        for i in range(3)
        for item in (
            ("JobStarted", f"Started job {i} (s{i + 1}): Job survivor-s{i + 1}"),
            ("JobCompleted", f"Job {i} (s{i + 1}) completed successfully"),
        )
    ] + [("SequenceCompleted", "3 of 3 jobs completed")]
    got = [(reason, message) for _, reason, message in found]
    remaining = iter(expected)
    assert all(item in remaining for item in got), got  # a subsequence of the expected order


def test_bad_input_matrix_names_each_field(cluster: Cluster, client: Client, namespace: str) -> None:
    strict = clients.sync_client(cluster.kubeconfig, field_validation="Strict")
    try:
        for name, spec, message in matrix.UNKNOWN_FIELDS:
            with pytest.raises(ApiError) as err:
                create(strict, namespace, {**manifest(name, ["a"]), "spec": spec})
            assert err.value.status.code == 400, name
            assert message in err.value.status.message, (name, err.value.status.message)
    finally:
        strict.close()
    for name, spec, message in matrix.REJECTED:
        with pytest.raises(ApiError) as err:
            create(client, namespace, {**manifest(name, ["a"]), "spec": spec})
        assert err.value.status.code == 422, name
        assert message in err.value.status.message, (name, err.value.status.message)
    for name, spec, _ in matrix.INVALID:
        create(client, namespace, {**manifest(name, ["a"]), "spec": spec})
    for name, _, message in matrix.INVALID:
        st = wait_phase(client, namespace, name, "Failed", timeout=30)
        failed = next(c for c in st["conditions"] if c["type"] == "Failed")
        assert (failed["status"], failed["reason"]) == ("True", "ValidationFailed"), name
        assert message in failed["message"], (name, failed["message"])
        assert jobs(client, namespace, name) == [], name
    eventually(
        lambda: all("ValidationFailed" in reasons(client, namespace, n) for n, _, _ in matrix.INVALID),
        what="a ValidationFailed Event on each",
    )
    assert len(matrix.REJECTED) + len(matrix.UNKNOWN_FIELDS) + len(matrix.INVALID) >= 8


def test_the_documented_examples_run(client: Client, namespace: str) -> None:
    """Every SequentialJob docs/sequentialjob.md shows, beside the seed's (run above), completes."""
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "sequentialjob.md").read_text(), flags=re.S)
    documented = [d for b in blocks for d in yaml.safe_load_all(b) if isinstance(d, dict)]
    examples = [d for d in documented if d.get("kind") == "SequentialJob"]
    others = [d for d in examples if d["metadata"]["name"] != "data-processing-pipeline"]
    assert others
    for obj in others:
        create(client, namespace, obj)
    for obj in others:
        st = wait_phase(client, namespace, obj["metadata"]["name"], "Completed")
        assert st["progress"]["step"] == f"{len(obj['spec']['containers'])}/{len(obj['spec']['containers'])}"


def test_dataworks_runs_and_lists_sequential_jobs(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(manifest("two", ["a", "b"])))
    out = ctl(cluster, namespace, "run", "-f", str(path), "--name", "nightly", "--wait")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "sequentialjob.dataworks.io/nightly created",
        "sequentialjob nightly: Completed",
    ]
    table = ctl(cluster, namespace, "get", "sqj").stdout.splitlines()
    assert table[0].split() == ["NAME", "STEP", "STATUS", "AGE"]
    assert table[1].split()[:3] == ["nightly", "2/2", "Completed"]
    failing = tmp_path / "failing.yaml"
    failing.write_text(yaml.safe_dump(manifest("failing", ["a"], fate={"outcome": "fail"})))
    out = ctl(cluster, namespace, "run", "-f", str(failing), "--wait")
    assert out.returncode == 1, out.stderr
    assert out.stdout.splitlines()[-1].endswith(": Failed")
