"""The job-completion handler on the real control plane, with pods that run real commands:
archives (logs and results) that outlive their Jobs, exactly once per Job run."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest
from lightkube import Client
from lightkube.resources.core_v1 import ConfigMap, Pod

from dataworks.api import jobhandler as names
from tests.cluster import helpers
from tests.cluster import jobhandler as jh
from tests.cluster.conftest import Operator

pytestmark = pytest.mark.usefixtures("operator")


def test_a_successful_job_is_archived_then_deleted(client: Client, namespace: str) -> None:
    jh.create(client, namespace, jh.job("etl", "echo loading 42 rows; echo done >&2", init="echo warming up"))
    (cm,) = jh.wait_archive(client, namespace, "etl")
    jh.wait_gone(client, namespace, "etl")
    assert cm.metadata.name == "etl-results"
    data = cm.data or {}
    assert data[names.KEY_JOB] == "etl"
    assert data[names.KEY_STATUS] == "completed"
    assert data[names.KEY_COMPLETION].endswith("Z")
    assert data[names.KEY_AVAILABLE] == "true"
    logs = jh.logs_of(cm)
    for printed in ("loading 42 rows", "done", "warming up"):
        assert printed in logs, logs
    assert logs.index("warming up") < logs.index("loading 42 rows")  # init containers first
    result = jh.result_of(cm)
    (pod,) = result["pods"]
    assert pod["phase"] == "Succeeded"
    states = {c["name"]: c for c in pod["containers"]}
    assert states["main"]["exitCode"] == 0
    assert states["prepare"]["init"]
    assert cm.metadata.ownerReferences is None  # it outlives the Job
    (event,) = jh.processing_events(client, namespace, "etl")
    assert event.type == "Normal"
    assert "etl-results" in event.message


def test_a_failed_job_is_kept_annotated_and_archived(client: Client, namespace: str) -> None:
    jh.create(client, namespace, jh.job("bad", "echo about to fail; exit 3"))
    (cm,) = jh.wait_archive(client, namespace, "bad")
    job = helpers.wait_for(
        client,
        jh.Job,
        "bad",
        namespace,
        lambda j: (j.metadata.annotations or {}).get(names.STATUS) == "failed",
        what="the failed annotation",
    )
    assert job.metadata.deletionTimestamp is None
    assert (cm.data or {})[names.KEY_STATUS] == "failed"
    assert "about to fail" in jh.logs_of(cm)
    (pod,) = jh.result_of(cm)["pods"]
    assert pod["containers"][0]["exitCode"] == 3
    (event,) = jh.processing_events(client, namespace, "bad")
    assert event.type == "Warning"


def test_every_pod_of_an_indexed_job_and_a_restarted_containers_first_run(
    client: Client, namespace: str
) -> None:
    # Index 1 fails its first run (a marker file in the shared /tmp tells the runs apart).
    script = (
        'i=$JOB_COMPLETION_INDEX; echo "index $i run"; '
        '[ -f "/tmp/ran-$NS-$i" ] || { touch "/tmp/ran-$NS-$i"; '
        '[ "$i" != 1 ] || { echo first run fails; exit 1; }; }'
    )
    script = script.replace("$NS", namespace)
    obj = jh.job(
        "fan",
        script,
        restart="OnFailure",
        completionMode="Indexed",
        completions=3,
        parallelism=3,
        backoffLimit=2,
    )
    jh.create(client, namespace, obj)
    (cm,) = jh.wait_archive(client, namespace, "fan", timeout=90)
    logs = jh.logs_of(cm)
    for i in range(3):
        assert f"index {i} run" in logs, logs
    assert "first run fails" in logs, logs  # the previous instance of the restarted container
    result = jh.result_of(cm)
    assert sorted(p["index"] for p in result["pods"]) == ["0", "1", "2"]
    assert any(s["run"] == 1 and s["pod"] and "fails" not in s["header"] for s in result["logs"]["sections"])


def test_logs_survive_ttl_zero(client: Client, namespace: str) -> None:
    jh.create(client, namespace, jh.job("quick", "echo gone in a flash", ttlSecondsAfterFinished=0))
    (cm,) = jh.wait_archive(client, namespace, "quick")
    assert "gone in a flash" in jh.logs_of(cm)


def test_pods_deleted_before_the_handler_saw_the_job(
    client: Client, namespace: str, operator: Operator
) -> None:
    operator.stop()
    try:
        jh.create(client, namespace, jh.job("early", "echo nobody reads me"))
        helpers.wait_for(
            client, jh.Job, "early", namespace, helpers.has_condition("Complete"), what="Complete"
        )
        for pod in client.list(Pod, namespace=namespace, labels={"job-name": "early"}):
            client.delete(Pod, pod.metadata.name, namespace=namespace, grace_period=0)
        deadline = time.monotonic() + 30
        while list(client.list(Pod, namespace=namespace, labels={"job-name": "early"})):
            assert time.monotonic() < deadline, "pods not deleted"
            time.sleep(0.2)
    finally:
        operator.start()
    (cm,) = jh.wait_archive(client, namespace, "early")
    assert (cm.data or {})[names.KEY_AVAILABLE] == "false"
    assert not jh.result_of(cm)["logs"]["available"]
    assert "deleted" in jh.result_of(cm)["logs"]["reason"]


def test_logs_over_the_budget_are_compressed_then_cut_with_their_checksum(
    client: Client, namespace: str
) -> None:
    # 6 MiB of incompressible text: more than a ConfigMap holds even gzip-compressed.
    script = "head -c 4718592 /dev/urandom | base64"
    jh.create(client, namespace, jh.job("big", script))
    (cm,) = jh.wait_archive(client, namespace, "big", timeout=90)
    section = jh.result_of(cm)["logs"]["sections"][0]
    assert section["bytes"] > 6_000_000
    assert section["truncated"]
    logs = jh.logs_of(cm)
    assert f"sha256 is {section['sha256']}" in logs
    size = sum(len(v.encode()) for v in (cm.data or {}).values())
    size += sum(len(base64.b64decode(v)) for v in (cm.binaryData or {}).values())
    assert size <= 1_000_000


def test_label_false_is_ignored(client: Client, namespace: str) -> None:
    jh.create(client, namespace, jh.job("optout", "echo hi", label="false"))
    helpers.wait_for(client, jh.Job, "optout", namespace, helpers.has_condition("Complete"), what="Complete")
    jh.create(client, namespace, jh.job("optin", "echo hi"))
    jh.wait_archive(client, namespace, "optin")  # the handler is at work; still nothing for optout
    assert jh.archives(client, namespace, "optout") == []
    job = client.get(jh.Job, "optout", namespace=namespace)
    assert names.STATUS not in (job.metadata.annotations or {})


def test_a_job_created_again_under_the_same_name_gets_its_own_archive(client: Client, namespace: str) -> None:
    jh.create(client, namespace, jh.job("again", "echo first run"))
    jh.wait_archive(client, namespace, "again")
    jh.wait_gone(client, namespace, "again")
    deadline = time.monotonic() + 30
    while jh.job_or_none(client, namespace, "again") is not None:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    jh.create(client, namespace, jh.job("again", "echo second run"))
    found = jh.wait_archive(client, namespace, "again", count=2)
    by_name = {cm.metadata.name: cm for cm in found}
    assert "first run" in jh.logs_of(by_name["again-results"])
    (second,) = [cm for n, cm in by_name.items() if n != "again-results"]
    assert "second run" in jh.logs_of(second)
    assert len({cm.metadata.labels[names.JOB_UID] for cm in found}) == 2


def test_exactly_once_per_job_across_operator_restarts(
    client: Client, namespace: str, operator: Operator
) -> None:
    for i in range(6):
        jh.create(client, namespace, jh.job(f"many-{i}", f"echo job {i}"))
    for _ in range(2):  # kill it mid-way, twice
        time.sleep(1.5)
        operator.stop(kill=True)
        operator.start()
    for i in range(6):
        jh.wait_archive(client, namespace, f"many-{i}")
        jh.wait_gone(client, namespace, f"many-{i}")
    time.sleep(2)  # anything duplicated would have landed by now
    cms = [cm for cm in client.list(ConfigMap, namespace=namespace, labels={names.CREATED: "true"})]
    assert len(cms) == 6, [cm.metadata.name for cm in cms]
    for i in range(6):
        assert len(jh.processing_events(client, namespace, f"many-{i}")) == 1
        (cm,) = jh.archives(client, namespace, f"many-{i}")
        assert f"job {i}" in jh.logs_of(cm)


def test_checksum_is_of_everything_printed(client: Client, namespace: str) -> None:
    lines = "".join(f"line {i}\n" for i in range(2000))
    jh.create(
        client, namespace, jh.job("sum", "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done")
    )
    (cm,) = jh.wait_archive(client, namespace, "sum")
    (section,) = jh.result_of(cm)["logs"]["sections"]
    assert section["sha256"] == hashlib.sha256(lines.encode()).hexdigest()
    assert jh.logs_of(cm).count("line ") == 2000
