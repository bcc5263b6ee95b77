"""The operator's configuration file (pure layer): images, defaults, workload classes.

Loaded from YAML (a ConfigMap in a cluster install). Nothing here is in code:
workload classes, their resources, node selectors and tolerations, and the
mapping from step type to class all come from this file.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from dataworks.api.pipeline import Model


class WorkloadClass(Model):
    """Defaults for the pods of steps in one class (seed Day 13)."""

    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)


def _default_classes() -> dict[str, WorkloadClass]:
    return {
        "network": WorkloadClass(
            requests={"cpu": "250m", "memory": "256Mi"}, limits={"cpu": "1", "memory": "1Gi"}
        ),
        "compute": WorkloadClass(
            requests={"cpu": "1", "memory": "1Gi"}, limits={"cpu": "2", "memory": "4Gi"}
        ),
        "memory": WorkloadClass(
            requests={"cpu": "500m", "memory": "4Gi"}, limits={"cpu": "2", "memory": "8Gi"}
        ),
        "storage": WorkloadClass(
            requests={"cpu": "500m", "memory": "1Gi"}, limits={"cpu": "1", "memory": "2Gi"}
        ),
    }


def _default_step_classes() -> dict[str, str]:
    return {
        "fetch": "network",
        "transform": "compute",
        "fan-out": "compute",
        "quality-check": "compute",
        "load": "storage",
        "container": "compute",
    }


class SecretKeyRef(Model):
    """One key of a Secret in the operator's namespace (`notificationsNamespace`)."""

    name: str
    key: str = "url"


class Receiver(Model):
    """A webhook told when a pipeline fails or a step exhausts its retries."""

    name: str
    format: Literal["json", "slack"] = Field("json", description="json: our payload; slack: {text: ...}")
    url_secret: SecretKeyRef = Field(
        description="The webhook URL, read from a Secret (it often holds a token)."
    )
    min_severity: Literal["warning", "critical"] = Field(
        "warning", description="critical: only failed pipelines; warning: also steps that failed on their own"
    )
    cooldown_seconds: int = Field(
        900, ge=0, description="At most one notification per pipeline in this time."
    )


class OperatorConfig(Model):
    """Everything the operator reads from its configuration file."""

    worker_image: str = "ghcr.io/dataworks/worker:0.1.0"
    default_retry_limit: int = Field(1, ge=0)
    max_parallelism: int = Field(1000, ge=1)
    resync_seconds: float = Field(60.0, gt=0)
    workload_classes: dict[str, WorkloadClass] = Field(default_factory=_default_classes)
    step_classes: dict[str, str] = Field(default_factory=_default_step_classes)
    pod_security_restricted: bool = True
    artifact_store: str = Field(
        "file:///var/lib/dataworks/store",
        description="fsspec URL where steps keep their outputs (s3://bucket/prefix on a real cluster).",
    )
    artifact_store_secret: str | None = Field(
        None,
        description="A Secret in the pipeline's namespace with the store's credentials, as env vars "
        "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, ...).",
    )
    notifications: list[Receiver] = Field(default_factory=list)
    notifications_namespace: str = Field(
        "dataworks-system", description="Where the receivers' Secrets are (the operator's own namespace)."
    )
    artifact_store_claim: str | None = Field(
        None, description="A ReadWriteMany PersistentVolumeClaim mounted at a file:// store's path."
    )
