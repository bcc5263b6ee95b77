"""When a ScheduledPipeline's runs are due (pure layer, ScheduledPipeline policy).

Cron expressions have CronJob's five fields and are read in the schedule's
time zone (croniter), so `0 2 * * *` in Europe/Berlin is 02:00 Berlin time all
year. Across daylight-saving changes: a time that does not exist that day (02:30
when clocks jump from 02:00 to 03:00) is due at the first moment after it
(03:00), and a time that happens twice (01:30 when clocks fall back) is due
once. Several expressions are one schedule: a run is due at each time any of
them names, once.

`due(schedules, since, now)` gives the latest due time after `since` and not
after `now`, and how many were missed before it: after an operator outage only
the latest missed run is started, at most once, as CronJob does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter

MAX_MISSED = 1000  # due times counted after an outage; beyond this, "more than 1000"


@dataclass(frozen=True)
class Due:
    time: datetime | None  # the latest due time in (since, now]; None: none
    missed: int = 0  # earlier due times in (since, now] that will not run


def problems(schedules: list[str], tz: str) -> list[tuple[str, str]]:
    """(field, message) for each expression that is not a five-field cron expression."""
    out = []
    for i, expr in enumerate(schedules):
        if len(expr.split()) != 5 or not croniter.is_valid(expr):
            out.append(
                (f"spec.schedule[{i}]", f"{expr!r} is not a cron expression of five fields, e.g. '0 2 * * *'")
            )
    try:
        ZoneInfo(tz)
    except (KeyError, ValueError):
        out.append(("spec.timeZone", f"unknown time zone {tz!r}"))
    return out


def _next(expr: str, after: datetime, tz: str) -> datetime:
    it = croniter(expr, after.astimezone(ZoneInfo(tz)))
    found: datetime = it.get_next(datetime)
    while found.fold:  # the second of a wall-clock time that happens twice: due once, the first
        found = it.get_next(datetime)
    return found.astimezone(UTC)


def next_time(schedules: list[str], after: datetime, tz: str) -> datetime:
    """The first due time strictly after `after`."""
    return min(_next(e, after, tz) for e in schedules)


def due(schedules: list[str], since: datetime, now: datetime, tz: str) -> Due:
    """The latest due time in (since, now], and how many earlier ones in it were missed."""
    found: list[datetime] = []
    at = since
    while len(found) <= MAX_MISSED:
        at = next_time(schedules, at, tz)
        if at > now:
            break
        found.append(at)
    if not found:
        return Due(None)
    return Due(found[-1], len(found) - 1)
