"""The Pipeline planner (pure layer): observed state in, one Plan out.

`plan(meta, spec, status, jobs, now, settings)` decides everything a reconcile
does: which step Jobs to create, delete, suspend or resume, the one status to
write, and the events to send once that status is written. It reads the
world only through its arguments, so the operator and the local executor run
the same decisions, and a repeated call with the same input is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from dataworks.api import pipeline as api
from dataworks.core import dag, naming, quantities, validation
from dataworks.core.observations import JobView
from dataworks.core.steps import SpecError, StepDef

TERMINAL_STEP = {"Completed", "Failed", "Skipped", "Cancelled"}
TERMINAL_PIPELINE = {"Completed", "Failed", "Cancelled"}


@dataclass(frozen=True)
class Settings:
    """Operator configuration that planning depends on."""

    max_parallelism: int = 1000
    step_events: bool = True  # StepStarted/StepCompleted; warnings and pipeline events always


@dataclass(frozen=True)
class Meta:
    name: str
    namespace: str
    generation: int = 1


@dataclass(frozen=True)
class Launch:
    """Create the Job of one attempt of one step."""

    step: StepDef
    attempt: int
    job_name: str


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str
    step: str | None = None  # the step it is about, if any (for logs)


@dataclass
class Plan:
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


def ts(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _set_condition(
    status: api.PipelineStatus, type_: str, value: bool, *, reason: str, message: str, now: datetime, gen: int
) -> None:
    new: Literal["True", "False"] = "True" if value else "False"
    for c in status.conditions:
        if c.type == type_:
            if c.status != new:
                c.last_transition_time = ts(now)
            c.status, c.reason, c.message, c.observed_generation = new, reason, message, gen
            return
    status.conditions.append(
        api.Condition(
            type=type_,
            status=new,
            reason=reason,
            message=message,
            last_transition_time=ts(now),
            observed_generation=gen,
        )
    )


def _invalid(meta: Meta, old: api.PipelineStatus, errors: list[Any], now: datetime) -> Plan:
    status = old.model_copy(deep=True)
    text = "; ".join(str(e) for e in errors[:5]) + (
        f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
    )
    status.phase = "Failed"
    status.message = f"invalid spec: {text}"
    status.completion_time = status.completion_time or ts(now)
    status.observed_generation = meta.generation
    _set_condition(status, "Valid", False, reason="InvalidSpec", message=text, now=now, gen=meta.generation)
    _set_condition(status, "Failed", True, reason="InvalidSpec", message=text, now=now, gen=meta.generation)
    _set_condition(
        status, "Complete", False, reason="InvalidSpec", message=text, now=now, gen=meta.generation
    )
    events = []
    if old.message != status.message:
        events.append(Event("Warning", "InvalidSpec", status.message))
    return Plan(status=status, events=events)


def _apply_job(st: api.StepStatus, job: JobView, sdef: StepDef, now: datetime) -> None:
    if job.state == "Failed" and st.phase == "Failed" and st.job_name == job.name:
        return  # already recorded, with the pod-level reason looked up at the time
    st.job_name = job.name
    st.start_time = st.start_time or job.start_time
    if sdef.is_fan_out:
        st.workers = api.WorkerCounts(
            active=job.active, succeeded=job.succeeded, failed=job.failed, failed_indexes=job.failed_indexes
        )
    if job.state == "Succeeded":
        st.phase, st.reason, st.message = "Completed", None, None
        # Recorded once, when first observed: the Job's own completionTime
        # arrives in a later event, and copying it would cost one more write.
        st.completion_time = st.completion_time or job.completion_time or ts(now)
    elif job.state == "Failed":
        st.phase, st.reason = "Failed", job.pod_reason or job.reason or "Failed"
        detail = job.message
        if job.pod_reason and job.reason:
            detail = f"{job.reason}: {detail or 'the Job failed'}"
        if sdef.is_fan_out and sdef.parallelism > 1:
            failed_workers = len(_indexes(job.failed_indexes)) or job.failed
            detail = f"{failed_workers} of {sdef.parallelism} workers failed ({st.reason})"
        if job.pod_message:  # what the container itself said, e.g. the worker's error line
            detail = f"{detail}: {job.pod_message}" if detail else job.pod_message
        st.message = detail
    else:
        st.phase = "Running"


def _indexes(text: str | None) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            out.update(range(int(a), int(b) + 1))
        elif part.strip():
            out.add(int(part))
    return out


def _retry(spec: api.PipelineSpec, status: api.PipelineStatus, deps: dict[str, tuple[str, ...]]) -> list[str]:
    """Apply a new retry request to the statuses; returns the steps it re-runs."""
    request = spec.retry
    if request is None or request.id == status.last_retry_id:
        return []
    status.last_retry_id = request.id
    by_name = {s.name: s for s in status.step_statuses}
    redo = {"Failed", "Skipped", "Cancelled"}
    if request.step:
        if request.step not in by_name:
            return []
        targets = {request.step} | {
            d for d in dag.dependents(deps, [request.step]) if by_name[d].phase in redo
        }
    else:
        targets = {s.name for s in status.step_statuses if s.phase in redo}
    for name in targets:
        st = by_name[name]
        if st.job_name:  # it ran: the new attempt gets a new Job; never-run steps keep theirs
            st.attempt += 1
        st.phase, st.job_name, st.start_time, st.completion_time = "Waiting", None, None, None
        st.message, st.reason, st.workers = None, None, None
    if targets:
        status.completion_time = None
        status.message = None
    return sorted(targets)


def plan(
    meta: Meta,
    spec_raw: dict[str, Any],
    old_status: api.PipelineStatus | None,
    jobs: list[JobView],
    *,
    now: datetime,
    settings: Settings = Settings(),
    checked: tuple[validation.Validated | None, list[SpecError]] | None = None,
) -> Plan:
    """Plan one reconcile. `checked` may carry the result of validating this
    very spec (callers cache it per generation); otherwise it is validated here."""
    old = old_status or api.PipelineStatus()
    validated, errors = checked or validation.validate_raw(spec_raw, max_parallelism=settings.max_parallelism)
    if validated is None:
        return _invalid(meta, old, errors, now)
    w = _Work(meta=meta, old=old, validated=validated, now=now, jobs=jobs)
    _set_condition(w.status, "Valid", True, reason="Valid", message="", now=now, gen=meta.generation)
    if not w.spec.shutdown:
        for name in _retry(w.spec, w.status, w.deps):
            w.plan.events.append(
                Event(
                    "Normal", "StepRetrying", f"step {name} will re-run as attempt {w.by_name[name].attempt}"
                )
            )
    w.observe()
    stopping = w.spec.shutdown == "Terminate" or w.deadline_hit()
    if stopping and old.phase not in TERMINAL_PIPELINE:
        w.stop("pipeline cancelled" if w.spec.shutdown else "pipeline deadline exceeded")
    w.skip_blocked()
    if not stopping:
        w.suspend_or_resume()
        if not w.spec.suspend:
            w.schedule()
    _step_events(w.previous, w.status, w.plan, normal=settings.step_events)
    _finish(w, deadline_hit=w.spec.shutdown is None and w.deadline_hit())
    if old.observed_generation is not None and old.observed_generation != meta.generation:
        w.ignored_changes()
    _timers(w)
    return w.plan


def _timers(w: _Work) -> None:
    """When to look again without an event: at the deadline, or to apply the TTL."""
    st, spec = w.status, w.spec
    if st.phase in TERMINAL_PIPELINE:
        if spec.ttl_seconds_after_finished is not None and st.completion_time:
            expiry = parse_ts(st.completion_time) + timedelta(seconds=spec.ttl_seconds_after_finished)
            if w.now >= expiry:
                w.plan.delete_pipeline = True
            else:
                w.plan.requeue_at = expiry
    elif spec.active_deadline_seconds and st.start_time:
        w.plan.requeue_at = parse_ts(st.start_time) + timedelta(seconds=spec.active_deadline_seconds + 1)


class _Work:
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
        self.current = {(j.step, j.attempt): j for j in jobs if not j.deleting}
        self.plan = Plan(status=self.status, validated=validated)

    def job(self, name: str) -> JobView | None:
        return self.current.get((name, self.by_name[name].attempt))

    def deadline_hit(self) -> bool:
        limit, start = self.spec.active_deadline_seconds, self.status.start_time
        return bool(limit and start and (self.now - parse_ts(start)).total_seconds() > limit)

    def observe(self) -> None:
        for name in self.order:
            st, job = self.by_name[name], self.job(name)
            if job is not None and st.phase not in {"Skipped", "Cancelled"}:
                _apply_job(st, job, self.defs[name], self.now)

    def stop(self, why: str) -> None:
        for name in self.order:
            st = self.by_name[name]
            if st.phase in TERMINAL_STEP:
                continue
            job = self.job(name)
            if job is not None and job.state in {"Active", "Suspended"}:
                self.plan.delete.append(job.name)
            st.phase, st.message = "Cancelled", why
            st.completion_time = st.completion_time or ts(self.now)

    def skip_blocked(self) -> None:
        """Skip the dependents of failed, skipped and cancelled steps (unless `continue`)."""
        for name in self.order:
            st = self.by_name[name]
            if st.phase != "Waiting":
                continue
            for d in self.deps[name]:
                up = self.by_name[d]
                if up.phase in {"Skipped", "Cancelled"} or (
                    up.phase == "Failed" and self.defs[d].on_failure != "continue"
                ):
                    st.phase, st.reason = "Skipped", "UpstreamFailed"
                    st.message = f"skipped because step {d} {up.phase.lower()}"
                    break

    def suspend_or_resume(self) -> None:
        for name in self.order:
            job = self.job(name)
            if job is None or self.by_name[name].phase != "Running":
                continue
            if self.spec.suspend and job.state == "Active":
                self.plan.suspend.append(job.name)
            elif not self.spec.suspend and job.state == "Suspended":
                self.plan.resume.append(job.name)

    def ignored_changes(self) -> None:
        """Edits to steps that already started do not change their Jobs: say so once."""
        for name in self.order:
            st = self.by_name[name]
            started = st.phase in {"Running", "Completed", "Failed"} and st.spec_hash
            if started and st.spec_hash != self.defs[name].fingerprint():
                state = "is running" if st.phase == "Running" else "has finished"
                self.plan.events.append(
                    Event(
                        "Normal",
                        "SpecChangeIgnored",
                        f"step {name} {state}: the edit applies to its next attempt (spec.retry)",
                    )
                )

    def ready(self, name: str) -> bool:
        return all(
            self.by_name[d].phase == "Completed"
            or (self.by_name[d].phase == "Failed" and self.defs[d].on_failure == "continue")
            for d in self.deps[name]
        )

    def schedule(self) -> None:
        running = sum(1 for s in self.status.step_statuses if s.phase == "Running")
        budget = (self.spec.max_parallel or len(self.order)) - running
        for name in self.order:
            st = self.by_name[name]
            # A step recorded Running whose Job is not (yet) observed is launched
            # again: the name is deterministic, so the create adopts the Job.
            relaunch = st.phase == "Running" and self.job(name) is None
            if not (st.phase == "Waiting" and budget > 0) and not relaunch:
                continue
            if not self.ready(name):
                continue
            job_name = naming.job_name(self.meta.name, name, st.attempt)
            self.plan.create.append(Launch(step=self.defs[name], attempt=st.attempt, job_name=job_name))
            if st.phase == "Waiting":
                budget -= 1
            st.phase, st.job_name = "Running", job_name
            st.start_time = st.start_time or ts(self.now)
            st.spec_hash = self.defs[name].fingerprint()


def _finish(w: _Work, *, deadline_hit: bool) -> None:
    meta, spec, status, old, defs, p, now = w.meta, w.spec, w.status, w.old, w.defs, w.plan, w.now
    steps = status.step_statuses
    status.total_steps = len(steps)
    status.completed_steps = sum(1 for s in steps if s.phase == "Completed")
    status.failed_steps = sum(1 for s in steps if s.phase == "Failed")
    status.progress = f"{status.completed_steps}/{status.total_steps}"
    if any(s.phase == "Running" for s in steps) and not status.start_time:
        status.start_time = ts(now)
    fatal = [s for s in steps if s.phase == "Failed" and defs[s.name].on_failure == "fail"]
    all_done = all(s.phase in TERMINAL_STEP for s in steps)
    if spec.shutdown == "Terminate":
        phase, reason, message = "Cancelled", "Cancelled", "cancelled by spec.shutdown=Terminate"
    elif deadline_hit:
        phase, reason = "Failed", "DeadlineExceeded"
        message = f"pipeline exceeded activeDeadlineSeconds={spec.active_deadline_seconds}"
    elif all_done and fatal:
        phase, reason = "Failed", fatal[0].reason or "StepFailed"
        first = fatal[0]
        message = f"step {first.name} failed: {first.reason}"
        if first.message and first.message != first.reason:
            message += f" ({first.message})"
        if len(fatal) > 1:
            message += f" (and {len(fatal) - 1} more failed steps)"
    elif all_done:
        phase, reason, message = (
            "Completed",
            "Completed",
            f"{status.completed_steps} of {status.total_steps} steps completed",
        )
    elif spec.suspend:
        phase, reason, message = "Suspended", "Suspended", "suspended by spec.suspend"
    elif any(s.phase == "Running" for s in steps) or status.start_time:
        phase, reason, message = "Running", "Running", ""
    else:
        phase, reason, message = "Pending", "Pending", ""
    status.phase = phase  # type: ignore[assignment]
    status.message = message or None
    terminal = phase in TERMINAL_PIPELINE
    if terminal:
        status.completion_time = status.completion_time or ts(now)
        if status.start_time:
            status.duration = quantities.format_duration(
                (parse_ts(status.completion_time) - parse_ts(status.start_time)).total_seconds()
            )
    else:
        status.completion_time, status.duration = None, None
    gen = meta.generation
    _set_condition(status, "Complete", phase == "Completed", reason=reason, message=message, now=now, gen=gen)
    _set_condition(status, "Failed", phase == "Failed", reason=reason, message=message, now=now, gen=gen)
    _set_condition(
        status, "Suspended", phase == "Suspended", reason=reason, message=message, now=now, gen=gen
    )
    if phase != old.phase and terminal:
        kind = {"Completed": ("Normal", "PipelineCompleted"), "Failed": ("Warning", "PipelineFailed")}
        type_, ev = kind.get(phase, ("Normal", "PipelineCancelled"))
        p.events.append(Event(type_, ev, message))


def _step_events(
    previous: dict[str, api.StepStatus], status: api.PipelineStatus, p: Plan, *, normal: bool
) -> None:
    for st in status.step_statuses:
        before = previous.get(st.name)
        if before is not None and before.phase == st.phase and before.attempt == st.attempt:
            continue
        if not normal and st.phase in {"Running", "Completed"}:
            continue
        if st.phase == "Running":
            p.events.append(
                Event(
                    "Normal",
                    "StepStarted",
                    f"step {st.name} started (attempt {st.attempt}, job {st.job_name})",
                    step=st.name,
                )
            )
        elif st.phase == "Completed":
            p.events.append(Event("Normal", "StepCompleted", f"step {st.name} completed", step=st.name))
        elif st.phase == "Failed":
            p.events.append(
                Event("Warning", "StepFailed", f"step {st.name} failed: {st.message}", step=st.name)
            )
