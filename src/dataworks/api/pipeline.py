"""The Pipeline resource, dataworks.io/v1 (pure layer).

These pydantic models are the one definition of the resource: the operator
and the local executor parse with them, and `dataworks.api.crdgen` renders
the CRD (schema, descriptions, CEL rules, printer columns) from them.
Field names are the Kubernetes camelCase spellings; Python code uses the
snake_case attribute names.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from dataworks.api.common import DNS1123_LABEL, DURATION, EnvVar, PodDefaults, Resources, RetryPolicy
from dataworks.api.meta import GROUP, VERSION, Condition, KindInfo, Model, StatusModel

__all__ = ["GROUP", "VERSION", "Condition", "EnvVar", "Model", "PodDefaults", "Resources", "RetryPolicy"]

KIND = "Pipeline"
PLURAL = "pipelines"

STEP_TYPES = ("fetch", "transform", "load", "fan-out", "quality-check", "container")
StepType = Literal["fetch", "transform", "load", "fan-out", "quality-check", "container"]
OnFailure = Literal["fail", "skip-dependents", "continue"]
OnSkipped = Literal["skip", "run"]

MAX_STEP_NAME = 50  # leaves room for a Job-name suffix within 63 characters
MAX_STEPS = 500
MAX_DEPENDS_ON = MAX_STEPS - 1  # a step may join every other step


class Step(Model):
    """One node of the pipeline DAG; it runs as one Kubernetes Job."""

    name: str = Field(
        min_length=1,
        max_length=MAX_STEP_NAME,
        pattern=DNS1123_LABEL,
        description="Unique step name: lowercase letters, digits and '-', at most 50 characters.",
    )
    type: StepType = Field(
        description="Step type: fetch, transform, load, fan-out, quality-check or container."
    )
    depends_on: list[str] = Field(
        default_factory=list,
        max_length=MAX_DEPENDS_ON,
        description="Names of the steps that must complete before this one starts.",
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="Step configuration; its fields depend on the step type."
    )
    resources: Resources | None = Field(
        None, description="Resources of the step's pods; defaults come from the step's workload class."
    )
    parallelism: int | None = Field(None, ge=1, description="Fan-out worker count (also accepted in config).")
    retry: RetryPolicy | None = Field(
        None, description="Retry policy; defaults come from the operator config."
    )
    on_failure: OnFailure = Field(
        "fail",
        description="When the step fails: fail (the pipeline fails once running steps end), "
        "skip-dependents (skip its dependents, let other branches finish) or continue (dependents run).",
    )
    timeout: str | None = Field(
        None, pattern=DURATION, description='Deadline of one step attempt, e.g. "30m" or "1h30m".'
    )
    when: str | None = Field(
        None,
        max_length=4096,
        description="Run the step only if this CEL expression is true, evaluated once its dependencies "
        "end. It sees steps (each step's phase and outputs: steps.fetch.outputs.rows, or "
        "steps[\"my-step\"] for a name with '-'), params, now and pipeline, and the helpers gb, hour, "
        "weekday, inHours and businessHours (docs/pipeline.md). False: the step is Skipped.",
    )
    on_skipped: OnSkipped = Field(
        "skip",
        description="When this step's condition is false: skip its dependents too (skip), or let "
        "them run as if it had completed (run).",
    )
    workload_class: str | None = Field(None, description="Workload class whose defaults this step uses.")
    annotations: dict[str, str] | None = Field(None, description="Extra annotations on this step's pods.")
    image: str | None = Field(None, description="Container image; required for container steps.")
    command: list[str] | None = Field(None, description="Container command (entrypoint).")
    args: list[str] | None = Field(None, description="Container arguments.")
    env: list[EnvVar] | None = Field(None, description="Environment of the step's container.")
    env_from: list[dict[str, Any]] | None = Field(None, description="ConfigMaps or Secrets to load as env.")

    crd_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "!has(self.dependsOn) || !(self.name in self.dependsOn)",
            "message": "a step cannot depend on itself",
            "fieldPath": ".dependsOn",
        },
        {
            "rule": "self.type != 'container' || has(self.image)",
            "message": "a container step needs an image",
            "fieldPath": ".image",
        },
    ]


class RetryRequest(Model):
    """A declarative request to re-run steps, applied exactly once per id."""

    id: str = Field(
        min_length=1, max_length=63, description="Unique id of this request; change it to retry again."
    )
    step: str | None = Field(
        None, description="Re-run only this step (default: every failed, skipped or cancelled step)."
    )


class PipelineDependency(Model):
    """Another pipeline that must have completed, recently enough, before this one starts."""

    name: str = Field(min_length=1, max_length=253, description="A Pipeline in this namespace.")
    max_age: float | None = Field(
        None,
        alias="maxAgeHours",
        gt=0,
        description="It must have completed at most this many hours ago (default: any time).",
    )
    max_age_seed: float | None = Field(
        None, alias="max_age_hours", gt=0, description="The seed's spelling of maxAgeHours."
    )

    crd_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "!has(self.maxAgeHours) || !has(self.max_age_hours)",
            "message": "give maxAgeHours or max_age_hours, not both",
            "fieldPath": ".maxAgeHours",
        }
    ]

    @property
    def max_age_hours(self) -> float | None:
        return self.max_age if self.max_age is not None else self.max_age_seed


class PipelineSpec(Model):
    """The desired pipeline: its steps and how to run them."""

    steps: list[Step] = Field(
        default_factory=list,
        max_length=MAX_STEPS,
        description="The steps of the DAG (or none, with a template).",
    )
    template: str | None = Field(
        None,
        min_length=1,
        max_length=253,
        description="A PipelineTemplate in this namespace whose steps this pipeline runs, expanded "
        "with parameters once, when the pipeline starts (status.template records it).",
    )
    parameters: dict[str, Any] | None = Field(
        None, description="Values of the template's parameters, by name (strings, numbers, booleans)."
    )
    pipeline_dependencies: list[PipelineDependency] = Field(
        default_factory=list,
        max_length=50,
        description="Pipelines that must have Completed (within maxAgeHours) before this one starts; "
        "until then it stays Pending, and the DependenciesReady condition says which and why.",
    )
    max_parallel: int | None = Field(None, ge=1, description="At most this many steps run at once.")
    active_deadline_seconds: int | None = Field(None, ge=1, description="Deadline of the whole pipeline.")
    ttl_seconds_after_finished: int | None = Field(
        None, ge=0, description="Delete the pipeline this long after it finishes."
    )
    archive_logs: bool = Field(
        False,
        description="Label each step Job job-handler/enabled=true, so the job-completion handler keeps "
        "its logs in a ConfigMap that outlives the pipeline (dataworks logs job/NAME reads it).",
    )
    service_account_name: str | None = Field(None, description="ServiceAccount of the step pods.")
    pod_defaults: PodDefaults | None = Field(None, description="Pod settings for all steps.")
    shutdown: Literal["Terminate"] | None = Field(
        None,
        description="Set to Terminate to cancel: running Jobs are deleted and the pipeline ends Cancelled.",
    )
    suspend: bool = Field(False, description="Pause: no new steps start and running Jobs are suspended.")
    retry: RetryRequest | None = Field(None, description="Re-run failed steps (applied once per retry id).")
    connections_secret: str | None = Field(
        None,
        description="A Secret in this namespace whose keys are connection names and values their URIs "
        "(postgresql://user:pass@host/db, sftp://..., s3://...). Built-in steps mount it read-only; "
        "no credential appears in a Job spec.",
    )

    crd_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "has(self.template) || (has(self.steps) && size(self.steps) > 0)",
            "message": "a pipeline needs at least one step, or a template",
            "fieldPath": ".steps",
        },
        {
            "rule": "!has(self.template) || !has(self.steps) || size(self.steps) == 0",
            "message": "give steps or a template, not both",
            "fieldPath": ".template",
        },
        {
            "rule": "has(self.template) || !has(self.parameters)",
            "message": "parameters fill in a template: set spec.template",
            "fieldPath": ".parameters",
        },
    ]

    @model_validator(mode="after")
    def _steps_or_template(self) -> PipelineSpec:
        # The same rules as crd_rules, for the CLI and the local executor.
        if self.template is None and not self.steps:
            raise ValueError("steps: a pipeline needs at least one step, or a template")
        if self.template is not None and self.steps:
            raise ValueError("template: give steps or a template, not both")
        if self.template is None and self.parameters is not None:
            raise ValueError("parameters: parameters fill in a template: set spec.template")
        return self

    # Unique step names are enforced by the API server itself: steps is a
    # list-map keyed by name (see crdgen). That dependsOn names existing steps
    # is checked by core.validation (InvalidSpec): as a CEL rule it is O(n^2)
    # and exceeds the API server's cost budget at 200+ steps.


class WorkerCounts(StatusModel):
    """Fan-out workers by state."""

    active: int = 0
    succeeded: int = 0
    failed: int = 0
    failed_indexes: str | None = None


StepPhase = Literal["Waiting", "Running", "Completed", "Failed", "Skipped", "Cancelled"]
PipelinePhase = Literal["Pending", "Running", "Completed", "Failed", "Cancelled", "Suspended"]


class StepStatus(StatusModel):
    """Observed state of one step."""

    name: str
    type: str = ""
    phase: StepPhase = "Waiting"
    job_name: str | None = None
    attempt: int = 0
    start_time: str | None = None
    completion_time: str | None = None
    message: str | None = None
    reason: str | None = None
    workers: WorkerCounts | None = None
    spec_hash: str | None = Field(None, description="Hash of the step definition this attempt started with.")
    outputs: dict[str, Any] | None = Field(
        None,
        description="What the completed step reported through its termination message: a built-in "
        "step's rows, bytes, files and durationSeconds (and its declared values), a container "
        "step's JSON object.",
    )


class TemplateExpansion(StatusModel):
    """The template a pipeline runs, as expanded when it started: a later edit of the
    template never changes this pipeline."""

    name: str
    resource_version: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict, description="Every parameter's value.")
    steps: list[dict[str, Any]] = Field(default_factory=list, description="The expanded steps.")


class PipelineStatus(StatusModel):
    """Observed state of the pipeline."""

    phase: PipelinePhase = "Pending"
    observed_generation: int | None = None
    start_time: str | None = None
    completion_time: str | None = None
    step_statuses: list[StepStatus] = Field(default_factory=list)
    total_steps: int = 0
    completed_steps: int = 0
    failed_steps: int = 0
    progress: str | None = Field(None, description="Completed of total steps, e.g. 3/5 (printer column).")
    duration: str | None = Field(
        None, description="Run time of a finished pipeline, e.g. 4m12s (printer column)."
    )
    message: str | None = None
    last_retry_id: str | None = None
    template: TemplateExpansion | None = None
    conditions: list[Condition] = Field(default_factory=list)


class Pipeline(Model):
    """A DAG of steps, each run as a Kubernetes Job."""

    api_version: str = f"{GROUP}/{VERSION}"
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: PipelineSpec
    status: PipelineStatus | None = None


TERMINAL_PHASES = frozenset({"Completed", "Failed", "Cancelled"})
TERMINAL_STEP_PHASES = frozenset({"Completed", "Failed", "Skipped", "Cancelled"})

INFO = KindInfo(
    kind=KIND,
    plural=PLURAL,
    root=Pipeline,
    spec=PipelineSpec,
    status=PipelineStatus,
    short_names=("pl",),
    printer_columns=(
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Steps", "type": "string", "jsonPath": ".status.progress"},
        {"name": "Duration", "type": "string", "jsonPath": ".status.duration"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ),
    terminal_phases=TERMINAL_PHASES,
    owner_label="dataworks.io/pipeline",
)
