"""The state of one SequentialJob planning pass (pure layer), shared by the policy modules.

`Work` holds the inputs (the validated spec, the old status, the observed Jobs
and what their pods said, `now`) and the Plan being built. Each policy module
(rerun, observing, deadline, sequencing, suspension, events, status) reads and
updates it; only `planning.plan` decides the order they run in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dataworks.api import sequentialjob as api
from dataworks.api.pods import Container
from dataworks.core.kit import conditions
from dataworks.core.kit.jobs import JobView
from dataworks.core.kit.plan import Event, Meta

TERMINAL = api.TERMINAL_PHASES
TERMINAL_STEP = api.TERMINAL_STEP_PHASES
VALIDATION_FAILED = "ValidationFailed"


@dataclass(frozen=True)
class PodFacts:
    """What the pods of a finished Job said: the container's termination message and why it failed."""

    output: str | None = None
    reason: str | None = None  # e.g. OOMKilled
    message: str | None = None  # the failed container's message, as one line


@dataclass(frozen=True)
class Launch:
    """Create the Job of one run (attempt) of one step."""

    index: int
    container: Container
    policy: api.StepPolicy
    attempt: int
    job_name: str


@dataclass
class Plan:
    """Everything one reconcile does, decided before anything is done."""

    status: api.SequentialJobStatus
    create: list[Launch] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)  # Job names
    suspend: list[str] = field(default_factory=list)
    resume: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue_at: datetime | None = None
    delete_self: bool = False  # ttlSecondsAfterFinished has passed

    @property
    def finished(self) -> bool:
        return self.status.phase in TERMINAL


def failed_validation(status: api.SequentialJobStatus) -> bool:
    """Whether the status is that of a spec that did not validate (a fixed spec runs again)."""
    return any(
        c.type == "Failed" and c.status == "True" and c.reason == VALIDATION_FAILED for c in status.conditions
    )


class Work:
    """The state of one planning pass."""

    def __init__(
        self,
        *,
        meta: Meta,
        old: api.SequentialJobStatus,
        spec: api.SequentialJobSpec,
        now: datetime,
        jobs: list[JobView],
        facts: dict[str, PodFacts] | None = None,
    ) -> None:
        self.meta, self.old, self.spec, self.now = meta, old, spec, now
        self.facts = facts or {}
        # Shallow copies suffice: nested values (state, progress) are replaced, never mutated.
        self.status = old.model_copy(
            update={
                "steps": [s.model_copy() for s in old.steps],
                "conditions": [c.model_copy() for c in old.conditions],
            }
        )
        self.status.observed_generation = meta.generation
        self.previous = {s.name: s for s in old.steps}
        known = {s.name: s for s in self.status.steps}
        self.status.steps = [known.get(c.name) or api.StepStatus(name=c.name) for c in spec.containers]
        for i, st in enumerate(self.status.steps):
            st.index = i
        self.by_name = {s.name: s for s in self.status.steps}
        self.containers = {c.name: c for c in spec.containers}
        self.current = {(j.step, j.attempt): j for j in jobs if j.step and not j.deleting}
        # A sequence that finished stays finished until a retry request re-runs it.
        self.finished = old.phase in TERMINAL and not failed_validation(old)
        self.deadline_hit = False
        self.plan = Plan(status=self.status)

    def job(self, name: str) -> JobView | None:
        """The Job of the step's current run, if observed."""
        return self.current.get((name, self.by_name[name].attempt))

    def policy(self, name: str) -> api.StepPolicy:
        return self.spec.policy(name)

    def stops(self, st: api.StepStatus) -> bool:
        """Whether this step's outcome ends the sequence: it failed and its onFailure is stop."""
        return st.phase == "Failed" and self.policy(st.name).on_failure == "stop"

    def passed(self, st: api.StepStatus) -> bool:
        """Whether the sequence may go past this step: it completed, or failed with onFailure continue."""
        return st.phase == "Completed" or (st.phase == "Failed" and not self.stops(st))

    def set_condition(self, type_: str, value: bool, reason: str, message: str) -> None:
        conditions.set_condition(
            self.status.conditions,
            type_,
            value,
            reason=reason,
            message=message,
            now=self.now,
            generation=self.meta.generation,
        )
