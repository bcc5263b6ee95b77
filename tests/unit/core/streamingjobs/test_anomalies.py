"""A StreamingJob's anomalies over replayed readings: when each begins, what is done, when it
clears, and what must not count as one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dataworks.core.streamingjobs.anomalies import HOLD, Memory, Sample, detect, extra_consumers

T0 = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
NORMAL = Sample(p99_ms=5.0, processing_rate=1000, arrival_rate=1000, lag=0, error_share=0.0, messages=1000)


def replay(samples: list[Sample]) -> tuple[Memory, list[tuple[int, str, str]]]:
    """The memory at the end, and (reading, began|cleared, kind) in order."""
    m, seen = Memory(), []
    for i, s in enumerate(samples):
        m, began, cleared = detect(m, s, T0 + timedelta(seconds=i))
        seen += [(i, "began", a.kind) for a in began] + [(i, "cleared", a.kind) for a in cleared]
    return m, seen


def spike(p99: float) -> Sample:
    return Sample(p99_ms=p99, processing_rate=1000, arrival_rate=1000, lag=0, error_share=0.0, messages=1000)


def lagging(i: int, done: float) -> Sample:
    return Sample(p99_ms=5.0, processing_rate=done, arrival_rate=1000, lag=100 * i, messages=1000)


@pytest.mark.parametrize(
    ("samples", "events"),
    [
        pytest.param([NORMAL] * 60, [], id="steady-is-quiet"),
        pytest.param(
            [NORMAL] * 30 + [spike(400)] * 10 + [NORMAL] * 20,
            [(34, "began", "LatencySpike"), (49, "cleared", "LatencySpike")],
            id="a-spike-held-five-readings-begins-and-clears-after-ten-quiet",
        ),
        pytest.param(
            [NORMAL] * 30 + [spike(400)] * 4 + [NORMAL] * 20, [], id="four-readings-are-not-a-spike"
        ),
        pytest.param([NORMAL] * 30 + [spike(40)] * 20, [], id="eight-times-a-tiny-baseline-is-not-a-spike"),
        pytest.param([spike(400)] * 15, [], id="no-baseline-yet-no-spike"),
        pytest.param(
            [NORMAL] * 30 + [spike(400), spike(400), NORMAL] * 6, [], id="bad-seconds-apart-never-hold"
        ),
        pytest.param(
            [NORMAL] * 5 + [lagging(i, 300) for i in range(1, 16)],
            [(14, "began", "ThroughputDrop")],
            id="processing-a-third-of-arrivals-while-the-lag-grows",
        ),
        pytest.param(
            [NORMAL] * 5 + [lagging(1, 300)] * 15, [], id="a-slow-group-whose-lag-does-not-grow-is-no-drop"
        ),
        pytest.param(
            [NORMAL] * 5
            + [
                Sample(
                    p99_ms=5.0, processing_rate=1000, arrival_rate=1000, lag=0, error_share=0.2, messages=1000
                )
            ]
            * 6,
            [(9, "began", "ErrorRate")],
            id="a-fifth-of-the-messages-are-errors",
        ),
        pytest.param(
            [Sample(p99_ms=5.0, error_share=0.5, messages=4)] * 10, [], id="two-errors-of-four-say-nothing"
        ),
        pytest.param(
            [Sample(p99_ms=5.0, throttled_share=0.8)] * 12,
            [(9, "began", "CPUThrottled")],
            id="throttled-ten-readings",
        ),
        pytest.param(
            [Sample(oom_killed=frozenset({"c-0#1"}))]
            + [Sample(oom_killed=frozenset({"c-0#1"}))] * 3
            + [Sample(oom_killed=frozenset({"c-0#1", "c-1#4"}))] * 12,
            [(4, "began", "OOMKilled"), (14, "cleared", "OOMKilled")],
            id="an-oom-kill-after-the-start-not-one-from-before",
        ),
    ],
)
def test_anomalies(samples: list[Sample], events: list[tuple[int, str, str]]) -> None:
    assert replay(samples)[1] == events


def test_the_spike_does_not_become_the_baseline() -> None:
    """A long spike stays a spike: its readings never enter the baseline it is judged by."""
    m, events = replay([NORMAL] * 30 + [spike(400)] * 200)
    assert events == [(34, "began", "LatencySpike")]
    assert set(m.baseline) == {5.0}


@pytest.mark.parametrize(
    ("samples", "extra", "action"),
    [
        pytest.param([NORMAL] * 30 + [spike(400)] * 6, 1, "AddConsumer", id="spike-adds-one"),
        pytest.param([Sample(error_share=0.3, messages=100)] * 6, 0, "None", id="errors-add-none"),
        pytest.param([Sample(), Sample(oom_killed=frozenset({"c-0#1"}))], 0, "None", id="oom-adds-none"),
    ],
)
def test_the_action(samples: list[Sample], extra: int, action: str) -> None:
    m, _ = replay(samples)
    assert extra_consumers(m, T0 + timedelta(seconds=len(samples))) == extra
    [a] = m.active.values()
    assert a.action == action
    assert "action: " in a.message


def test_the_extra_consumer_stays_a_while_after_the_anomaly_clears() -> None:
    """The consumer that relieved a spike does not leave at once (it would bring it back)."""
    m, events = replay([NORMAL] * 30 + [spike(400)] * 10 + [NORMAL] * 10)
    assert events == [(34, "began", "LatencySpike"), (49, "cleared", "LatencySpike")]
    cleared_at = T0 + timedelta(seconds=49)
    assert not m.active
    assert extra_consumers(m, cleared_at + timedelta(seconds=HOLD - 1)) == 1
    assert extra_consumers(m, cleared_at + timedelta(seconds=HOLD)) == 0


def test_an_anomaly_without_an_action_leaves_no_hold() -> None:
    m, _ = replay([NORMAL] * 5 + [Sample(error_share=0.3, messages=100)] * 6 + [NORMAL] * 12)
    assert not m.active
    assert m.relief_until is None
