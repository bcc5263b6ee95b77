"""Kubernetes conditions of any kind's status (pure layer).

A condition's `lastTransitionTime` moves only when its status flips; its
reason, message and observedGeneration follow every write.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from dataworks.api.meta import Condition
from dataworks.core.kit.clock import ts


def set_condition(
    conditions: list[Condition],
    type_: str,
    value: bool,
    *,
    reason: str,
    message: str,
    now: datetime,
    generation: int,
) -> None:
    """Set condition `type_` in place, adding it if absent."""
    new: Literal["True", "False"] = "True" if value else "False"
    for c in conditions:
        if c.type == type_:
            if c.status != new:
                c.last_transition_time = ts(now)
            c.status, c.reason, c.message, c.observed_generation = new, reason, message, generation
            return
    conditions.append(
        Condition(
            type=type_,
            status=new,
            reason=reason,
            message=message,
            last_transition_time=ts(now),
            observed_generation=generation,
        )
    )


def is_true(conditions: list[Condition], type_: str) -> bool:
    return any(c.type == type_ and c.status == "True" for c in conditions)
