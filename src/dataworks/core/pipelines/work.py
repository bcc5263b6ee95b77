"""The state of one Pipeline planning pass (pure layer), shared by the policy modules.

`Work` holds the inputs (the validated spec, the old status, the observed
Jobs, `now`) and the Plan being built. Each policy module (observing,
retry, failure, scheduling, status, events) reads and updates it; only
`planning.plan` decides the order they run in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dataworks.api import pipeline as api
from dataworks.api.defaults import DEFAULT_MAX_PARALLELISM
from dataworks.core.kit import dag, lifecycle
from dataworks.core.kit.jobs import JobView
from dataworks.core.kit.plan import Event, Meta
from dataworks.core.pipelines import validation
from dataworks.core.pipelines.steps import StepDef

TERMINAL_STEP = api.TERMINAL_STEP_PHASES
TERMINAL_PIPELINE = api.TERMINAL_PHASES


@dataclass(frozen=True)
class Settings:
    """Operator configuration that planning depends on."""

    max_parallelism: int = DEFAULT_MAX_PARALLELISM
    step_events: bool = True  # StepStarted/StepCompleted; warnings and pipeline events always


@dataclass(frozen=True)
class Launch:
    """Create the Job of one attempt of one step."""

    step: StepDef
    attempt: int
    job_name: str
    # Dependencies that ended without output (skipped by their condition with onSkipped: run,
    # or failed with onFailure: continue): a built-in step runs without them as inputs.
    absent_inputs: tuple[str, ...] = ()


@dataclass
class Plan:
    """Everything one reconcile does, decided before anything is done."""

    create: list[Launch] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    suspend: list[str] = field(default_factory=list)
    resume: list[str] = field(default_factory=list)
    status: api.PipelineStatus = field(default_factory=api.PipelineStatus)
    events: list[Event] = field(default_factory=list)
    validated: validation.Validated | None = None
    requeue_at: datetime | None = None  # reconcile again then (deadline, TTL), even without events
    delete_pipeline: bool = False  # ttlSecondsAfterFinished has passed

    @property
    def finished(self) -> bool:
        return self.status.phase in TERMINAL_PIPELINE


class Work:
    """The state of one planning pass."""

    def __init__(
        self,
        *,
        meta: Meta,
        old: api.PipelineStatus,
        validated: validation.Validated,
        now: datetime,
        jobs: list[JobView],
    ) -> None:
        self.meta, self.old, self.now, self.validated = meta, old, now, validated
        self.spec = validated.spec
        self.defs = validated.by_name()
        self.deps = {s.name: s.depends_on for s in validated.steps}
        self.order = dag.topological_order(self.deps)
        # Shallow copies suffice: nested values (workers) are replaced, never mutated.
        self.status = old.model_copy(
            update={
                "step_statuses": [s.model_copy() for s in old.step_statuses],
                "conditions": [c.model_copy() for c in old.conditions],
            }
        )
        self.status.observed_generation = meta.generation
        self.previous = {s.name: s for s in old.step_statuses}
        known = {s.name: s for s in self.status.step_statuses}
        self.status.step_statuses = [
            known.get(s.name) or api.StepStatus(name=s.name, type=s.type, attempt=1) for s in validated.steps
        ]
        self.by_name = {s.name: s for s in self.status.step_statuses}
        self.current = {(j.step, j.attempt): j for j in jobs if j.step and not j.deleting}
        self.plan = Plan(status=self.status, validated=validated)

    def job(self, name: str) -> JobView | None:
        """The Job of the step's current attempt, if observed."""
        return self.current.get((name, self.by_name[name].attempt))

    def deadline_hit(self) -> bool:
        return lifecycle.deadline_passed(
            self.status.start_time, self.spec.active_deadline_seconds, self.now, self.status.completion_time
        )
