"""The vocabulary every controller's plan shares (pure layer): the object planned for, its Events.

A kind's planner returns its own Plan (children to create or delete, one
status, events); `Meta` and `Event` are what the runtime needs of any of them.
"""

from __future__ import annotations

from dataclasses import dataclass


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
