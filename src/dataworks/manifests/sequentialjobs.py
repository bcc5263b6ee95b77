"""Pure builders for SequentialJob children: one planned step launch -> its Job dict.

The operator creates it and the local runtime runs it. The Job's pod is the
template's (labels, annotations, volumes, nodeSelector, tolerations,
serviceAccountName, ...) with the step's container, restricted by default
(manifests.pods: the user's security contexts are merged over the defaults).
The step's retries are the Job's backoffLimit, its deadline the Job's
activeDeadlineSeconds; evictions and preemptions do not count as failures.
"""

from __future__ import annotations

from typing import Any

from dataworks.api import sequentialjob as api
from dataworks.api.common import ARCHIVE_LABEL
from dataworks.core.kit.labels import LABEL_ATTEMPT, LABEL_STEP
from dataworks.core.sequentialjobs.work import Launch
from dataworks.manifests import pods
from dataworks.manifests.owner import Owner

LABEL_STEP_INDEX = "dataworks.io/step-index"


def _dump(model: Any) -> dict[str, Any]:
    return dict(model.model_dump(by_alias=True, exclude_none=True, mode="json")) if model is not None else {}


def container(launch: Launch) -> dict[str, Any]:
    """The step's container as given, restricted, its failures explained by the log's tail."""
    out = _dump(launch.container)
    out["securityContext"] = pods.over(pods.restricted_container(), out.get("securityContext"))
    out.setdefault("terminationMessagePolicy", "FallbackToLogsOnError")
    return out


def labels(owner: Owner, launch: Launch) -> dict[str, str]:
    """The labels that tie a Job and its pods to their SequentialJob, step and run."""
    return {
        **owner.labels(),
        LABEL_STEP: launch.container.name,
        LABEL_STEP_INDEX: str(launch.index),
        LABEL_ATTEMPT: str(launch.attempt),
    }


def step_job(owner: Owner, spec: api.SequentialJobSpec, launch: Launch) -> dict[str, Any]:
    """The Job of one run of one step."""
    template = spec.template
    meta = template.metadata if template is not None else None
    pod_spec = _dump(template.spec if template is not None else None)
    pod_spec["securityContext"] = pods.over(pods.restricted_pod(), pod_spec.get("securityContext"))
    pod_spec.setdefault("restartPolicy", "Never")
    pod_spec["containers"] = [container(launch)]
    ours = labels(owner, launch)
    shared = dict(meta.labels or {}) if meta is not None else {}
    pod_meta: dict[str, Any] = {"labels": {**shared, **ours}}
    if meta is not None and meta.annotations:
        pod_meta["annotations"] = dict(meta.annotations)
    job_spec: dict[str, Any] = {
        "backoffLimit": launch.policy.backoff_limit or 0,
        "template": {"metadata": pod_meta, "spec": pod_spec},
    }
    if pod_spec["restartPolicy"] == "Never":  # a podFailurePolicy needs it
        job_spec["podFailurePolicy"] = {
            "rules": [
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
            ]
        }
    if launch.policy.active_deadline_seconds:
        job_spec["activeDeadlineSeconds"] = launch.policy.active_deadline_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": launch.job_name,
            "namespace": owner.namespace,
            "labels": {**shared, **ours, **({ARCHIVE_LABEL: "true"} if spec.archive_logs else {})},
            "ownerReferences": [owner.reference()],
        },
        "spec": job_spec,
    }
