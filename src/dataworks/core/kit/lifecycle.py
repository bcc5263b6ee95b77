"""Time-driven lifecycle decisions any kind shares (pure layer): deadlines and TTL after finishing.

Each answers from timestamps in a status and `now`, so the runtime knows
when to look again without an event (`requeue_at`) and whether the object's
time is up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dataworks.core.kit.clock import parse_ts


@dataclass(frozen=True)
class Timers:
    """What the clock asks of the runtime: delete the object now, or look again at a time."""

    delete_now: bool = False
    requeue_at: datetime | None = None


def deadline_passed(
    start_time: str | None, limit_seconds: int | None, now: datetime, completion_time: str | None = None
) -> bool:
    """Whether an object started at `start_time` has run longer than `limit_seconds`.

    A finished object (`completion_time`) ran until it finished: a deadline that
    passes afterwards does not change its outcome.
    """
    if not (limit_seconds and start_time):
        return False
    end = min(now, parse_ts(completion_time)) if completion_time else now
    return (end - parse_ts(start_time)).total_seconds() > limit_seconds


def timers(
    *,
    finished: bool,
    start_time: str | None,
    completion_time: str | None,
    active_deadline_seconds: int | None,
    ttl_seconds_after_finished: int | None,
    now: datetime,
) -> Timers:
    """A finished object is deleted once its TTL has passed (woken at expiry until then);
    a running one is woken just after its deadline."""
    if finished:
        if ttl_seconds_after_finished is None or not completion_time:
            return Timers()
        expiry = parse_ts(completion_time) + timedelta(seconds=ttl_seconds_after_finished)
        return Timers(delete_now=True) if now >= expiry else Timers(requeue_at=expiry)
    if active_deadline_seconds and start_time:
        return Timers(requeue_at=parse_ts(start_time) + timedelta(seconds=active_deadline_seconds + 1))
    return Timers()
