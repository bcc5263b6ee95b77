"""The SequentialJob resource, dataworks.io/v1 (pure layer).

Standard Kubernetes containers run one after another, each as its own Job,
with a shared pod template. These models are the one definition of the
resource: the operator and the local runtime parse with them, and
`dataworks.api.crdgen` renders the CRD (schema, descriptions, CEL rules,
printer columns) from them. Field names are Kubernetes camelCase; per-step
settings use the Job's own spellings (backoffLimit, activeDeadlineSeconds).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from dataworks.api.common import DNS1123_LABEL
from dataworks.api.meta import GROUP, VERSION, Condition, KindInfo, Model, StatusModel
from dataworks.api.pods import Container, PodTemplate

KIND = "SequentialJob"
PLURAL = "sequentialjobs"
OWNER_LABEL = "dataworks.io/sequentialjob"

MAX_CONTAINERS = 100
MAX_JOB_NAME = 63  # a step's Job is <name>-<container>, and its name is a label value on its pods
OUTPUT_LIMIT = 4096  # bytes of a step's output: the kubelet's limit on a termination message

OnFailure = Literal["stop", "continue"]


class StepPolicy(Model):
    """How one step (named by its container) is retried, timed and treated when it fails."""

    name: str = Field(
        min_length=1, max_length=63, pattern=DNS1123_LABEL, description="The container this applies to."
    )
    backoff_limit: int | None = Field(
        None,
        ge=0,
        le=100,
        description="Retries of the step's pod before the step fails: its Job's backoffLimit (default 0).",
    )
    active_deadline_seconds: int | None = Field(
        None,
        ge=1,
        description="Deadline of the step, retries included: its Job's activeDeadlineSeconds.",
    )
    on_failure: OnFailure = Field(
        "stop",
        description="When the step fails: stop (the sequence fails; later steps do not run) or continue "
        "(the next step runs, and the failure alone does not fail the sequence).",
    )


class RetryRequest(Model):
    """A declarative re-run, applied exactly once per id, once the sequence has finished."""

    id: str = Field(
        min_length=1, max_length=63, description="Unique id of this request; change it to re-run again."
    )
    step: str | None = Field(
        None,
        max_length=63,
        description="Re-run from this step (a container name): it and every later step run again, earlier "
        "steps keep their Jobs and outputs. Default: from the first step that did not complete.",
    )


class SequentialJobSpec(Model):
    """The containers to run in order, and how."""

    containers: list[Container] = Field(
        min_length=1,
        max_length=MAX_CONTAINERS,
        description="Containers run one after another, each as its own Job once the previous one succeeded.",
    )
    template: PodTemplate | None = Field(
        None,
        description="Pod template every step shares: labels, annotations, volumes, nodeSelector, "
        "tolerations, serviceAccountName, securityContext, ...",
    )
    steps: list[StepPolicy] | None = Field(
        None,
        max_length=MAX_CONTAINERS,
        description="Per-step settings (backoffLimit, activeDeadlineSeconds, onFailure), by container name.",
    )
    active_deadline_seconds: int | None = Field(
        None, ge=1, description="Deadline of the whole sequence, from its start (or its latest re-run)."
    )
    suspend: bool = Field(
        False, description="Pause: no step starts, and the running step's Job is suspended."
    )
    retry: RetryRequest | None = Field(None, description="Re-run a finished sequence (applied once per id).")
    ttl_seconds_after_finished: int | None = Field(
        None, ge=0, description="Delete the SequentialJob (and its Jobs) this long after it finishes."
    )
    archive_logs: bool = Field(
        False,
        description="Label each step Job job-handler/enabled=true, so the job-completion handler keeps "
        "its logs in a ConfigMap that outlives the SequentialJob (dataworks logs job/NAME reads it).",
    )

    crd_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "!has(self.steps) || self.steps.all(s, self.containers.exists(c, c.name == s.name))",
            "message": "each entry of spec.steps must name a container of spec.containers",
            "fieldPath": ".steps",
        },
        {
            "rule": "!has(self.retry) || !has(self.retry.step) "
            "|| self.containers.exists(c, c.name == self.retry.step)",
            "message": "spec.retry.step must name a container of spec.containers",
            "fieldPath": ".retry.step",
        },
    ]

    def policy(self, name: str) -> StepPolicy:
        """The settings of the step named `name` (the defaults when it has none)."""
        return next((p for p in self.steps or [] if p.name == name), StepPolicy(name=name))


StepPhase = Literal["Waiting", "Running", "Completed", "Failed", "Skipped", "Cancelled"]
Phase = Literal["Pending", "Running", "Suspended", "Completed", "Failed"]


class StepStatus(StatusModel):
    """Observed state of one step."""

    name: str
    index: int = 0
    phase: StepPhase = "Waiting"
    attempt: int = Field(1, description="Run of this step: 1, then one more for each re-run (spec.retry).")
    job_name: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    failed_pods: int = Field(
        0, description="Pods of this run's Job that failed (retried while backoffLimit allows)."
    )
    reason: str | None = None
    message: str | None = None
    output: str | None = Field(
        None, description='The container\'s termination message, at most 4 KiB ("": it left none).'
    )


class ExecutionState(StatusModel):
    """Steps by state."""

    active: int = 0
    succeeded: int = 0
    failed: int = 0


class Progress(StatusModel):
    """Where the sequence is."""

    current_index: int = Field(0, description="Index of the step running now, or of the last one run.")
    completed_indices: list[int] = Field(default_factory=list, description="Indices of completed steps.")
    step: str | None = Field(None, description="The step running (or last run) of all, e.g. 2/3.")


class SequentialJobStatus(StatusModel):
    """Observed state of the sequence."""

    phase: Phase = "Pending"
    observed_generation: int | None = None
    state: ExecutionState = Field(default_factory=ExecutionState)
    progress: Progress = Field(default_factory=Progress)
    start_time: str | None = None
    completion_time: str | None = None
    steps: list[StepStatus] = Field(default_factory=list)
    message: str | None = None
    last_retry_id: str | None = None
    conditions: list[Condition] = Field(default_factory=list)


class SequentialJob(Model):
    """Containers run one after another, each as its own Kubernetes Job."""

    api_version: str = f"{GROUP}/{VERSION}"
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: SequentialJobSpec
    status: SequentialJobStatus | None = None

    crd_rules: ClassVar[list[dict[str, str]]] = [
        {
            # A step's Job is <metadata.name>-<container name>: at most 63 characters.
            "rule": f"self.spec.containers.all(c, size(self.metadata.name) + size(c.name) < {MAX_JOB_NAME})",
            "message": f"metadata.name and each container name make the step's Job name "
            f"<metadata.name>-<container name>, at most {MAX_JOB_NAME} characters: shorten one of them",
            "fieldPath": ".spec.containers",
        },
    ]


TERMINAL_PHASES = frozenset({"Completed", "Failed"})
TERMINAL_STEP_PHASES = frozenset({"Completed", "Failed", "Skipped", "Cancelled"})

INFO = KindInfo(
    kind=KIND,
    plural=PLURAL,
    root=SequentialJob,
    spec=SequentialJobSpec,
    status=SequentialJobStatus,
    short_names=("sqj",),
    printer_columns=(
        {"name": "Step", "type": "string", "jsonPath": ".status.progress.step"},
        {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ),
    terminal_phases=TERMINAL_PHASES,
    owner_label=OWNER_LABEL,
)
