"""One StreamingJob reconcile, decided: the consumer count, reclaims, the status and when it is
written, and the Events, as a table over what was observed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dataworks.api import streamingjob as api
from dataworks.core.kit.plan import Meta
from dataworks.core.streamingjobs import lag as lags
from dataworks.core.streamingjobs import measuring, planning, scaling

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
META = Meta(name="ticks", namespace="ns", generation=3)


def spec(**over: Any) -> api.StreamingJobSpec:
    body: dict[str, Any] = {"source": {"redis": {"address": "redis://r:6379", "stream": "s", "group": "g"}}}
    body |= over
    return api.StreamingJobSpec.model_validate(body)


def broker(
    lag: int = 0,
    *,
    pending: int = 0,
    consumers: dict[str, int] | None = None,
    rate: float | None = 1000,
    processed: float | None = 500.0,
    partitions: int | None = None,
) -> planning.Broker:
    group = measuring.Group(processed, rate, 2.0, 9.0, 1 if processed is not None else 0)
    return planning.Broker(lags.Lag(lag, True, "redis"), pending, consumers or {}, group, partitions)


def seen(replicas: int = 2, ready: int | None = None, **over: Any) -> planning.Observed:
    dep = planning.Deployment(replicas, replicas, replicas if ready is None else ready)
    base = planning.Observed(
        deployment=dep, pods=frozenset({"ticks-a", "ticks-b"}), broker=broker(), arrival_rate=500.0
    )
    return replace(base, **over)


def run(
    s: api.StreamingJobSpec,
    o: planning.Observed,
    old: api.StreamingJobStatus | None = None,
    now: datetime = NOW,
) -> planning.Plan:
    return planning.plan(META, s, old, o, memory=scaling.Memory(), now=now)


@pytest.mark.parametrize(
    ("s", "o", "replicas", "state", "reason"),
    [
        pytest.param(spec(), seen(), 2, "Running", "Stabilizing", id="a-first-scale-down-waits-its-window"),
        pytest.param(
            spec(),
            seen(broker=broker(90_000), arrival_rate=5000),
            8,
            "Running",
            "ScaleUp",
            id="backlog-scales-up",
        ),
        pytest.param(
            spec(scaling={"maxReplicas": 4}),
            seen(broker=broker(90_000), arrival_rate=5000),
            4,
            "Running",
            "ScaleUp",
            id="clamped-at-max",
        ),
        pytest.param(
            spec(),
            seen(broker=broker(90_000, partitions=3), arrival_rate=5000),
            3,
            "Running",
            "ScaleUp",
            id="kafka-capped-at-the-partitions",
        ),
        pytest.param(
            spec(scaling={"minReplicas": 5}),
            seen(broker=broker(partitions=2)),
            2,
            "Running",
            "Steady",
            id="kafka-min-above-the-partitions",
        ),
        pytest.param(spec(replicas=5), seen(), 5, "Running", "Manual", id="manual-override"),
        pytest.param(
            spec(replicas=5),
            seen(broker=broker(partitions=4)),
            4,
            "Running",
            "Manual",
            id="kafka-manual-capped-at-the-partitions",
        ),
        pytest.param(spec(suspend=True), seen(), 0, "Suspended", "Suspended", id="suspended"),
        pytest.param(
            spec(),
            seen(broker=None, broker_error="cannot read stream s", arrival_rate=None),
            2,
            "Degraded",
            None,
            id="blind-keeps-what-runs",
        ),
        pytest.param(
            spec(),
            seen(deployment=None, pods=None, broker=None, arrival_rate=None),
            1,
            "Pending",
            None,
            id="new-starts-its-minimum",
        ),
        pytest.param(
            spec(strategy={"default": "cost"}, scaling={"minReplicas": 0}),
            seen(0, broker=broker(3, processed=None), arrival_rate=3.0),
            1,
            "Pending",
            "WakeUp",
            id="the-first-message-wakes-it",
        ),
    ],
)
def test_plan(
    s: api.StreamingJobSpec, o: planning.Observed, replicas: int, state: str, reason: str | None
) -> None:
    p = run(s, o)
    assert p.replicas == replicas
    assert p.status.state == state, p.status.message
    assert (p.status.last_decision.reason if p.status.last_decision else None) == reason
    assert p.requeue_at == NOW + timedelta(seconds=planning.READ_EVERY)
    assert p.status.selector == "dataworks.io/streamingjob=ticks"
    assert all(c.observed_generation == 3 for c in p.status.conditions)


def test_the_partition_cap_is_reported() -> None:
    p = run(spec(), seen(broker=broker(90_000, partitions=3), arrival_rate=5000))
    assert p.status.partitions == 3
    assert p.status.last_decision is not None
    assert "capped at the topic's 3 partitions (10 asked)" in p.status.last_decision.message
    uncapped = run(spec(), seen(broker=broker(90_000, partitions=30), arrival_rate=5000))
    assert uncapped.replicas == 8
    assert uncapped.status.last_decision is not None
    assert "capped" not in uncapped.status.last_decision.message


def test_a_scale_decision_is_an_event_naming_the_counts() -> None:
    p = run(spec(), seen(broker=broker(90_000), arrival_rate=5000))
    [e] = [e for e in p.events if e.reason == "ScaleUp"]
    assert e.message.startswith("2 -> 8: lag 90000 / 60 s + arrivals 5000/s")


def test_a_gone_consumer_with_pending_entries_is_reclaimed_one_without_is_forgotten() -> None:
    consumers = {"ticks-a": 3, "ticks-b": 0, "ticks-old": 7, "ticks-older": 0}
    p = run(spec(), seen(broker=broker(consumers=consumers)))
    assert (p.reclaim, p.forget) == (["ticks-old"], ["ticks-older"])


def test_nothing_is_reclaimed_before_the_pods_are_known() -> None:
    p = run(spec(), seen(pods=None, broker=broker(consumers={"ticks-old": 7})))
    assert (p.reclaim, p.forget) == ([], [])


def test_figures_alone_are_written_at_most_every_five_seconds() -> None:
    first = run(spec(), seen())
    assert first.write
    again = run(spec(), seen(broker=broker(7)), first.status, NOW + timedelta(seconds=2))
    assert not again.write
    assert again.status.lag == 7  # computed, kept for the next write
    later = run(spec(), seen(broker=broker(7)), first.status, NOW + timedelta(seconds=5))
    assert later.write


def test_a_state_change_is_written_at_once() -> None:
    first = run(spec(), seen())
    broken = seen(broker=None, broker_error="cannot read stream s", arrival_rate=None)
    p = run(spec(), broken, first.status, NOW + timedelta(seconds=1))
    assert p.write
    assert p.status.state == "Degraded"
    assert [e.reason for e in p.events] == ["BrokerUnreachable"]
    again = run(spec(), broken, p.status, NOW + timedelta(seconds=2))
    assert not again.write
    assert again.events == []


def test_a_schedule_switches_the_strategy_with_an_event() -> None:
    market = {
        "default": "throughput",
        "schedule": [
            {"strategy": "latency", "start": "09:30", "end": "16:00", "timezone": "America/New_York"}
        ],
    }
    before = run(spec(strategy=market), seen(), now=datetime(2026, 12, 1, 14, 29, tzinfo=UTC))
    assert before.status.strategy == "throughput"
    after = run(spec(strategy=market), seen(), before.status, datetime(2026, 12, 1, 14, 30, tzinfo=UTC))
    assert after.status.strategy == "latency"
    assert after.write
    [e] = [e for e in after.events if e.reason == "StrategyChanged"]
    assert e.message == "throughput -> latency: schedule window 09:30-16:00 America/New_York"
    assert after.strategy.batch_size == 100


def test_stalled_when_entries_wait_and_no_consumer_progresses() -> None:
    p = run(spec(), seen(broker=broker(50, processed=0.0)))
    assert [c.status for c in p.status.conditions if c.type == "Stalled"] == ["True"]
    ok = run(spec(), seen(broker=broker(50)))
    assert [c.status for c in ok.status.conditions if c.type == "Stalled"] == ["False"]


def test_min_above_max_names_both() -> None:
    with pytest.raises(ValueError, match=r"minReplicas \(5\) must not exceed maxReplicas \(2\)"):
        spec(scaling={"minReplicas": 5, "maxReplicas": 2})


def test_cost_scales_to_zero_once_idle_and_the_window_passed() -> None:
    s = spec(strategy={"default": "cost"}, scaling={"minReplicas": 0, "idleSeconds": 30})
    idle = seen(1, broker=broker(0, processed=0.0), arrival_rate=0.0)
    memory, status, replicas, reasons = scaling.Memory(), None, 1, []
    for t in range(0, 121, 1):
        p = planning.plan(
            META,
            s,
            status,
            replace(idle, deployment=planning.Deployment(replicas, replicas, replicas)),
            memory=memory,
            now=NOW + timedelta(seconds=t),
        )
        memory, status, replicas = p.memory, p.status, p.replicas
        reasons.append((t, p.status.last_decision.reason if p.status.last_decision else None))
        if replicas == 0:
            break
    assert replicas == 0
    assert status is not None
    assert status.state == "Idle"
    # Nothing arrived nor waited since the first reading, so idle from then: zero once the cost
    # strategy's 60 s scale-down window has passed, not before.
    assert reasons[-2:] == [(59, "Stabilizing"), (60, "ScaleToZero")]
