"""A StreamingJob reconcile with anomalies: one consumer more while an AddConsumer anomaly is
active (never over a manual count, maxReplicas or the partitions), the Degraded condition, the
status entries and the Events when one begins."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from dataworks.api import streamingjob as api
from dataworks.core.streamingjobs import anomalies, planning, scaling
from tests.unit.core.streamingjobs.test_planning import META, NOW, broker, seen, spec


def active(*kinds: str) -> anomalies.Memory:
    return anomalies.Memory(
        active={
            k: anomalies.Anomaly(
                k, NOW - timedelta(seconds=30), f"{k} seen; action: ...", anomalies.ACTION[k]
            )
            for k in kinds
        },
        started=True,
    )


def degraded(st: api.StreamingJobStatus) -> tuple[str, str | None]:
    [c] = [c for c in st.conditions if c.type == "Degraded"]
    return c.status, c.reason


def run(s: api.StreamingJobSpec, o: planning.Observed, watch: anomalies.Memory) -> planning.Plan:
    # the scale-down window has passed: the autoscaler's own decision is Steady at 2 or less
    memory = scaling.Memory(((NOW - timedelta(seconds=600), 2),))
    return planning.plan(META, s, None, o, memory=memory, now=NOW, watch=watch)


@pytest.mark.parametrize(
    ("s", "o", "watch", "replicas", "reason"),
    [
        pytest.param(spec(), seen(), active(), 2, "as-without", id="no-anomaly-no-extra"),
        pytest.param(spec(), seen(), active("LatencySpike"), 3, "Anomaly", id="a-spike-adds-one"),
        pytest.param(
            spec(), seen(), active("LatencySpike", "CPUThrottled"), 3, "Anomaly", id="two-still-add-one"
        ),
        pytest.param(spec(), seen(), active("ErrorRate"), 2, "as-without", id="errors-add-none"),
        pytest.param(
            spec(scaling={"maxReplicas": 2}),
            seen(),
            active("LatencySpike"),
            2,
            "as-without",
            id="never-over-max",
        ),
        pytest.param(
            spec(),
            seen(broker=broker(partitions=2)),
            active("ThroughputDrop"),
            2,
            "as-without",
            id="never-over-the-partitions",
        ),
        pytest.param(
            spec(replicas=2), seen(), active("LatencySpike"), 2, "Manual", id="never-over-a-manual-count"
        ),
        pytest.param(
            spec(suspend=True), seen(), active("LatencySpike"), 0, "Suspended", id="never-while-suspended"
        ),
    ],
)
def test_the_extra_consumer(
    s: api.StreamingJobSpec, o: planning.Observed, watch: anomalies.Memory, replicas: int, reason: str
) -> None:
    """`as-without`: the decision is the one made with no anomaly active."""
    p = run(s, o, watch)
    assert p.replicas == replicas
    if reason == "as-without":
        assert p.status.last_decision == run(s, o, active()).status.last_decision
    else:
        assert p.status.last_decision is not None
        assert p.status.last_decision.reason == reason


def test_an_active_anomaly_is_in_the_status_and_the_degraded_condition() -> None:
    p = run(spec(), seen(), active("LatencySpike"))
    [a] = p.status.anomalies
    assert (a.type, a.action) == ("LatencySpike", "AddConsumer")
    assert degraded(p.status) == ("True", "LatencySpike")
    assert p.write  # a new anomaly is written at once, not after WRITE_EVERY


def test_an_unreachable_broker_outranks_an_anomaly() -> None:
    p = run(spec(), seen(broker=None, broker_error="cannot read stream s"), active("LatencySpike"))
    assert degraded(p.status) == ("True", "BrokerUnreachable")


def test_an_anomaly_that_begins_is_a_warning_event() -> None:
    """The fifth reading in a row with p99 far above its baseline begins a LatencySpike."""
    watch = anomalies.Memory(baseline=(2.0,) * 30, holding={"LatencySpike": 4}, started=True)
    slow: Any = replace(broker(), group=replace(broker().group, p99_ms=900.0))
    p = run(spec(), seen(broker=slow), watch)
    [began] = p.began
    assert began.kind == "LatencySpike"
    [event] = [e for e in p.events if e.reason == "LatencySpike"]
    assert event.type == "Warning"
    assert "p99 900 ms against a baseline of 2 ms" in event.message
    assert p.replicas == 3
