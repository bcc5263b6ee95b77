"""The StreamingJob's Prometheus metrics (I/O edge: prometheus_client).

Per StreamingJob (labels namespace and streamingjob; removed when it is deleted, so bounded by
the StreamingJobs that exist), set on every reconcile, about once a second: the lag, the
entries pending, the arrival and processing rates, the consumers' p99 latency, the replicas it
has and wants, whether the broker could be read, whether it is stalled, the active strategy,
and each anomaly type (1 while active). Counters: scale decisions by reason (one per decision
that changed the count or its reason), entries reclaimed from gone consumers, and anomalies
that began, by type and action.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from dataworks.api import streamingjob as api
from dataworks.core.kit import conditions
from dataworks.core.streamingjobs import anomalies

STRATEGIES = ("throughput", "latency", "cost")
ANOMALIES = tuple(anomalies.FOR)


class StreamingMetrics:
    def __init__(self, r: CollectorRegistry) -> None:
        labels = ["namespace", "streamingjob"]

        def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, [*labels, *extra], registry=r)

        self.lag = gauge("streamingjob_lag_messages", "Entries of the stream not yet delivered to the group")
        self.pending = gauge("streamingjob_pending_messages", "Entries delivered and not yet acknowledged")
        self.arrival = gauge("streamingjob_arrival_rate", "Messages per second added to the stream")
        self.processing = gauge("streamingjob_processing_rate", "Messages per second the consumers processed")
        self.p99 = gauge(
            "streamingjob_latency_p99_seconds", "End-to-end latency p99, as the consumers report it"
        )
        self.replicas = gauge("streamingjob_replicas", "Consumers the Deployment has")
        self.desired = gauge("streamingjob_desired_replicas", "Consumers the autoscaler wants")
        self.max_replicas = gauge("streamingjob_max_replicas", "spec.scaling.maxReplicas")
        self.queue_delay_slo = gauge("streamingjob_queue_delay_slo_seconds", "spec.scaling.queueDelaySeconds")
        self.broker_up = gauge("streamingjob_broker_up", "1 when the last reading of the broker succeeded")
        self.stalled = gauge("streamingjob_stalled", "1 while the Stalled condition is True")
        self.strategy = gauge("streamingjob_strategy", "1 for the active strategy", ("strategy",))
        self.decisions = Counter(
            "streamingjob_scale_decisions",
            "Scale decisions that changed the count or reason",
            ["reason"],
            registry=r,
        )
        self.anomaly = gauge(
            "streamingjob_anomaly",
            "1 while the anomaly is active (core/streamingjobs/anomalies.py)",
            ("type",),
        )
        self.anomalies = Counter(
            "streamingjob_anomalies",
            "Anomalies that began, by type and the action taken",
            ["type", "action"],
            registry=r,
        )
        self.reclaimed = Counter(
            "streamingjob_reclaimed_messages",
            "Pending entries of gone consumers handed to live ones",
            registry=r,
        )
        self._all: tuple[Gauge, ...] = (self.lag, self.pending, self.arrival, self.processing, self.p99)
        self._all += (
            self.replicas,
            self.desired,
            self.max_replicas,
            self.queue_delay_slo,
            self.broker_up,
            self.stalled,
        )

    def observe(
        self,
        key: tuple[str, str],
        spec: api.StreamingJobSpec,
        st: api.StreamingJobStatus,
        *,
        decided: str | None,
        reclaimed: int,
        began: Sequence[tuple[str, str]] = (),
    ) -> None:
        """One reconcile's figures; `decided` is the reason of a new decision, if one was made."""
        values = {
            self.lag: st.lag,
            self.pending: st.pending,
            self.arrival: st.arrival_rate,
            self.processing: st.processing_rate,
            self.p99: None if st.latency_p99_ms is None else st.latency_p99_ms / 1000,
            self.replicas: st.replicas,
            self.desired: st.desired_replicas,
            self.max_replicas: spec.scaling.max_replicas,
            self.queue_delay_slo: spec.scaling.queue_delay_seconds,
            self.broker_up: 0 if _unreachable(st) else 1,
            self.stalled: 1 if conditions.is_true(st.conditions, "Stalled") else 0,
        }
        for g, v in values.items():
            if v is not None:
                g.labels(*key).set(v)
        for name in STRATEGIES:
            self.strategy.labels(*key, name).set(1 if st.strategy == name else 0)
        active = {a.type for a in st.anomalies}
        for kind in ANOMALIES:
            self.anomaly.labels(*key, kind).set(1 if kind in active else 0)
        for kind, action in began:
            self.anomalies.labels(type=kind, action=action).inc()
        if decided:
            self.decisions.labels(reason=decided).inc()
        if reclaimed:
            self.reclaimed.inc(reclaimed)

    def forget(self, key: tuple[str, str]) -> None:
        for g in self._all:
            with contextlib.suppress(KeyError):
                g.remove(*key)
        for name in STRATEGIES:
            with contextlib.suppress(KeyError):
                self.strategy.remove(*key, name)
        for kind in ANOMALIES:
            with contextlib.suppress(KeyError):
                self.anomaly.remove(*key, kind)


def _unreachable(st: api.StreamingJobStatus) -> bool:
    return any(
        c.type == "Degraded" and c.status == "True" and c.reason == "BrokerUnreachable" for c in st.conditions
    )
