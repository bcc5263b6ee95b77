"""The operator's configuration file (pure layer): shared settings, then one section per controller.

Loaded from YAML (a ConfigMap in a cluster install). Nothing here is in code:
workload classes, their resources, node selectors and tolerations, and the
mapping from step type to class all come from this file. Every part is a
model with descriptions; docs/operations.md documents each key (a test
keeps them in step), and an unknown key is a start-up error.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from dataworks import __version__
from dataworks.api.defaults import DEFAULT_ARTIFACT_STORE, DEFAULT_MAX_PARALLELISM
from dataworks.api.jobhandler import JobHandlerConfig
from dataworks.api.meta import Model


class ConfigModel(Model):
    """A part of the configuration file: unknown keys are errors, so a typo is not ignored."""

    model_config = ConfigDict(extra="forbid")


class WorkloadClass(ConfigModel):
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


class SecretKeyRef(ConfigModel):
    """One key of a Secret in the operator's namespace (`notificationsNamespace`)."""

    name: str
    key: str = "url"


class Receiver(ConfigModel):
    """A webhook told when a pipeline fails or a step exhausts its retries, and (warnings) of
    each anomaly of a StreamingJob that begins."""

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


class PipelinesConfig(ConfigModel):
    """The Pipeline controller's section (`pipelines:`)."""

    worker_image: str = Field(
        f"ghcr.io/dataworks/worker:{__version__}",
        description="The image of built-in steps (a step's image overrides it).",
    )
    default_retry_limit: int = Field(
        1, ge=0, description="Retries of a step whose retry policy does not say (the Job's backoffLimit)."
    )
    max_parallelism: int = Field(
        DEFAULT_MAX_PARALLELISM,
        ge=1,
        description="The largest fan-out a pipeline may ask for; above it is InvalidSpec.",
    )
    step_events: bool = Field(
        True,
        description="Post a Normal event when each step starts and completes. StepFailed, StepRetrying and "
        "the pipeline's own events are always posted. false halves the event writes of a busy cluster "
        "(like Argo's nodeEvents.enabled).",
    )
    workload_classes: dict[str, WorkloadClass] = Field(
        default_factory=_default_classes,
        description="Named pod defaults (requests, limits, nodeSelector, tolerations) "
        "for steps that set no resources.",
    )
    step_classes: dict[str, str] = Field(
        default_factory=_default_step_classes, description="The workload class of each step type."
    )
    artifact_store: str = Field(
        DEFAULT_ARTIFACT_STORE,
        description="fsspec URL where steps keep their outputs (s3://bucket/prefix on a real cluster).",
    )
    artifact_store_secret: str | None = Field(
        None,
        description="A Secret in the pipeline's namespace with the store's credentials, as env vars "
        "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, ...).",
    )
    artifact_store_claim: str | None = Field(
        None, description="A ReadWriteMany PersistentVolumeClaim mounted at a file:// store's path."
    )


class TrainingJobsConfig(ConfigModel):
    """The `trainingJobs:` section: the TrainingJob controller's settings."""

    image_pattern: str = Field(
        "training-image:{model}",
        description="The worker image of a TrainingJob that names none; {model} is its spec.model.",
    )


class StreamingJobsConfig(ConfigModel):
    """The `streamingJobs:` section: the StreamingJob controller's settings."""

    image: str = Field(
        f"ghcr.io/dataworks/worker:{__version__}",
        description="The consumer image of a StreamingJob that names none: it runs `dataworks consume` "
        "(the worker image has the streams extra).",
    )


class OperatorConfig(ConfigModel):
    """Everything the operator reads from its configuration file: what every controller shares,
    then one section per controller."""

    resync_seconds: float = Field(
        60.0, gt=0, description="How often every unfinished object is reconciled anyway (a safety net)."
    )
    notifications: list[Receiver] = Field(
        default_factory=list, description="Webhooks told of failed pipelines (and, if asked, failed steps)."
    )
    notifications_namespace: str = Field(
        "dataworks-system", description="Where the receivers' Secrets are (the operator's own namespace)."
    )
    pipelines: PipelinesConfig = Field(
        default_factory=PipelinesConfig, description="The Pipeline controller's settings."
    )
    training_jobs: TrainingJobsConfig = Field(
        default_factory=TrainingJobsConfig,
        description="The TrainingJob controller's settings.",
    )
    streaming_jobs: StreamingJobsConfig = Field(
        default_factory=StreamingJobsConfig,
        description="The StreamingJob controller's settings.",
    )
    job_handler: JobHandlerConfig = Field(
        default_factory=JobHandlerConfig,
        description="The job-completion handler's settings.",
    )

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        """Keys that moved into a controller's section name the section (they were top-level)."""
        if isinstance(data, dict):
            moved = [k for k in data if k in _PIPELINE_KEYS]
            if moved:
                raise ValueError(
                    f"{', '.join(moved)} belong{'s' if len(moved) == 1 else ''} in the pipelines section "
                    f"now: indent under `pipelines:` (see docs/operations.md, Configuration)"
                )
        return data


_PIPELINE_KEYS = frozenset(f.alias or n for n, f in PipelinesConfig.model_fields.items())
