"""A TrainingJob's worker Job: MLflow tracking reaches the workers, credentials only from a Secret."""

from __future__ import annotations

from typing import Any

from dataworks.api import trainingjob as api
from dataworks.manifests import trainingjobs as manifests
from dataworks.manifests.owner import Owner

OWNER = Owner(info=api.INFO, name="tj", namespace="ml", uid="uid-1")


def worker(**spec: Any) -> dict[str, Any]:
    s = api.TrainingJobSpec.model_validate({"model": "m", "dataset": "d", "gpusPerWorker": 0, **spec})
    job = manifests.job(OWNER, s, 1, "img")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_without_tracking_no_mlflow_variable_is_set() -> None:
    c = worker()
    assert not [e for e in c["env"] if "MLFLOW" in e["name"]]
    assert "envFrom" not in c


def test_tracking_names_the_server_the_experiment_and_the_run_key() -> None:
    mlflow = {"trackingUri": "http://mlflow.ml.svc:5000", "credentialsSecret": "mlflow"}
    c = worker(tracking={"mlflow": mlflow})
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.ml.svc:5000"
    assert env["DATAWORKS_MLFLOW_EXPERIMENT"] == "ml"  # the namespace by default
    assert env["DATAWORKS_RUN_KEY"] == "uid-1"  # the same for every attempt: one run
    assert env["DATAWORKS_RUN_NAME"] == "ml/tj"
    assert c["envFrom"] == [{"secretRef": {"name": "mlflow"}}]
    assert not [n for n in env if "PASSWORD" in n or "TOKEN" in n]  # never a literal credential


def test_workers_wait_for_worker_0_in_a_restricted_init_container_of_the_worker_image() -> None:
    s = api.TrainingJobSpec.model_validate(
        {"model": "m", "dataset": "d", "numWorkers": 2, "networking": {"rendezvousTimeoutSeconds": 30}}
    )
    pod = manifests.job(OWNER, s, 1, "img")["spec"]["template"]["spec"]
    (wait,) = pod["initContainers"]
    assert wait["name"] == "wait-for-worker-0"
    assert wait["image"] == "img"
    assert wait["command"][:2] == ["python3", "-c"]
    env = {e["name"]: e["value"] for e in wait["env"]}
    assert env == {
        "PET_MASTER_ADDR": "tj-a1-0.tj.ml.svc",
        "PET_MASTER_PORT": "29500",
        "DATAWORKS_RENDEZVOUS_TIMEOUT": "30",
    }
    assert wait["securityContext"]["allowPrivilegeEscalation"] is False
    assert wait["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    single = api.TrainingJobSpec.model_validate({"model": "m", "dataset": "d", "numWorkers": 1})
    assert "initContainers" not in manifests.job(OWNER, single, 1, "img")["spec"]["template"]["spec"]
