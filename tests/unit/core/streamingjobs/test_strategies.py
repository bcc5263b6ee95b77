"""Which strategy is active: load rules, then schedule windows on their own clock, then the default."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from dataworks.core.streamingjobs.strategies import PRESETS, LoadRule, Window, active, policy

MARKET = Window("latency", time(9, 30), time(16, 0), "America/New_York", frozenset(range(5)))
NIGHT = Window("cost", time(22, 0), time(6, 0), "America/New_York")
SPIKE = LoadRule("throughput", above_rate=50_000)


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)  # December 2026: New York is UTC-5


@pytest.mark.parametrize(
    ("now", "rate", "name", "reason"),
    [
        pytest.param(utc(1, 14, 29), 100, "throughput", "Default", id="a-minute-before-the-open"),
        pytest.param(utc(1, 14, 30), 100, "latency", "Schedule", id="at-the-open"),  # 09:30 in New York
        pytest.param(utc(1, 20, 59), 100, "latency", "Schedule", id="a-minute-before-the-close"),
        pytest.param(utc(1, 21, 0), 100, "throughput", "Default", id="at-the-close"),
        pytest.param(utc(5, 15, 0), 100, "throughput", "Default", id="saturday-market-hours"),
        pytest.param(utc(2, 3, 0), 100, "cost", "Schedule", id="night-after-midnight"),  # 22:00 local
        pytest.param(utc(2, 10, 59), 100, "cost", "Schedule", id="night-until-six"),  # 05:59 local
        pytest.param(utc(2, 11, 0), 100, "throughput", "Default", id="six-in-the-morning"),
        pytest.param(utc(1, 15, 0), 60_000, "throughput", "LoadRule", id="a-load-rule-beats-the-clock"),
    ],
)
def test_active(now: datetime, rate: float, name: str, reason: str) -> None:
    a = active("throughput", [MARKET, NIGHT], [SPIKE], now, rate)
    assert (a.strategy.name, a.reason) == (name, reason), a.message


def test_the_reason_names_the_window() -> None:
    assert active("throughput", [MARKET], [], utc(1, 15), 0).message == (
        "schedule window 09:30-16:00 America/New_York"
    )


def test_cost_may_scale_to_zero_and_the_others_keep_one() -> None:
    assert policy(PRESETS["cost"], min_replicas=2, max_replicas=9, queue_delay_seconds=5).min_replicas == 0
    latency = policy(PRESETS["latency"], min_replicas=0, max_replicas=9, queue_delay_seconds=1)
    assert (latency.min_replicas, latency.catch_up_seconds, latency.target_utilization) == (1, 5, 0.6)
