"""The CLI's view of the kind registry (edge layer): names users type, and each kind's verbs.

`resolve` accepts what kubectl accepts for a kind (Kind, singular, plural,
short name, any case) and names the known kinds when it cannot. `split_ref`
reads `KIND/NAME`. `ACTIONS` declares the action verbs of each kind as spec
patches; the parser and shell completion are generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataworks.api import kinds
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
