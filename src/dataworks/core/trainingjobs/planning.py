"""What one reconcile of a TrainingJob does (pure layer): its state, and the gang's Jobs.

One Indexed Job per attempt, named `<name>-a<attempt>`. While it runs, the
state follows its workers (Initializing until every worker runs, then
Running; a gang that ran stays Running while its workers live, ready or not).
When any worker fails, the whole gang restarts: the attempt's Job
is deleted and the next attempt's created, resuming from the latest
checkpoint, up to `backoffLimit` restarts; disruptions do not count, and
non-retryable failures end it at once. Suspend suspends the Job (its pods get
SIGTERM and their grace period to checkpoint); resume lets it run again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dataworks.api import trainingjob as api
from dataworks.core.kit import conditions, lifecycle
from dataworks.core.kit.clock import parse_ts, ts
from dataworks.core.kit.jobs import JobView
from dataworks.core.kit.plan import Event, Meta
from dataworks.core.trainingjobs import progress
from dataworks.core.trainingjobs.failures import Failure, retryable
from dataworks.core.trainingjobs.workers import Workers
from dataworks.training.progress import Progress

PENDING_POLL_SECONDS = 5  # how often the reason a worker waits is read again
STATES: tuple[str, ...] = ("Initializing", "Running", "Restarting", "Succeeded", "Failed", "Suspended")


def job_name(name: str, attempt: int) -> str:
    return f"{name}-a{attempt}"


@dataclass
class Plan:
    status: api.TrainingJobStatus
    events: list[Event] = field(default_factory=list)
    launch: int | None = None  # create the Job of this attempt (and the shared children)
    delete: list[str] = field(default_factory=list)  # Jobs of earlier attempts, or the failed one
    suspend: str | None = None
    resume: str | None = None
    requeue_at: datetime | None = None
    delete_self: bool = False


def plan(
    meta: Meta,
    spec: api.TrainingJobSpec,
    old: api.TrainingJobStatus | None,
    jobs: list[JobView],
    workers: Workers,
    *,
    failure: Failure | None,
    now: datetime,
    reported: Progress | None = None,
) -> Plan:
    """`jobs` are the TrainingJob's Jobs; `workers` and `failure` describe the current attempt's pods;
    `reported` is rank 0's last progress line, when its log was read this time."""
    st = old.model_copy(deep=True) if old is not None else api.TrainingJobStatus(start_time=ts(now))
    st.start_time = st.start_time or ts(now)
    st.observed_generation = meta.generation
    p = Plan(status=st)
    if st.state in api.TERMINAL_STATES:
        return _timers(p, spec, now)
    name = job_name(meta.name, st.attempt)
    st.job_name = name
    current = next((j for j in jobs if j.name == name), None)
    p.delete = [j.name for j in jobs if j.name != name and not j.deleting]
    if lifecycle.deadline_passed(st.start_time, spec.active_deadline_seconds, now):
        if current is not None and not current.deleting:
            p.delete.append(name)
        message = f"the training ran longer than activeDeadlineSeconds ({spec.active_deadline_seconds}s)"
        return _finish(p, meta, "Failed", reason="DeadlineExceeded", message=message, now=now)
    if spec.suspend:
        if current is not None and current.state == "Active":
            p.suspend = name
        _to(
            p,
            meta,
            "Suspended",
            reason="Suspended",
            message="suspended: the workers were stopped (SIGTERM, then their grace period)",
            now=now,
        )
        return p
    if current is None:
        p.launch = st.attempt
        if st.state == "Created" and not any(e for e in st.conditions):
            p.events.append(Event("Normal", "Created", f"Created Job {name} with {spec.num_workers} workers"))
        if st.state == "Suspended":
            _to(p, meta, "Initializing", reason="Resumed", message=f"resumed: created Job {name}", now=now)
        return _requeue(p, spec)
    if current.state == "Suspended":
        p.resume = name
        _to(
            p,
            meta,
            "Initializing",
            reason="Resumed",
            message="resumed: the workers start again from the latest checkpoint",
            now=now,
        )
        return _requeue(p, spec)
    if current.state == "Succeeded":
        st.ready, st.active_workers = f"0/{spec.num_workers}", 0
        if reported is not None:  # rank 0's last lines, read once at the end: the last report counts
            progress.apply(st, reported, spec.progress_deadline_seconds, now=now, generation=meta.generation)
        return _finish(
            p,
            meta,
            "Succeeded",
            reason="Succeeded",
            message=f"all {spec.num_workers} workers completed",
            now=now,
        )
    if current.state == "Failed":
        return _failed(
            p, meta, spec, failure or Failure("Unknown", message=current.reason), name=name, now=now
        )
    was_ready = st.ready
    st.ready, st.active_workers = f"{workers.running}/{spec.num_workers}", workers.running
    # A gang that ran stays Running while every worker lives, ready or not: a node that misses
    # its heartbeats gets its pods marked not ready, and that is no reason to start over.
    alive = max(workers.started, workers.running) >= spec.num_workers
    if workers.running >= spec.num_workers or (st.state == "Running" and alive):
        return _running(p, meta, spec, ready=workers.running, was_ready=was_ready, reported=reported, now=now)
    if st.state != "Restarting" or (workers.running == 0 and workers.waiting_reason):
        reason = workers.waiting_reason or "WorkersStarting"
        message = workers.waiting_message or f"{workers.running} of {spec.num_workers} workers are running"
        _to(p, meta, "Initializing", reason=reason, message=message, now=now, event=False)
    # Why a worker waits changes without a Job event (a claim binds, a node frees up): look again.
    _requeue(p, spec)
    poll = now + timedelta(seconds=PENDING_POLL_SECONDS)
    p.requeue_at = poll if p.requeue_at is None else min(poll, p.requeue_at)
    return p


def _running(
    p: Plan,
    meta: Meta,
    spec: api.TrainingJobSpec,
    *,
    ready: int,
    was_ready: str | None,
    reported: Progress | None,
    now: datetime,
) -> Plan:
    """Running, all workers ready or some not (a Warning when the first stops being ready)."""
    st, n = p.status, spec.num_workers
    if ready >= n:
        reason, message = "Running", f"all {n} workers are running (attempt {st.attempt})"
        last = st.restarts[-1] if st.restarts else None
        if last is not None and last.attempt == st.attempt and last.recovered_after_seconds is None:
            since = (now - parse_ts(last.time)).total_seconds() if last.time else None
            last.recovered_after_seconds = round(max(0.0, since), 3) if since is not None else None
    else:
        reason = "WorkersNotReady"
        message = (
            f"{n - ready} of {n} workers are not ready (attempt {st.attempt}); "
            "they still run, and the gang restarts only if one fails"
        )
        if was_ready == f"{n}/{n}":
            p.events.append(Event("Warning", reason, message))
    _to(p, meta, "Running", reason=reason, message=message, now=now)
    poll = progress.apply(st, reported, spec.progress_deadline_seconds, now=now, generation=meta.generation)
    _requeue(p, spec)
    p.requeue_at = poll if p.requeue_at is None else min(poll, p.requeue_at)
    return p


def _failed(p: Plan, meta: Meta, spec: api.TrainingJobSpec, f: Failure, *, name: str, now: datetime) -> Plan:
    st = p.status
    policy = spec.failure_policy
    if not retryable(f, policy.non_retryable_exit_codes, policy.non_retryable_reasons):
        return _finish(
            p,
            meta,
            "Failed",
            reason=f.cause,
            message=f"{f.describe()}; not retryable (spec.failurePolicy)",
            now=now,
        )
    counted = not f.disruption
    if counted and st.restart_count >= spec.backoff_limit:
        message = f"{f.describe()}; backoffLimit ({spec.backoff_limit} restarts) reached"
        return _finish(p, meta, "Failed", reason="BackoffLimitExceeded", message=message, now=now)
    p.delete.append(name)
    st.attempt += 1
    st.restart_count += 1 if counted else 0
    st.restarts.append(
        api.Restart(
            attempt=st.attempt,
            cause=f.cause,
            worker=f.worker,
            exit_code=f.exit_code,
            message=f.message,
            time=ts(now),
            counted=counted,
            resumed_from_epoch=st.last_checkpoint.epoch if st.last_checkpoint else None,
        )
    )
    st.job_name = job_name(meta.name, st.attempt)
    p.launch = st.attempt
    budget = "" if counted else " (a disruption: not counted against backoffLimit)"
    _to(
        p,
        meta,
        "Restarting",
        reason=f.cause,
        message=f"{f.describe()}; restarting the gang as attempt {st.attempt}{budget}",
        now=now,
    )
    p.events = [e for e in p.events if e.reason != "Restarting"]
    p.events.append(Event("Warning", "Restarting", st.message or ""))
    return p


def _to(
    p: Plan, meta: Meta, state: str, *, reason: str, message: str, now: datetime, event: bool = True
) -> None:
    """Enter `state` (an Event when it changes), with its condition True and the others False."""
    st = p.status
    if st.state != state and event:
        kind = "Warning" if state == "Failed" else "Normal"
        p.events.append(Event(kind, state if state != "Initializing" else reason, message))
    st.state = state  # type: ignore[assignment]
    st.message = message
    # Every state's condition is present and says why, so a reader of a short job (one that
    # finished before its workers were all seen running) finds Running=False, reason Succeeded.
    for s in STATES:
        conditions.set_condition(
            st.conditions, s, s == state, reason=reason, message=message, now=now, generation=meta.generation
        )


def _finish(p: Plan, meta: Meta, state: str, *, reason: str, message: str, now: datetime) -> Plan:
    p.status.completion_time = ts(now)
    _to(p, meta, state, reason=reason, message=message, now=now)
    return p


def _requeue(p: Plan, spec: api.TrainingJobSpec) -> Plan:
    """Look again just after the deadline, if there is one."""
    if spec.active_deadline_seconds and p.status.start_time:
        p.requeue_at = parse_ts(p.status.start_time) + timedelta(seconds=spec.active_deadline_seconds + 1)
    return p


def _timers(p: Plan, spec: api.TrainingJobSpec, now: datetime) -> Plan:
    t = lifecycle.timers(
        finished=True,
        start_time=p.status.start_time,
        completion_time=p.status.completion_time,
        active_deadline_seconds=None,
        ttl_seconds_after_finished=spec.ttl_seconds_after_finished,
        now=now,
    )
    p.delete_self, p.requeue_at = t.delete_now, t.requeue_at
    return p
