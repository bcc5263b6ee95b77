"""The CLI's view of the kind registry (edge layer): names users type, and each kind's verbs.

`resolve` accepts what kubectl accepts for a kind (Kind, singular, plural,
short name, any case) and names the known kinds when it cannot. `split_ref`
reads `KIND/NAME`. `ACTIONS` declares the action verbs of each kind as spec
patches; the parser and shell completion are generated from it. `RETRIES`
says which kinds `retry` knows (a `spec.retry: {id, step}` patch, applied once
per id) and which of an object's steps a request would re-run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dataworks.api import kinds, sequentialjob, trainingjob
from dataworks.api import pipeline as api
from dataworks.api.meta import KindInfo


@dataclass(frozen=True)
class Action:
    """A verb that patches the spec of one kind's object."""

    verb: str
    patch: dict[str, Any]
    done: str  # past tense, for "pipeline.dataworks.io/NAME cancelled"
    help: str


ACTIONS: dict[str, tuple[Action, ...]] = {
    api.KIND: (
        Action("cancel", {"shutdown": "Terminate"}, "cancelled", "cancel a pipeline (terminal)"),
        Action(
            "suspend", {"suspend": True}, "suspended", "pause: no new steps start, running Jobs are suspended"
        ),
        Action("resume", {"suspend": False}, "resumed", "resume a suspended pipeline"),
    ),
    sequentialjob.KIND: (
        Action(
            "suspend", {"suspend": True}, "suspended", "pause: no step starts, the running Job is suspended"
        ),
        Action("resume", {"suspend": False}, "resumed", "resume a suspended sequential job"),
    ),
    trainingjob.KIND: (
        Action(
            "suspend", {"suspend": True}, "suspended", "pause: workers get SIGTERM to checkpoint, then stop"
        ),
        Action("resume", {"suspend": False}, "resumed", "resume from the latest checkpoint"),
    ),
}


class CannotRetry(ValueError):
    """The object has nothing a retry request would re-run; the message says why."""


def _pipeline_rerun(status: dict[str, Any], step: str | None) -> list[str]:
    if step:
        phase = next((s.get("phase") for s in status.get("stepStatuses") or [] if s["name"] == step), None)
        if phase == "Running":  # the operator would refuse it too (core/pipelines/retry.py)
            raise CannotRetry(f"step {step} is running; retry it once it has ended, or cancel first")
        return [step]
    redo = {"Failed", "Skipped", "Cancelled"}
    rerun = [s["name"] for s in status.get("stepStatuses") or [] if s.get("phase") in redo]
    if not rerun:
        raise CannotRetry("has no failed, skipped or cancelled step to retry")
    return rerun


def _sequence_rerun(status: dict[str, Any], step: str | None) -> list[str]:
    """From the named step, or the first that did not complete, to the end; only once finished."""
    if status.get("phase") not in sequentialjob.TERMINAL_PHASES:
        raise CannotRetry("has not finished; a re-run can be requested once it has")
    steps = status.get("steps") or []
    names = [s["name"] for s in steps]
    if step:
        return names[names.index(step) :]
    start = next((i for i, s in enumerate(steps) if s.get("phase") != "Completed"), None)
    if start is None:
        raise CannotRetry("completed every step; name one with --step to re-run from it")
    return names[start:]


@dataclass(frozen=True)
class Retry:
    """How `retry` reads a kind's objects: where their steps are, and what a request re-runs."""

    steps_field: str  # the status list of the object's steps
    rerun: Callable[[dict[str, Any], str | None], list[str]]  # (status, --step) -> steps to re-run


RETRIES: dict[str, Retry] = {
    api.KIND: Retry("stepStatuses", _pipeline_rerun),
    sequentialjob.KIND: Retry("steps", _sequence_rerun),
}


def verbs() -> list[str]:
    """Every action verb of any kind, in declaration order."""
    seen: dict[str, None] = {}
    for actions in ACTIONS.values():
        for a in actions:
            seen.setdefault(a.verb, None)
    return list(seen)


def help_of(verb: str) -> str:
    """The help line of a verb: its first declaration's, naming the kinds that have it."""
    having = [kind for kind, actions in ACTIONS.items() if any(a.verb == verb for a in actions)]
    first = next(a for a in ACTIONS[having[0]] if a.verb == verb)
    return f"{first.help} ({', '.join(having)})"


def action(kind: str, verb: str) -> Action | None:
    return next((a for a in ACTIONS.get(kind, ()) if a.verb == verb), None)


class UnknownKind(ValueError):
    pass


def resolve(name: str, registry: kinds.Registry | None = None) -> KindInfo:
    """The kind a user means; UnknownKind lists what exists."""
    reg = registry or kinds.default()
    info = reg.lookup(name)
    if info is None:
        known = ", ".join(
            f"{k.plural} ({', '.join(k.short_names)})" if k.short_names else k.plural for k in reg
        )
        raise UnknownKind(f'the server has no dataworks resource type "{name}"; known types: {known}')
    return info


def split_ref(ref: str, registry: kinds.Registry | None = None) -> tuple[KindInfo, str]:
    """`KIND/NAME` as (kind, name); a bare NAME means a Pipeline (pipeline-ctl's habit)."""
    if "/" in ref:
        kind, _, name = ref.partition("/")
        return resolve(kind, registry), name
    return api.INFO, ref
