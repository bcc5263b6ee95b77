"""The vocabulary every controller's plan shares (pure layer): the object, its Events, the Actions.

A kind's planner decides in its own terms (a Pipeline's Plan launches steps);
its controller turns that into `Actions`, the one shape the operator
runtime and the local kubelet apply for every kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Meta:
    """The object a plan is for."""

    name: str
    namespace: str
    generation: int = 1
    uid: str = ""


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post once the plan's status is written."""

    type: str  # Normal or Warning
    reason: str  # CamelCase
    message: str
    step: str | None = None  # the part it is about, if any (for logs)
    # One of its reason per object uid, ever: named by the uid and reason only, and posted
    # before the rest of the transition it marks, so a restart cannot post a second one.
    once: bool = False


@dataclass
class Actions:
    """What a controller asks the runtime to do, for any kind: the shape every plan ends in.

    The runtime applies them in this order: create children (adopting one that
    already exists with our owner uid), post the once-Events, delete children, patch children, write
    the status once (only if it changed), then post the Events; then delete the
    object itself or wake again at `requeue_at`.
    """

    create: list[dict[str, Any]] = field(default_factory=list)  # child manifests, in order
    delete: list[tuple[str, str]] = field(default_factory=list)  # (child kind, name)
    patch: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (kind, name, merge patch)
    status: dict[str, Any] | None = None  # the whole new status, as stored (camelCase)
    events: list[Event] = field(default_factory=list)
    requeue_at: datetime | None = None
    delete_self: bool = False
