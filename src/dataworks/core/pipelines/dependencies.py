"""Whether a pipeline may start, by the pipelines it depends on (pure layer, Pipeline policy).

`spec.pipelineDependencies` names pipelines of the same namespace that must
have Completed, and, with `maxAgeHours` (the seed's `max_age_hours`), completed
at most that long before `now`. Until every one holds, the pipeline stays
Pending, and its `DependenciesReady` condition says which dependency and why:
it does not exist, its phase, or its age against the maximum. Pipelines that
depend on each other, directly or through others, are a cycle, reported on
each of them. The gate is looked at only before the pipeline starts; once it
runs, a dependency's later runs change nothing.

The operator reads the dependencies (and theirs, to find cycles) and wakes a
waiting pipeline when one of them changes; nothing polls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dataworks.api import pipeline as api
from dataworks.core.kit import dag, quantities
from dataworks.core.kit.clock import seconds_between, ts
from dataworks.core.kit.conditions import set_condition
from dataworks.core.kit.plan import Event
from dataworks.core.pipelines.work import Work

CONDITION = "DependenciesReady"


@dataclass(frozen=True)
class Upstream:
    """What was seen of one pipeline depended on."""

    name: str
    found: bool
    phase: str | None = None
    completion_time: str | None = None
    depends_on: tuple[str, ...] = ()  # its own pipelineDependencies, for cycles


@dataclass(frozen=True)
class Gate:
    ready: bool
    # DependenciesCompleted, DependencyMissing, DependencyNotCompleted, DependencyTooOld or
    # DependencyCycle
    reason: str
    message: str


def _cycle(name: str, wanted: list[str], seen: dict[str, Upstream]) -> list[str] | None:
    graph = {u.name: list(u.depends_on) for u in seen.values()}
    graph[name] = wanted
    cycle = dag.find_cycle(graph)
    return cycle if cycle and name in cycle else None


def gate(
    name: str, wanted: list[api.PipelineDependency], seen: dict[str, Upstream], now: datetime
) -> Gate | None:
    """Whether pipeline `name` may start (None: it depends on nothing)."""
    if not wanted:
        return None
    cycle = _cycle(name, [d.name for d in wanted], seen)
    if cycle:
        ring = cycle[:-1]  # a closed path: a -> b -> a
        at = ring.index(name)
        loop = [*ring[at:], *ring[:at], name]
        return Gate(
            False,
            "DependencyCycle",
            f"pipelines {' -> '.join(loop)} depend on each other; remove one of these pipelineDependencies",
        )
    problems: list[tuple[str, str]] = []
    done: list[str] = []
    for dep in wanted:
        u = seen.get(dep.name)
        if u is None or not u.found:
            problems.append(("DependencyMissing", f"pipeline {dep.name} does not exist"))
            continue
        if u.phase != "Completed" or not u.completion_time:
            problems.append(("DependencyNotCompleted", f"pipeline {dep.name} is {u.phase or 'Pending'}"))
            continue
        age = seconds_between(u.completion_time, ts(now))
        took = quantities.format_duration(max(0.0, age))
        limit = dep.max_age_hours
        if limit is not None and age > limit * 3600:
            problems.append(
                (
                    "DependencyTooOld",
                    f"pipeline {dep.name} completed {took} ago, more than maxAgeHours {limit:g}",
                )
            )
            continue
        done.append(f"{dep.name} ({took} ago)")
    if problems:
        return Gate(False, problems[0][0], "; ".join(m for _, m in problems))
    return Gate(True, "DependenciesCompleted", f"completed: {', '.join(done)}")


def not_started(w: Work) -> bool:
    """No step of the pipeline has started yet (the only time the gate is looked at)."""
    return w.status.start_time is None and all(s.phase == "Waiting" for s in w.status.step_statuses)


def record(w: Work, g: Gate, *, waiting: bool) -> None:
    """The DependenciesReady condition, the Pending message, and one Event per new reason."""
    before = next((c for c in w.old.conditions if c.type == CONDITION), None)
    set_condition(
        w.status.conditions, CONDITION, g.ready, reason=g.reason, message=g.message, now=w.now,
        generation=w.meta.generation,
    )  # fmt: skip
    if not waiting:
        return
    w.status.message = f"waiting for pipelineDependencies: {g.message}"
    if before is None or (before.reason, before.message) != (g.reason, g.message):
        kind = "Warning" if g.reason == "DependencyCycle" else "Normal"
        w.plan.events.append(Event(kind, "WaitingForDependencies", g.message))
