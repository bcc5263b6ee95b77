"""The Job builder: restricted pods, retries through the Job controller, resources."""

from __future__ import annotations

import json
from pathlib import Path

from dataworks.api import pipeline as api
from dataworks.api.config import PipelinesConfig
from dataworks.core.pipelines import planning, steps
from dataworks.manifests import jobs
from dataworks.operator import main as operator_main

OWNER = jobs.Owner(info=api.INFO, name="p", namespace="ns", uid="u-1")


def build(raw_step: dict[str, object], config: PipelinesConfig | None = None) -> dict[str, object]:
    spec = api.PipelineSpec.model_validate({"steps": [raw_step]})
    sdef, errors = steps.normalize(spec.steps[0])
    assert errors == []
    launch = planning.Launch(step=sdef, attempt=1, job_name=f"p-{sdef.name}")
    return jobs.step_job(OWNER, launch, spec, config or PipelinesConfig())


def test_step_request_above_class_limit_raises_the_limit() -> None:
    job = build(
        {
            "name": "big",
            "type": "fan-out",
            "config": {"parallelism": 2, "sql": "SELECT * FROM chunk"},
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
            "config": {"parallelism": 4, "sql": "SELECT * FROM chunk"},
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


def test_sql_of_256_kib_reaches_the_worker_intact() -> None:
    sql = "SELECT 1 AS x -- " + "y" * (256 * 1024) + "\n"
    spec = api.PipelineSpec.model_validate(
        {"steps": [{"name": "t", "type": "transform", "config": {"sql": sql}}]}
    )
    sdef, errors = steps.normalize(spec.steps[0])
    assert errors == []
    cm = jobs.steps_config_map(OWNER, (sdef,))
    payload = json.loads(cm["data"]["t.json"])  # type: ignore[index]
    assert payload["config"]["sql"] == sql
    assert sum(len(v) for v in cm["data"].values()) < 1024 * 1024  # a ConfigMap holds at most 1 MiB  # type: ignore[union-attr]


def test_workload_classes_come_from_the_operator_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "pipelines:\n"
        "  workerImage: registry.example/worker:9\n"
        "  workloadClasses:\n"
        "    gpu: {requests: {nvidia.com/gpu: '1'}, nodeSelector: {accelerator: nvidia},"
        " tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]}\n"
        "  stepClasses: {transform: gpu}\n"
    )
    config = operator_main.load_config(str(path))
    job = build({"name": "t", "type": "transform", "config": {"sql": "select 1"}}, config.pipelines)
    pod = job["spec"]["template"]["spec"]  # type: ignore[index]
    assert pod["containers"][0]["image"] == "registry.example/worker:9"
    assert pod["containers"][0]["resources"]["requests"] == {"nvidia.com/gpu": "1"}
    assert pod["nodeSelector"] == {"accelerator": "nvidia"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_built_in_steps_mount_the_connections_secret_and_find_the_store() -> None:
    spec = api.PipelineSpec.model_validate(
        {
            "connectionsSecret": "warehouse-connections",
            "steps": [
                {"name": "f", "type": "fetch", "config": {"source": "campaigns_db", "query": "SELECT 1"}}
            ],
        }
    )
    sdef, _ = steps.normalize(spec.steps[0])
    config = PipelinesConfig(artifact_store="s3://lake/dataworks", artifact_store_secret="store-creds")
    job = jobs.step_job(OWNER, planning.Launch(step=sdef, attempt=1, job_name="p-f"), spec, config)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DATAWORKS_CONNECTIONS"] == jobs.CONNECTIONS_MOUNT
    assert env["DATAWORKS_STORE"] == "s3://lake/dataworks"
    assert env["DATAWORKS_RUN"] == "u-1"  # the Pipeline's uid: one store folder per run
    assert {"name": "connections", "mountPath": jobs.CONNECTIONS_MOUNT, "readOnly": True} in container[
        "volumeMounts"
    ]
    assert {
        "name": "connections",
        "secret": {"secretName": "warehouse-connections", "defaultMode": 0o440},
    } in pod["volumes"]
    assert pod["securityContext"]["fsGroup"] == 65532
    assert container["envFrom"] == [{"secretRef": {"name": "store-creds"}}]
    # no literal value anywhere in the Job looks like a credential-bearing URI
    assert "://" not in json.dumps([e for e in container["env"] if e["name"] != "DATAWORKS_STORE"])


def test_upstream_steps_without_output_are_named_to_the_worker() -> None:
    spec = api.PipelineSpec.model_validate(
        {"steps": [{"name": "a", "type": "transform", "config": {"sql": "SELECT 1"}}]}
    )
    sdef, _ = steps.normalize(spec.steps[0])
    env_of = []
    for absent in ((), ("skipped", "failed")):
        launch = planning.Launch(step=sdef, attempt=1, job_name="p-a", absent_inputs=absent)
        (container,) = jobs.step_job(OWNER, launch, spec, PipelinesConfig())["spec"]["template"]["spec"][
            "containers"
        ]  # type: ignore[index]
        env_of.append({e["name"]: e.get("value") for e in container["env"]}.get("DATAWORKS_ABSENT_INPUTS"))
    assert env_of == [None, "skipped,failed"]
