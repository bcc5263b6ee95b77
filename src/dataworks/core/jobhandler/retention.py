"""Which archives expire (pure layer): those older than the retention time, then the oldest
beyond the cap of each namespace, so a busy namespace never fills etcd with archives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Kept:
    namespace: str
    name: str
    created: datetime


def expired(archives: list[Kept], now: datetime, max_age: timedelta, cap: int) -> list[Kept]:
    """The archives to delete, oldest first."""
    out: list[Kept] = []
    by_ns: dict[str, list[Kept]] = {}
    for a in sorted(archives, key=lambda a: (a.created, a.name)):
        if now - a.created > max_age:
            out.append(a)
        else:
            by_ns.setdefault(a.namespace, []).append(a)
    for kept in by_ns.values():
        out.extend(kept[: max(0, len(kept) - cap)])
    return sorted(out, key=lambda a: (a.created, a.name))
