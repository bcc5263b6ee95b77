"""Pure builders: a planned step launch -> the Job and ConfigMap dicts to create.

The operator applies these; `pipeline-ctl run --dry-run` prints them. Every
pod is restricted-compliant (non-root, no privilege escalation, all
capabilities dropped, RuntimeDefault seccomp). Retries use the Job
controller's own machinery: backoffLimit, backoffLimitPerIndex for fan-outs,
podFailurePolicy for "never retry this exit code" and for disruptions.
"""

from __future__ import annotations

import json
from typing import Any

from dataworks.api import pipeline as api
from dataworks.api.common import ARCHIVE_LABEL
from dataworks.api.config import PipelinesConfig
from dataworks.core.kit import naming
from dataworks.core.kit.labels import LABEL_ATTEMPT, LABEL_STEP, LABEL_STEP_TYPE
from dataworks.core.kit.quantities import parse_quantity
from dataworks.core.pipelines.planning import Launch
from dataworks.core.pipelines.steps import StepDef
from dataworks.manifests import pods
from dataworks.manifests.owner import Owner

__all__ = ["Owner", "step_job", "steps_config_map"]

STEPS_MOUNT = "/etc/dataworks/steps"
CONNECTIONS_MOUNT = "/etc/dataworks/connections"
COMPLETION_INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def _security() -> tuple[dict[str, Any], dict[str, Any]]:
    return pods.restricted_pod(), pods.restricted_container()


def _resources(step: StepDef, config: PipelinesConfig) -> dict[str, Any]:
    """The step's own requests/limits over its workload class's defaults.

    A class default limit never undercuts the step's own request: a step that
    asks for more than its class allows gets a limit equal to its request.
    """
    cls = config.workload_classes.get(step.workload_class or config.step_classes.get(step.type, ""))
    requests = {**(cls.requests if cls else {}), **step.requests}
    limits = {**(cls.limits if cls else {}), **step.limits}
    for key, request in requests.items():
        limit = limits.get(key)
        if limit is not None and key not in step.limits and parse_quantity(request) > parse_quantity(limit):
            limits[key] = request
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def _container(
    launch: Launch, owner: Owner, config: PipelinesConfig, connections_secret: str | None = None
) -> dict[str, Any]:
    step, attempt = launch.step, launch.attempt
    _, security = _security()
    env: list[dict[str, Any]] = [
        {"name": "DATAWORKS_PIPELINE", "value": owner.name},
        {"name": "DATAWORKS_NAMESPACE", "value": owner.namespace},
        {"name": "DATAWORKS_STEP", "value": step.name},
        {"name": "DATAWORKS_ATTEMPT", "value": str(attempt)},
    ]
    if step.is_fan_out:
        env += [
            {"name": "WORKER_INDEX", "valueFrom": {"fieldRef": {"fieldPath": COMPLETION_INDEX}}},
            {"name": "TOTAL_WORKERS", "value": str(step.parallelism)},
        ]
    # The worker writes its error to the termination log; a container step's last log lines stand in.
    container: dict[str, Any] = {
        "name": "step",
        "securityContext": security,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if step.type == "container":
        container["image"] = step.image
        if step.command:
            container["command"] = list(step.command)
        if step.args:
            container["args"] = list(step.args)
        env += [dict(e) for e in step.env]
        if step.env_from:
            container["envFrom"] = [dict(e) for e in step.env_from]
    else:
        container["image"] = step.image or config.worker_image
        container["command"] = ["dataworks-worker"]
        container["args"] = ["--step-file", f"{STEPS_MOUNT}/{step.name}.json"]
        container["volumeMounts"] = [{"name": "steps", "mountPath": STEPS_MOUNT, "readOnly": True}]
        env += [
            {"name": "DATAWORKS_STORE", "value": config.artifact_store},
            {"name": "DATAWORKS_RUN", "value": owner.uid or "run"},
            {"name": "HOME", "value": "/tmp"},
        ]
        if launch.absent_inputs:  # upstream steps that ended without output: not inputs here
            env.append({"name": "DATAWORKS_ABSENT_INPUTS", "value": ",".join(launch.absent_inputs)})
        if connections_secret:
            env.append({"name": "DATAWORKS_CONNECTIONS", "value": CONNECTIONS_MOUNT})
            container["volumeMounts"].append(
                {"name": "connections", "mountPath": CONNECTIONS_MOUNT, "readOnly": True}
            )
        if config.artifact_store_secret:
            container["envFrom"] = [{"secretRef": {"name": config.artifact_store_secret}}]
        if config.artifact_store_claim:
            container["volumeMounts"].append(
                {"name": "store", "mountPath": config.artifact_store.removeprefix("file://")}
            )
    container["env"] = env
    resources = _resources(step, config)
    if resources:
        container["resources"] = resources
    return container


def _failure_policy(step: StepDef) -> dict[str, Any]:
    """Evictions do not count; listed exit codes end the Job (or the index) at once."""
    action = "FailIndex" if step.is_fan_out else "FailJob"

    def on_exit(operator: str, codes: set[int]) -> dict[str, Any]:
        return {
            "action": action,
            "onExitCodes": {"containerName": "step", "operator": operator, "values": sorted(codes)},
        }

    rules: list[dict[str, Any]] = [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
    ]
    if step.no_retry_exit_codes:
        rules.append(on_exit("In", set(step.no_retry_exit_codes)))
    if step.retry_on_exit_codes:
        rules.append(on_exit("NotIn", {0, *step.retry_on_exit_codes}))
    return {"rules": rules}


def step_job(owner: Owner, launch: Launch, spec: api.PipelineSpec, config: PipelinesConfig) -> dict[str, Any]:
    """The Job of one attempt of one step."""
    step = launch.step
    labels = {
        **owner.labels(),
        LABEL_STEP: step.name,
        LABEL_STEP_TYPE: step.type,
        LABEL_ATTEMPT: str(launch.attempt),
    }
    defaults = spec.pod_defaults or api.PodDefaults()
    cls = config.workload_classes.get(step.workload_class or config.step_classes.get(step.type, ""))
    pod_security, _ = _security()
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": pod_security,
        "containers": [_container(launch, owner, config, spec.connections_secret)],
    }
    node_selector = {**(cls.node_selector if cls else {}), **(defaults.node_selector or {})}
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    tolerations = [*(cls.tolerations if cls else []), *(defaults.tolerations or [])]
    if tolerations:
        pod_spec["tolerations"] = tolerations
    if defaults.image_pull_secrets:
        pod_spec["imagePullSecrets"] = defaults.image_pull_secrets
    if spec.service_account_name:
        pod_spec["serviceAccountName"] = spec.service_account_name
    if step.type != "container":
        pod_spec["volumes"] = [{"name": "steps", "configMap": {"name": naming.config_map_name(owner.name)}}]
        if spec.connections_secret:
            pod_spec["volumes"].append(
                {
                    "name": "connections",
                    "secret": {"secretName": spec.connections_secret, "defaultMode": 0o440},
                }
            )
        if config.artifact_store_claim:
            pod_spec["volumes"].append(
                {"name": "store", "persistentVolumeClaim": {"claimName": config.artifact_store_claim}}
            )
    retries = step.retry_limit if step.retry_limit is not None else config.default_retry_limit
    job_spec: dict[str, Any] = {
        "podFailurePolicy": _failure_policy(step),
        "template": {
            "metadata": {
                "labels": {**(defaults.labels or {}), **labels},
                "annotations": {**(defaults.annotations or {}), **step.annotations},
            },
            "spec": pod_spec,
        },
    }
    if step.is_fan_out:
        job_spec.update(
            completionMode="Indexed",
            completions=step.parallelism,
            parallelism=step.parallelism,
            backoffLimitPerIndex=retries,
        )
        pod_spec["affinity"] = {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {
                                "matchLabels": {"batch.kubernetes.io/job-name": launch.job_name}
                            },
                        },
                    }
                ]
            }
        }
    else:
        job_spec["backoffLimit"] = retries
    if step.timeout_seconds:
        job_spec["activeDeadlineSeconds"] = step.timeout_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": launch.job_name,
            "namespace": owner.namespace,
            "labels": {**labels, **({ARCHIVE_LABEL: "true"} if spec.archive_logs else {})},
            "ownerReferences": [owner.reference()],
        },
        "spec": job_spec,
    }


def steps_config_map(owner: Owner, steps: tuple[StepDef, ...]) -> dict[str, Any]:
    """The step definitions the worker reads, one JSON document per built-in step."""
    types = {s.name: s.type for s in steps}
    data = {
        f"{s.name}.json": json.dumps(
            {
                "name": s.name,
                "type": s.type,
                "dependsOn": list(s.depends_on),
                # The upstream steps with an output to read: container steps write none.
                "inputs": [d for d in s.depends_on if types.get(d) != "container"],
                "config": s.config,
                "parallelism": s.parallelism,
            },
            sort_keys=True,
        )
        for s in steps
        if s.type != "container"
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": naming.config_map_name(owner.name),
            "namespace": owner.namespace,
            "labels": owner.labels(),
            "ownerReferences": [owner.reference()],
        },
        "data": data,
    }
