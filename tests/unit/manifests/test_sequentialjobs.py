"""A SequentialJob step's Job: one container, the template's pod settings, restricted by default (the
user's security contexts merged over the defaults), the step's retries and deadline as the Job's own,
labels and an owner reference that tie it to its SequentialJob; valid for every supported Kubernetes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from dataworks.api import sequentialjob as api
from dataworks.core.sequentialjobs import validation
from dataworks.core.sequentialjobs.work import Launch
from dataworks.manifests import sequentialjobs as manifests
from dataworks.manifests.owner import Owner

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sequentialjob" / "data-processing-pipeline.yaml"
OWNER = Owner(info=api.INFO, name="data-processing-pipeline", namespace="ns", uid="u-1")


def jobs_of(spec_raw: dict[str, Any], attempt: int = 1) -> list[dict[str, Any]]:
    validated, errors = validation.validate_raw(spec_raw, OWNER.name)
    assert validated is not None, [str(e) for e in errors]
    spec = validated.spec
    return [
        manifests.step_job(
            OWNER,
            spec,
            Launch(index=i, container=c, policy=spec.policy(c.name), attempt=attempt, job_name=f"j-{c.name}"),
        )
        for i, c in enumerate(spec.containers)
    ]


def seed_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())["spec"]
    return spec


@pytest.mark.parametrize("version", ["1.32", "1.33", "1.34", "1.35", "1.36"])
def test_the_seeds_jobs_are_valid_kubernetes(version: str) -> None:
    for job in jobs_of(seed_spec()):
        kubernetes_validate.validate(job, version, strict=True)


def test_the_seeds_jobs_carry_the_template_and_one_container_each() -> None:
    extract, transform, load = jobs_of(seed_spec())
    assert load["metadata"]["labels"] == {
        "app": "data-pipeline",
        "dataworks.io/sequentialjob": "data-processing-pipeline",
        "dataworks.io/step": "load",
        "dataworks.io/step-index": "2",
        "dataworks.io/attempt": "1",
    }
    (ref,) = load["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
        "SequentialJob",
        OWNER.name,
        "u-1",
        True,
    )
    template = load["spec"]["template"]
    assert template["metadata"]["labels"] == load["metadata"]["labels"]
    pod = template["spec"]
    assert pod["volumes"] == [
        {"name": "data-volume", "persistentVolumeClaim": {"claimName": "pipeline-data"}}
    ]
    (container,) = pod["containers"]
    assert container["name"] == "load"
    assert container["env"] == [
        {
            "name": "DB_CONN",
            "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "connection-string"}},
        }
    ]
    assert container["args"] == ["--source=/data/transformed", "--db-connection=$(DB_CONN)"]
    assert container["volumeMounts"] == [{"name": "data-volume", "mountPath": "/data"}]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert load["spec"]["backoffLimit"] == 0  # no retry unless the step asks
    assert "activeDeadlineSeconds" not in load["spec"]
    assert [j["spec"]["template"]["spec"]["containers"][0]["name"] for j in (extract, transform)] == [
        "extract",
        "transform",
    ]


def test_shared_pod_settings_and_per_step_policy() -> None:
    spec = {
        "containers": [
            {
                "name": "a",
                "image": "x",
                "securityContext": {"runAsUser": 1001, "capabilities": {"add": ["NET_BIND_SERVICE"]}},
            },
            {"name": "b", "image": "y", "terminationMessagePolicy": "File"},
        ],
        "steps": [{"name": "b", "backoffLimit": 3, "activeDeadlineSeconds": 600}],
        "template": {
            "metadata": {"labels": {"team": "data"}, "annotations": {"note": "shared"}},
            "spec": {
                "nodeSelector": {"workload-type": "compute"},
                "tolerations": [{"key": "gpu", "operator": "Exists"}],
                "serviceAccountName": "etl",
                "securityContext": {"runAsUser": 2000, "fsGroup": 3000},
                "imagePullSecrets": [{"name": "registry"}],
            },
        },
    }
    a, b = jobs_of(spec, attempt=2)
    for job in (a, b):
        pod = job["spec"]["template"]
        assert pod["metadata"]["annotations"] == {"note": "shared"}
        assert pod["metadata"]["labels"]["team"] == "data"
        assert pod["spec"]["nodeSelector"] == {"workload-type": "compute"}
        assert pod["spec"]["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
        assert pod["spec"]["serviceAccountName"] == "etl"
        assert pod["spec"]["imagePullSecrets"] == [{"name": "registry"}]
        security = pod["spec"]["securityContext"]
        assert (security["runAsUser"], security["fsGroup"], security["runAsNonRoot"]) == (2000, 3000, True)
        assert job["metadata"]["labels"]["dataworks.io/attempt"] == "2"
    container_a = a["spec"]["template"]["spec"]["containers"][0]
    assert container_a["securityContext"]["runAsUser"] == 1001
    assert container_a["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    assert b["spec"]["backoffLimit"] == 3
    assert b["spec"]["activeDeadlineSeconds"] == 600
    assert b["spec"]["template"]["spec"]["containers"][0]["terminationMessagePolicy"] == "File"


def test_on_failure_restart_policy_has_no_pod_failure_policy() -> None:
    spec = {"containers": [{"name": "a", "image": "x"}], "template": {"spec": {"restartPolicy": "OnFailure"}}}
    (job,) = jobs_of(spec)
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    assert "podFailurePolicy" not in job["spec"]
    kubernetes_validate.validate(job, "1.36", strict=True)
