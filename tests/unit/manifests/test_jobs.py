"""The Job builder: restricted pods, retries through the Job controller, resources."""

from __future__ import annotations

from dataworks.api import pipeline as api
from dataworks.api.config import OperatorConfig
from dataworks.core import planning, steps
from dataworks.manifests import jobs

OWNER = jobs.Owner(name="p", namespace="ns", uid="u-1")


def build(raw_step: dict[str, object], config: OperatorConfig | None = None) -> dict[str, object]:
    spec = api.PipelineSpec.model_validate({"steps": [raw_step]})
    sdef, errors = steps.normalize(spec.steps[0])
    assert errors == []
    launch = planning.Launch(step=sdef, attempt=1, job_name=f"p-{sdef.name}")
    return jobs.step_job(OWNER, launch, spec, config or OperatorConfig())


def test_step_request_above_class_limit_raises_the_limit() -> None:
    job = build(
        {
            "name": "big",
            "type": "fan-out",
            "config": {"parallelism": 2},
            "resources": {"requests": {"cpu": "3"}},
        }
    )
    resources = job["spec"]["template"]["spec"]["containers"][0]["resources"]  # type: ignore[index]
    assert resources["requests"]["cpu"] == "3"
    assert resources["limits"]["cpu"] == "3"  # the compute class's default limit of 2 would be invalid


def test_fan_out_is_an_indexed_job_with_per_index_retries() -> None:
    job = build(
        {
            "name": "f",
            "type": "fan-out",
            "config": {"parallelism": 4},
            "retry": {"limit": 2, "noRetryExitCodes": [3]},
        }
    )
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 4, 4)  # type: ignore[index]
    assert spec["backoffLimitPerIndex"] == 2  # type: ignore[index]
    rules = spec["podFailurePolicy"]["rules"]  # type: ignore[index]
    assert {
        "action": "FailIndex",
        "onExitCodes": {"containerName": "step", "operator": "In", "values": [3]},
    } in rules


def test_pods_are_restricted_and_credentials_only_come_from_secrets() -> None:
    job = build(
        {
            "name": "c",
            "type": "container",
            "image": "busybox",
            "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}}],
        }
    )
    pod = job["spec"]["template"]["spec"]  # type: ignore[index]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    token = next(e for e in container["env"] if e["name"] == "TOKEN")
    assert token == {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}}
