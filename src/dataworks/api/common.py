"""Types that more than one kind's spec uses (pure layer): resources, retries, env, pod defaults."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from dataworks.api.meta import Model

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"

# The label that asks the job-completion handler to archive a Job (Pipelines and
# SequentialJobs put it on their step Jobs when `archiveLogs` is set).
ARCHIVE_LABEL = "job-handler/enabled"


class Resources(Model):
    """Compute resources of a step's pods.

    Either the shorthand `{cpu, memory}` (requests and limits alike), or full
    `requests`/`limits` maps as in a container spec. `parallelism` here is the
    seed manifests' spelling of a fan-out's worker count.
    """

    cpu: str | None = Field(None, description='CPU for requests and limits, e.g. "500m" or "2".')
    memory: str | None = Field(None, description='Memory for requests and limits, e.g. "512Mi".')
    parallelism: int | None = Field(None, ge=1, description="Fan-out worker count (shorthand).")
    requests: dict[str, str] | None = Field(None, description="Resource requests, as in a container spec.")
    limits: dict[str, str] | None = Field(None, description="Resource limits, as in a container spec.")


class RetryPolicy(Model):
    """How often a failed step is retried, and which failures are worth it.

    Failures are told apart by exit code (the Job's podFailurePolicy; the local
    executor applies the same rules). There is no rule by termination reason:
    a podFailurePolicy cannot match one (docs/decisions.md); an OOM kill is
    exit code 137.
    """

    limit: int | None = Field(
        None, ge=0, le=100, description="Retries after the first attempt (default from the operator config)."
    )
    retry_on_exit_codes: list[int] | None = Field(
        None, description="Retry only when the container exits with one of these codes."
    )
    no_retry_exit_codes: list[int] | None = Field(
        None,
        description="Never retry when the container exits with one of these codes; fail the step "
        "(137: killed, e.g. OOMKilled).",
    )


class EnvVarSource(Model):
    """A value taken from a Secret or ConfigMap key; never a literal credential."""

    secret_key_ref: dict[str, Any] | None = Field(None, description="Select a key of a Secret.")
    config_map_key_ref: dict[str, Any] | None = Field(None, description="Select a key of a ConfigMap.")
    field_ref: dict[str, Any] | None = Field(None, description="Select a field of the pod.")


class EnvVar(Model):
    """An environment variable of a container step."""

    name: str = Field(description="Variable name.")
    value: str | None = Field(None, description="Literal value (not for credentials: use valueFrom).")
    value_from: EnvVarSource | None = Field(None, description="Take the value from a Secret or ConfigMap.")


class PodDefaults(Model):
    """Pod settings applied to every step's pods."""

    node_selector: dict[str, str] | None = Field(None, description="Node selector for all step pods.")
    tolerations: list[dict[str, Any]] | None = Field(None, description="Tolerations for all step pods.")
    image_pull_secrets: list[dict[str, str]] | None = Field(None, description="Image pull secrets.")
    labels: dict[str, str] | None = Field(None, description="Extra labels on step pods.")
    annotations: dict[str, str] | None = Field(None, description="Extra annotations on step pods.")
