"""What a controller declares to a runtime (no I/O of its own: reads go through a `Reader`).

A controller names the kind it reconciles, the child kinds it owns (routed
back to it by their owner's label and ownerReference), optionally a label
selector, and a `plan` from what was observed to `Actions`. Everything else
(watching, caching, queueing, timers, create-or-adopt, the status write,
Events, metrics, readiness, resync) is the runtime's, the same for every kind:
the operator's (operator/runtime) or this machine's (local/).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from dataworks.api.meta import KindInfo
from dataworks.core.kit.plan import Actions, Meta

log = logging.getLogger("dataworks.operator")

# Child kind -> the bodies of that kind the object owns.
Children = Mapping[str, list[dict[str, Any]]]


class Reader(Protocol):
    """Reads a controller may make while observing (e.g. the pods of a failed Job)."""

    async def list(self, kind: str, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]: ...


class Controller:
    """One kind's controller: observe (optional extra reads), plan (pure), and hooks."""

    info: KindInfo
    owns: tuple[str, ...] = ()
    selector: Mapping[str, str] | None = None  # only objects with these labels (None: all)
    # Watched kinds that a child owns rather than the object (the pods of its Deployment):
    # routed by the owner label alone, whatever their controller ownerReference says.
    grandchildren: tuple[str, ...] = ()

    @property
    def watches(self) -> tuple[str, ...]:
        """The owned kinds whose changes wake the owner (default: all of them)."""
        return self.owns

    async def observe(self, obj: dict[str, Any], children: Children, reader: Reader) -> Any:
        """Facts beyond the object and its children that the plan needs; none by default."""
        return None

    def plan(self, obj: dict[str, Any], children: Children, observed: Any, now: datetime) -> Actions:
        """Everything one reconcile does, decided before anything is done (each kind's own)."""
        raise NotImplementedError

    def plan_deleted(self, obj: dict[str, Any], children: Children, now: datetime) -> Actions | None:
        """Someone else deleted the object: children to create and Events to post one last
        time (none by default; the garbage collector removes what it owned)."""
        return None

    def child_fingerprint(self, kind: str, body: dict[str, Any]) -> Hashable:
        """What of a child matters to `plan`: an event that leaves it unchanged triggers nothing."""
        meta = body.get("metadata") or {}
        return json.dumps(
            [body.get("spec"), body.get("status"), meta.get("deletionTimestamp"), meta.get("labels")],
            sort_keys=True,
            default=str,
        )

    def status_written(
        self, key: tuple[str, str], old: dict[str, Any] | None, new: dict[str, Any], now: datetime
    ) -> None:
        """Called after the runtime wrote a new status (metrics, notifications)."""

    def related(self, body: dict[str, Any]) -> list[tuple[str, str]]:
        """Other objects of this kind that a change to `body` should wake (a pipeline waiting
        for this one); none by default."""
        return []

    def forget(self, key: tuple[str, str]) -> None:
        """The object is gone: drop what the controller keeps about it."""

    def active(self, obj: dict[str, Any]) -> bool:
        """Not yet finished: counted as active, and reconciled on resync."""
        return not self.info.is_terminal((obj.get("status") or {}).get("phase"))


def overlapping(a: Mapping[str, str] | None, b: Mapping[str, str] | None) -> bool:
    """Whether some object could match both label selectors (equality selectors)."""
    if a is None or b is None:
        return True
    return all(a[k] == b[k] for k in a.keys() & b.keys())


def check(controllers: Sequence[Controller]) -> None:
    """Refuse a set of controllers that would fight: two on the same kind whose selectors overlap.
    Raises ValueError naming both."""
    for i, a in enumerate(controllers):
        for b in controllers[i + 1 :]:
            if a.info.kind == b.info.kind and overlapping(a.selector, b.selector):
                raise ValueError(
                    f"controllers {type(a).__name__} and {type(b).__name__} both reconcile "
                    f"{a.info.kind} with overlapping selectors {dict(a.selector or {})} and "
                    f"{dict(b.selector or {})}; give them disjoint selectors or enable one"
                )


StatusT = TypeVar("StatusT", bound=BaseModel)


def read_status(model: type[StatusT], raw: dict[str, Any] | None) -> StatusT | None:
    """The stored status as `model`, or None when there is none or it cannot be read
    (a status another version wrote badly is rebuilt, never fatal)."""
    if not raw:
        return None
    try:
        return model.model_validate(raw)
    except ValidationError:
        log.warning("ignoring an unreadable %s", model.__name__)
        return None


def meta_of(obj: dict[str, Any]) -> Meta:
    """The Meta a planner takes, from an object's metadata."""
    meta = obj.get("metadata") or {}
    return Meta(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        generation=int(meta.get("generation") or 1),
        uid=meta.get("uid", ""),
    )
