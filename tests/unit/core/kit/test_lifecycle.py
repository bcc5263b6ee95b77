"""Pins the time-driven lifecycle any kind shares (core/kit/lifecycle.py): a deadline is passed
only strictly after `limit` seconds of running, and a finished object ran until it finished (a
deadline passing later does not change its outcome); a running object is woken 1 s after its
deadline, a finished one at its TTL expiry and deleted from then on (TTL 0: at once)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dataworks.core.kit import lifecycle
from dataworks.core.kit.lifecycle import Timers
from tests.builders.pipelines import T0, stamp


def after(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("start", "limit", "now", "done", "expected"),
    [
        pytest.param(stamp(0), 60, after(59), None, False, id="before"),
        pytest.param(stamp(0), 60, after(60), None, False, id="at-limit-not-yet"),
        pytest.param(stamp(0), 60, after(61), None, True, id="after"),
        pytest.param(stamp(0), 60, after(60.5), None, True, id="half-second-after"),
        pytest.param(None, 60, after(3600), None, False, id="never-started"),
        pytest.param(stamp(0), None, after(3600), None, False, id="no-deadline"),
        pytest.param(stamp(0), 60, after(3600), stamp(30), False, id="finished-in-time-stays-so"),
        pytest.param(stamp(0), 60, after(3600), stamp(61), True, id="finished-late-stays-late"),
        pytest.param(stamp(0), 60, after(50), stamp(90), False, id="measured-to-now-at-most"),
    ],
)
def test_deadline_passed(
    start: str | None, limit: int | None, now: datetime, done: str | None, expected: bool
) -> None:
    assert lifecycle.deadline_passed(start, limit, now, done) is expected


def running(
    now: float, *, started: float | None = 0, deadline: int | None = None, ttl: int | None = None
) -> Timers:
    """timers() of an object still running at `now` (seconds after T0)."""
    return lifecycle.timers(
        finished=False,
        start_time=None if started is None else stamp(started),
        completion_time=None,
        active_deadline_seconds=deadline,
        ttl_seconds_after_finished=ttl,
        now=after(now),
    )


def finished(
    now: float, *, done: float | None = 100, deadline: int | None = None, ttl: int | None = None
) -> Timers:
    """timers() of an object started at T0 and finished `done` seconds later."""
    return lifecycle.timers(
        finished=True,
        start_time=stamp(0),
        completion_time=None if done is None else stamp(done),
        active_deadline_seconds=deadline,
        ttl_seconds_after_finished=ttl,
        now=after(now),
    )


@pytest.mark.parametrize(
    ("got", "expected"),
    [
        pytest.param(running(5, deadline=60), Timers(requeue_at=after(61)), id="deadline+1s"),
        pytest.param(running(59, deadline=60), Timers(requeue_at=after(61)), id="deadline-1s-left"),
        pytest.param(running(5, deadline=60, ttl=30), Timers(requeue_at=after(61)), id="ttl-waits-for-end"),
        pytest.param(running(5, started=None, deadline=60), Timers(), id="not-started"),
        pytest.param(running(5, ttl=30), Timers(), id="running-no-deadline"),
        pytest.param(finished(100, ttl=30), Timers(requeue_at=after(130)), id="ttl-early"),
        pytest.param(finished(129, ttl=30), Timers(requeue_at=after(130)), id="ttl-1s-left"),
        pytest.param(finished(130, ttl=30), Timers(delete_now=True), id="ttl-at-expiry"),
        pytest.param(finished(999, ttl=30), Timers(delete_now=True), id="ttl-long-past"),
        pytest.param(finished(100, ttl=0), Timers(delete_now=True), id="ttl-0-at-once"),
        pytest.param(finished(200, deadline=60), Timers(), id="finished-no-ttl-no-deadline-wake"),
        pytest.param(finished(200, done=None, ttl=30), Timers(), id="finished-no-completion"),
    ],
)
def test_timers(got: Timers, expected: Timers) -> None:
    assert got == expected
