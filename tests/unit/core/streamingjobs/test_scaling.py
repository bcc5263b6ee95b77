"""The scaling planner: a table of single decisions, then replayed traces (step, burst,
diurnal day, sawtooth, idle) through a fluid queue (tests/builders/queues.py)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from dataworks.api.generator import GeneratorConfig
from dataworks.core.streamingjobs.scaling import Decision, Memory, Observation, Policy, decide
from dataworks.core.streams.rates import Schedule
from tests.builders.queues import planner_of, replay

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
POLICY = Policy(min_replicas=1, max_replicas=20, catch_up_seconds=30, target_utilization=0.8)


def seen(lag: int, arrival: float, replicas: int, rate: float | None = 1000) -> Observation:
    return Observation(lag, arrival, rate, replicas)


def ago(seconds: float, replicas: int) -> tuple[datetime, int]:
    """A run of recommendations: `replicas` since `seconds` ago, until the next run began."""
    return (NOW - timedelta(seconds=seconds), replicas)


@pytest.mark.parametrize(
    ("policy", "observation", "memory", "replicas", "reason"),
    [
        pytest.param(POLICY, seen(0, 800, 1), Memory(), 1, "Steady", id="steady"),
        # 60000 / 30 s + 8000 / 0.8 = 12000/s at 1000/s per consumer
        pytest.param(POLICY, seen(60_000, 8000, 2), Memory(), 12, "ScaleUp", id="backlog-and-arrivals"),
        pytest.param(POLICY, seen(0, 8000, 2), Memory(), 10, "ScaleUp", id="arrivals-alone-keep-capacity"),
        pytest.param(POLICY, seen(0, 50_000, 2), Memory(), 20, "ScaleUp", id="clamped-to-max"),
        pytest.param(
            POLICY, seen(0, 8000, 2, rate=None), Memory(), 10, "ScaleUp", id="unknown-rate-uses-the-default"
        ),
        pytest.param(POLICY, seen(0, 8500, 10), Memory(), 10, "Steady", id="dead-band-holds-11-of-10"),
        pytest.param(
            Policy(max_replicas=20, catch_up_seconds=600),
            seen(51_000, 8500, 10),  # 6 s of queue delay against a 5 s target
            Memory(),
            11,
            "ScaleUp",
            id="dead-band-yields-to-a-missed-slo",
        ),
        pytest.param(
            POLICY, seen(0, 800, 6), Memory((ago(30, 6),)), 6, "Stabilizing", id="down-waits-for-the-window"
        ),
        pytest.param(
            POLICY,
            seen(0, 800, 6),
            Memory((ago(70, 6), ago(60, 1))),
            1,
            "ScaleDown",
            id="down-after-the-window",
        ),
        pytest.param(
            Policy(scale_up_window_seconds=10),
            seen(0, 8000, 2),
            Memory((ago(5, 2),)),
            2,
            "Stabilizing",
            id="an-up-window-waits-too",
        ),
        pytest.param(
            Policy(min_replicas=0, idle_seconds=60),
            seen(0, 0, 1),
            Memory((ago(200, 1), ago(65, 0)), last_active=NOW - timedelta(seconds=130)),
            0,
            "ScaleToZero",
            id="idle-to-zero",
        ),
        pytest.param(
            Policy(min_replicas=0, idle_seconds=60),
            seen(0, 0, 1),
            Memory((ago(30, 1),), last_active=NOW - timedelta(seconds=30)),
            1,
            "Steady",
            id="not-yet-idle-keeps-one",
        ),
        pytest.param(
            Policy(min_replicas=0), seen(1, 0, 0), Memory(), 1, "WakeUp", id="the-first-message-wakes-it"
        ),
        pytest.param(
            Policy(min_replicas=1), seen(0, 0, 1), Memory(), 1, "Steady", id="min-one-never-goes-to-zero"
        ),
    ],
)
def test_decide(policy: Policy, observation: Observation, memory: Memory, replicas: int, reason: str) -> None:
    d = decide(policy, observation, memory, NOW)
    assert (d.replicas, d.reason) == (replicas, reason), d.message


def test_the_message_says_how_the_count_was_reached() -> None:
    d: Decision = decide(POLICY, seen(60_000, 8000, 2), Memory(), NOW)
    assert d.message == "lag 60000 / 30 s + arrivals 8000/s / 0.8 at 1000/s per consumer needs 12"


def test_a_tenfold_step_is_answered_within_5_s_and_the_delay_recovers_within_the_catch_up_time() -> None:
    policy = Policy(
        max_replicas=20, catch_up_seconds=30, queue_delay_seconds=2, scale_down_window_seconds=120
    )
    trace = replay(lambda t: 1000 if t < 100 else 10_000, 400, planner_of(policy), consumer_rate=2000)
    assert trace.desired[99] == 1
    needed = math.ceil(10_000 / 0.8 / 2000)  # 7: the arrivals alone, at 80 % utilization
    assert min(t for t in range(100, 400) if trace.desired[t] >= needed) <= 105
    late = [t for t in range(100, 400) if trace.delay(t) > policy.queue_delay_seconds]
    assert max(late, default=100) <= 100 + policy.catch_up_seconds + 2  # + the start-up
    assert trace.desired[-1] == needed  # it keeps the capacity the arrivals need
    assert not trace.reversals()


def test_a_burst_scales_up_drains_and_comes_back_down_once() -> None:
    policy = Policy(max_replicas=20, scale_down_window_seconds=60)
    trace = replay(lambda t: 5000 if 200 <= t < 220 else 1000, 600, planner_of(policy), consumer_rate=2000)
    assert max(trace.desired) >= 4
    assert trace.desired[-1] == 1
    assert max(trace.lag[400:]) == 0
    assert not trace.reversals()


def test_a_diurnal_day_replayed_is_stable() -> None:
    config = GeneratorConfig.model_validate(
        {
            "durationSeconds": 86_400,
            "rate": 2000,
            "start": "2026-12-01T00:00:00-05:00",
            "patterns": {"diurnal": {"peakMultiplier": 8}, "trend": {"amplitude": 0.1, "periodHours": 24}},
        }
    )
    schedule = Schedule(config)
    noise = random.Random(7)
    policy = Policy(max_replicas=30, scale_down_window_seconds=300)
    trace = replay(
        lambda t: schedule.rate(t) * noise.uniform(0.9, 1.1), 86_400, planner_of(policy), consumer_rate=2000
    )
    assert max(trace.desired) >= 8
    assert min(trace.desired[3600:7200]) <= 3
    reversals = trace.reversals()
    per_half_hour = [sum(1 for t in reversals if k * 1800 <= t < (k + 1) * 1800) for k in range(48)]
    assert max(per_half_hour) <= 1, per_half_hour
    slow = sum(1 for t in range(86_400) if trace.delay(t) > policy.queue_delay_seconds)
    assert slow / 86_400 < 0.01


def test_a_sawtooth_does_not_make_it_oscillate() -> None:
    def saw(t: int) -> float:
        return 1000 + 7000 * ((t % 300) / 300)  # a 5-minute ramp from 1000/s to 8000/s, then a drop

    policy = Policy(max_replicas=20, scale_down_window_seconds=300)
    trace = replay(saw, 3 * 3600, planner_of(policy), consumer_rate=2000)
    reversals = trace.reversals()
    per_half_hour = [sum(1 for t in reversals if k * 1800 <= t < (k + 1) * 1800) for k in range(6)]
    assert max(per_half_hour) <= 1, per_half_hour


def test_idle_goes_to_zero_and_the_first_message_wakes_it_at_once() -> None:
    policy = Policy(min_replicas=0, idle_seconds=60, scale_down_window_seconds=30)
    trace = replay(lambda t: 500 if t < 10 or t == 300 else 0, 400, planner_of(policy), consumer_rate=2000)
    zero_at = next(t for t in range(400) if trace.desired[t] == 0)
    assert 60 <= zero_at <= 10 + 60 + 30 + 1
    assert trace.desired[299] == 0
    assert trace.desired[300] == 1
    assert "ScaleToZero" in trace.reasons
    assert "WakeUp" in trace.reasons
