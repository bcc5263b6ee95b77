"""The ScheduledPipeline planner (pure layer): its runs and `now` in, one Plan out.

Each reconcile:
- finds the latest due time since the last one (core.scheduledpipelines.schedules;
  after an outage only the latest missed run starts, at most once);
- skips it when it is older than `startingDeadlineSeconds` (Event MissedSchedule);
- applies the concurrency policy against the unfinished runs: Allow starts it
  beside them, Forbid skips it (Event ScheduleSkipped), Replace cancels them
  (they are deleted) and starts it;
- starts it under a name derived from the due time (`<name>-<minutes since
  1970>`), so a reconcile repeated after an operator restart adopts the run
  instead of starting a second one;
- keeps `successfulHistoryLimit` completed and `failedHistoryLimit` failed or
  cancelled runs, deleting older ones;
- writes the last and next due times and the unfinished runs to status, and
  asks to be woken at the next due time.

Time is only the `now` passed in, so tests never wait for a minute boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dataworks.api import scheduledpipeline as api
from dataworks.core.kit.clock import parse_ts, ts
from dataworks.core.kit.conditions import set_condition
from dataworks.core.kit.plan import Event, Meta
from dataworks.core.scheduledpipelines import schedules

FINISHED = frozenset({"Completed", "Failed", "Cancelled"})


@dataclass(frozen=True)
class Run:
    """One Pipeline the schedule created, as observed."""

    name: str
    phase: str | None
    scheduled_at: datetime | None
    completion_time: str | None = None
    deleting: bool = False

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED


@dataclass
class Plan:
    status: api.ScheduledPipelineStatus
    create: list[tuple[str, datetime]] = field(default_factory=list)  # (run name, due time)
    delete: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue_at: datetime | None = None


def run_name(schedule: str, due: datetime) -> str:
    """The run of `schedule` due at `due`: one name per due time."""
    return f"{schedule}-{int(due.timestamp()) // 60}"


def plan(
    meta: Meta,
    created: datetime,
    spec: api.ScheduledPipelineSpec,
    old: api.ScheduledPipelineStatus | None,
    runs: list[Run],
    *,
    now: datetime,
) -> Plan:
    st = old.model_copy(deep=True) if old is not None else api.ScheduledPipelineStatus()
    st.observed_generation = meta.generation
    p = Plan(status=st)
    bad = schedules.problems(spec.schedule, spec.time_zone)
    if bad:
        message = "; ".join(f"{where}: {why}" for where, why in bad)
        if st.message != message:
            p.events.append(Event("Warning", "InvalidSpec", message))
        st.message = message
        _valid(st, meta, now, reason="InvalidSpec", message=message)
        return p
    _valid(st, meta, now, reason="Valid", message="")
    live = [r for r in runs if not r.deleting]
    active = sorted((r for r in live if not r.finished), key=_when)
    last = parse_ts(st.last_schedule_time) if st.last_schedule_time else created
    if not spec.suspend:
        _start_due(p, meta, spec, last=last, active=active, names={r.name for r in runs}, now=now)
    replaced = set(p.delete)
    st.active = [r.name for r in active if r.name not in replaced] + [name for name, _ in p.create]
    _history(p, spec, live)
    done = [r.completion_time for r in live if r.phase == "Completed" and r.completion_time]
    if done:
        st.last_successful_time = max(
            [*done, *([st.last_successful_time] if st.last_successful_time else [])]
        )
    base = max(now, parse_ts(st.last_schedule_time) if st.last_schedule_time else now)
    upcoming = schedules.next_time(spec.schedule, base, spec.time_zone)
    st.next_schedule_time = None if spec.suspend else ts(upcoming)
    st.message = "suspended by spec.suspend" if spec.suspend else None
    p.requeue_at = None if spec.suspend else upcoming
    return p


def _start_due(
    p: Plan,
    meta: Meta,
    spec: api.ScheduledPipelineSpec,
    *,
    last: datetime,
    active: list[Run],
    names: set[str],
    now: datetime,
) -> None:
    due = schedules.due(spec.schedule, last, now, spec.time_zone)
    if due.time is None:
        return
    p.status.last_schedule_time = ts(due.time)
    at = ts(due.time)
    name = run_name(meta.name, due.time)
    missed = f"; {due.missed} earlier due times were missed and will not run" if due.missed else ""
    deadline = spec.starting_deadline_seconds
    if deadline is not None and now - due.time > timedelta(seconds=deadline):
        why = f"the run due at {at} did not start within startingDeadlineSeconds ({deadline}){missed}"
        p.events.append(Event("Warning", "MissedSchedule", why))
        return
    if name in names:
        return  # started already (by a reconcile before an operator restart): adopted
    if active and spec.concurrency_policy == "Forbid":
        running = ", ".join(r.name for r in active)
        why = f"the run due at {at} is skipped: {running} has not finished (concurrencyPolicy: Forbid)"
        p.events.append(Event("Normal", "ScheduleSkipped", why + missed))
        return
    if active and spec.concurrency_policy == "Replace":
        p.delete += [r.name for r in active]
        running = ", ".join(r.name for r in active)
        p.events.append(Event("Normal", "RunReplaced", f"{running} cancelled for the run due at {at}"))
    p.create.append((name, due.time))
    p.events.append(Event("Normal", "RunCreated", f"pipeline {name} created for the run due at {at}{missed}"))


def _history(p: Plan, spec: api.ScheduledPipelineSpec, live: list[Run]) -> None:
    """Delete the finished runs beyond the history limits, oldest first."""
    for phases, limit in (
        ({"Completed"}, spec.successful_history_limit),
        ({"Failed", "Cancelled"}, spec.failed_history_limit),
    ):
        ended = sorted((r for r in live if r.phase in phases), key=_when, reverse=True)
        p.delete += [r.name for r in ended[limit:] if r.name not in p.delete]


def _when(r: Run) -> tuple[str, str]:
    return (ts(r.scheduled_at) if r.scheduled_at else "", r.name)


def _valid(st: api.ScheduledPipelineStatus, meta: Meta, now: datetime, *, reason: str, message: str) -> None:
    ok = reason == "Valid"
    set_condition(
        st.conditions, "Valid", ok, reason=reason, message=message, now=now, generation=meta.generation
    )
