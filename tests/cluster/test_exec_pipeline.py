"""A Pipeline whose built-in steps run as real worker processes, in the pods the operator created.

The worker image is mapped to this checkout's virtualenv through the test control plane's
exec configuration (the ConfigMap kube-system/testcluster-exec, see test/cluster/README.md),
so each step's Job pod runs `dataworks-worker` for real: it reads its step file from the
mounted ConfigMap, its connection from the mounted Secret, keeps its output in the artifact
store claim shared by every step, and the last step loads rows into a PostgreSQL that this
test started. Nothing about the outcome is painted.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from lightkube import Client
from lightkube.models.core_v1 import PersistentVolumeClaimSpec, VolumeResourceRequirements
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, PersistentVolumeClaim, Pod, Secret

from dataworks.api.config import OperatorConfig
from tests.cluster.conftest import Cluster, Operator
from tests.cluster.pipelines import create, manifest, step_phases, wait_phase
from tests.local import services

WORKER_IMAGE = OperatorConfig().pipelines.worker_image
VENV_BIN = str(Path(sys.executable).parent)


@pytest.fixture(scope="module")
def warehouse() -> Iterator[services.Postgres]:
    with services.postgres() as pg:
        yield pg


@pytest.fixture
def worker_runs_for_real(client: Client) -> Iterator[None]:
    """Pods of the worker image run this checkout's `dataworks-worker` (while the test runs)."""
    # The venv's interpreter may live under a private directory (pyenv under /root): exposed.
    worker = {
        "image": WORKER_IMAGE,
        "path": [VENV_BIN],
        "expose": [sys.base_prefix],
        "env": {"PYTHONUNBUFFERED": "1"},
    }
    images = {"images": [worker]}
    cm = ConfigMap(metadata=ObjectMeta(name="testcluster-exec"), data={"config.yaml": yaml.safe_dump(images)})
    client.apply(cm, namespace="kube-system", field_manager="dataworks-tests", force=True)
    try:
        yield
    finally:
        client.delete(ConfigMap, "testcluster-exec", namespace="kube-system")


@pytest.fixture
def store_operator(cluster: Cluster, operator: Operator, tmp_path: Path) -> Iterator[Operator]:
    """The operator with a file artifact store on a claim; the session's operator is paused."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"pipelines": {"artifactStoreClaim": "store"}}))
    operator.stop()
    own = Operator(cluster.kubeconfig, tmp_path / "operator.log", "--config", str(config))
    own.start()
    try:
        yield own
    finally:
        own.stop()
        operator.start()


@pytest.mark.usefixtures("worker_runs_for_real", "store_operator")
def test_built_in_steps_run_as_real_workers_and_load_the_warehouse(
    client: Client, namespace: str, warehouse: services.Postgres
) -> None:
    warehouse.psql(
        "DROP TABLE IF EXISTS orders, revenue_by_country;"
        "CREATE TABLE orders (id int, country text, amount numeric);"
        "INSERT INTO orders VALUES (1, 'fr', 10), (2, 'fr', 5.5), (3, 'de', 7), (4, 'de', -1), (5, 'it', 3)"
    )
    client.create(
        PersistentVolumeClaim(
            metadata=ObjectMeta(name="store"),
            spec=PersistentVolumeClaimSpec(
                accessModes=["ReadWriteMany"],
                resources=VolumeResourceRequirements(requests={"storage": "1Gi"}),
            ),
        ),
        namespace=namespace,
    )
    client.create(
        Secret(metadata=ObjectMeta(name="conns"), stringData={"warehouse": warehouse.uri()}),
        namespace=namespace,
    )
    steps = [
        {"name": "extract", "type": "fetch", "config": {"source": "warehouse", "tables": ["orders"]}},
        {
            "name": "clean",
            "type": "transform",
            "dependsOn": ["extract"],
            "config": {
                "sql": "DELETE FROM orders WHERE amount < 0;"
                " SELECT country, count(*) AS orders, sum(amount) AS revenue FROM orders GROUP BY country",
                "table": "revenue",
            },
        },
        {
            "name": "check",
            "type": "quality-check",
            "dependsOn": ["clean"],
            "config": {
                "rules": [
                    {"not_null": ["country"]},
                    {"unique": "country"},
                    {"range": {"column": "revenue", "min": 0}},
                ]
            },
        },
        {
            "name": "publish",
            "type": "load",
            "dependsOn": ["check"],
            "config": {"destination": "postgres", "connection": "warehouse", "table": "revenue_by_country"},
        },
    ]
    create(client, namespace, manifest("etl", steps, connectionsSecret="conns"))
    st = wait_phase(client, namespace, "etl", "Completed", "Failed", timeout=240)
    pods = list(client.list(Pod, namespace=namespace, labels={"dataworks.io/pipeline": "etl"}))
    report = {
        p.metadata.name: (p.status.phase, p.metadata.labels.get("fate.testcluster.dataworks.io/outcome"))
        for p in pods
    }
    assert st["phase"] == "Completed", f"{st}\npods: {report}"
    assert step_phases(st) == {s["name"]: "Completed" for s in steps}
    assert {outcome for _, outcome in report.values()} == {"exec"}, report
    rows = warehouse.psql("SELECT country, orders, revenue FROM revenue_by_country ORDER BY country")
    assert rows.splitlines() == ["de|1|7", "fr|2|15.5", "it|1|3"]
    # What the workers printed is each pod's log, served as a kubelet would.
    (publish_pod,) = [p for p in pods if p.metadata.labels.get("dataworks.io/step") == "publish"]
    printed = "\n".join(client.log(publish_pod.metadata.name, namespace=namespace))
    assert "revenue_by_country" in printed, printed
