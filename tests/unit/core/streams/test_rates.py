"""The generator's rate shape, second by second: base, steps, diurnal, trend, bursts, outages."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dataworks.api.generator import GeneratorConfig
from dataworks.core.streams.rates import Schedule

NIGHT_START = "2026-12-01T03:00:00-05:00"  # 03:00 in New York


def schedule(**kw: Any) -> Schedule:
    return Schedule(GeneratorConfig.model_validate({"count": 1, "rate": 1000, **kw}))


@pytest.mark.parametrize(
    ("config", "second", "rate"),
    [
        pytest.param({}, 0, 1000, id="base"),
        pytest.param({"patterns": {"steps": [{"at": 10, "rate": 5000}]}}, 9, 1000, id="before-a-step"),
        pytest.param({"patterns": {"steps": [{"at": 10, "rate": 5000}]}}, 10, 5000, id="at-a-step"),
        pytest.param(
            {"patterns": {"steps": [{"at": 0, "rate": 10}, {"at": 5, "rate": 0}]}}, 7, 0, id="a-step-to-zero"
        ),
        pytest.param(
            {"start": NIGHT_START, "patterns": {"diurnal": {"peakHour": 10.5, "peakMultiplier": 4}}},
            int(7.5 * 3600),  # 10:30 local: the peak
            4000,
            id="diurnal-peak",
        ),
        pytest.param(
            {"start": NIGHT_START, "patterns": {"diurnal": {"peakHour": 10.5, "peakMultiplier": 4}}},
            int(19.5 * 3600),  # 22:30 local: twelve hours away
            1000,
            id="diurnal-night",
        ),
        pytest.param(
            {"patterns": {"trend": {"amplitude": 0.5, "periodHours": 4}}}, 3600, 1500, id="trend-crest"
        ),
        pytest.param(
            {"patterns": {"trend": {"amplitude": 0.5, "periodHours": 4}}}, 3 * 3600, 500, id="trend-trough"
        ),
    ],
)
def test_rate(config: dict[str, Any], second: int, rate: float) -> None:
    assert schedule(**config).rate(second) == pytest.approx(rate, rel=1e-3)


def test_the_diurnal_peak_follows_the_markets_clock_not_utc() -> None:
    # 10:30 in Tokyo is 01:30 UTC: the same configuration in two zones peaks nine hours apart
    # from New York's 10:30 (15:30 UTC), both measured from a start at 00:00 UTC.
    start = "2026-12-01T00:00:00+00:00"
    tokyo = schedule(start=start, patterns={"diurnal": {"timezone": "Asia/Tokyo"}})
    new_york = schedule(start=start, patterns={"diurnal": {}})
    peak = [int(np.argmax([s.rate(h * 1800) for h in range(48)])) for s in (tokyo, new_york)]
    assert peak == [3, 31]  # 01:30 and 15:30 UTC, in half hours


def test_bursts_start_at_their_probability_last_their_duration_and_multiply() -> None:
    s = schedule(seed=4, patterns={"bursts": {"probability": 0.02, "durationSeconds": 5, "multiplier": 3}})
    seconds = 20_000
    started = sum(s._started(i) for i in range(seconds))
    assert started == pytest.approx(0.02 * seconds, rel=0.15)
    on = [s.bursting(i) for i in range(seconds)]
    assert {s.rate(i) for i in range(200)} <= {1000, 3000}
    share = sum(on) / seconds  # chance that some start fell in the last 5 s
    assert share == pytest.approx(1 - 0.98**5, rel=0.15)


def test_bursts_are_the_same_for_the_same_seed_and_differ_for_another() -> None:
    bursts = {"bursts": {"probability": 0.05}}
    a, b, c = (schedule(seed=k, patterns=bursts) for k in (1, 1, 2))
    assert [a.bursting(i) for i in range(2000)] == [b.bursting(i) for i in range(2000)]
    assert [a.bursting(i) for i in range(2000)] != [c.bursting(i) for i in range(2000)]


def test_an_outage_silences_its_window_only() -> None:
    s = schedule(failures={"outages": [{"at": 10, "seconds": 2.5}]})
    t = np.array([9.99, 10.0, 12.49, 12.5])
    assert s.silent(t).tolist() == [False, True, True, False]
