"""The job-completion handler with the rest of dataworks: the documented example and
`dataworks logs job/NAME`, Pipelines with archiveLogs, the artifact store, and retention."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.resources.core_v1 import ConfigMap

from dataworks.api import jobhandler as names
from dataworks.kube.resources import Pipeline
from tests.cluster import jobhandler as jh
from tests.cluster.conftest import Cluster, Operator
from tests.cluster.pipelines import create, manifest, step, wait_phase
from tests.local import services

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = yaml.safe_load((REPO / "examples" / "jobhandler" / "nightly-export.yaml").read_text())
CLI = [str(Path(sys.executable).parent / "dataworks")]


def dataworks(cluster: Cluster, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args, "--kubeconfig", cluster.kubeconfig, "-n", namespace],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.usefixtures("operator")
def test_the_documented_example_is_archived_and_read_back_after_the_job_is_gone(
    cluster: Cluster, client: Client, namespace: str
) -> None:
    job = copy.deepcopy(EXAMPLE)
    # On the test control plane a pod plays a fate unless it asks to run for real.
    job["spec"]["template"].setdefault("metadata", {})["annotations"] = {jh.FATE + "exec": "true"}
    jh.create(client, namespace, job)
    (cm,) = jh.wait_archive(client, namespace, "nightly-export")
    jh.wait_gone(client, namespace, "nightly-export")
    assert cm.metadata.name == "nightly-export-results"
    out = dataworks(cluster, namespace, "logs", "job/nightly-export")
    assert out.returncode == 0, out.stderr
    assert "exporting 3 tables" in out.stdout
    assert "exported items" in out.stdout
    assert "archived in ConfigMap nightly-export-results" in out.stderr
    missing = dataworks(cluster, namespace, "logs", "job/never-ran")
    assert missing.returncode == 2
    assert 'archives Jobs labelled job-handler/enabled: "true"' in missing.stderr


@pytest.mark.usefixtures("operator")
def test_a_pipeline_with_archive_logs_keeps_its_step_logs_after_ttl_deletion(
    cluster: Cluster, client: Client, namespace: str
) -> None:
    painted = {"logs": "step {pod} wrote 7 rows"}
    obj = manifest("archived", [step("a", fate=painted), step("b", ["a"], fate=painted)])
    # TTL 5 s: the TTL counts from completionTime, which has whole seconds, so a TTL of 1 s can
    # delete the pipeline within 50 ms of its completion, before a poll sees Completed.
    obj["spec"].update(archiveLogs=True, ttlSecondsAfterFinished=5)
    create(client, namespace, obj)
    wait_phase(client, namespace, "archived", "Completed", timeout=60)
    deadline = time.monotonic() + 30
    while any(p.metadata.name == "archived" for p in client.list(Pipeline, namespace=namespace)):
        assert time.monotonic() < deadline, "the pipeline was not deleted after its TTL"
        time.sleep(0.3)
    for step_name in ("a", "b"):
        (cm,) = jh.wait_archive(client, namespace, f"archived-{step_name}")
        assert "wrote 7 rows" in jh.logs_of(cm)
    out = dataworks(cluster, namespace, "logs", "job/archived-b")
    assert out.returncode == 0, out.stderr
    assert re.search(r"step archived-b-\w+ wrote 7 rows", out.stdout), out.stdout


@pytest.fixture
def own_operator(
    cluster: Cluster, operator: Operator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """Starts an operator with a given jobHandler section (the session's is paused meanwhile)."""
    started: list[Operator] = []

    def start(section: dict[str, Any], **env: str) -> Operator:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"resyncSeconds": 1, "jobHandler": section}))
        own = Operator(cluster.kubeconfig, tmp_path / "operator.log", "--config", str(config))
        own.start()
        started.append(own)
        return own

    operator.stop()
    try:
        yield start
    finally:
        for own in started:
            own.stop()
        operator.start()


def test_full_logs_go_to_the_artifact_store(client: Client, namespace: str, own_operator: Any) -> None:
    import s3fs

    with services.s3() as endpoint:
        fs = s3fs.S3FileSystem(key="k", secret="s", client_kwargs={"endpoint_url": endpoint})
        fs.mkdir("archive")
        own_operator(
            {"artifactStore": "s3://archive/jobs", "keepPerContainerBytes": 4096},
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID="k",
            AWS_SECRET_ACCESS_KEY="s",
            AWS_DEFAULT_REGION="us-east-1",
        )
        script = "i=0; while [ $i -lt 3000 ]; do echo line $i of the export; i=$((i+1)); done"
        jh.create(client, namespace, jh.job("offload", script))
        (cm,) = jh.wait_archive(client, namespace, "offload")
        (section,) = jh.result_of(cm)["logs"]["sections"]
        assert section["truncated"]  # 4 KiB kept in the ConfigMap ...
        url = section["offloaded"]
        assert url.startswith("s3://archive/jobs/job-logs/")
        full = fs.cat(url.removeprefix("s3://")).decode()  # ... and everything in the store
        assert full == "".join(f"line {i} of the export\n" for i in range(3000))


def test_archives_over_the_namespace_cap_expire_oldest_first(
    client: Client, namespace: str, own_operator: Any
) -> None:
    own_operator({"maxPerNamespace": 2})
    for i in range(3):
        jh.create(client, namespace, jh.job(f"keep-{i}", f"echo {i}"))
        jh.wait_archive(client, namespace, f"keep-{i}")
        time.sleep(1.1)  # creation timestamps have whole seconds
    deadline = time.monotonic() + 30
    while True:
        left = sorted(
            cm.metadata.name
            for cm in client.list(ConfigMap, namespace=namespace, labels={names.CREATED: "true"})
        )
        if left == ["keep-1-results", "keep-2-results"]:
            break
        assert time.monotonic() < deadline, left
        time.sleep(0.3)
