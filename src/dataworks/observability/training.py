"""The TrainingJob's Prometheus metrics, with the seed's names (I/O edge: prometheus_client).

Counters of created, completed and failed (by reason) TrainingJobs; per active
TrainingJob (removed when it ends, so bounded by the active count) its state,
allocated GPUs and workers, progress, epoch, loss and accuracy; histograms of
the time from creation to every worker running, and of a gang restart's
recovery (from the failure to every worker running again).
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from dataworks.api import trainingjob as api
from dataworks.core.kit.clock import parse_ts

STATES = ("Created", "Initializing", "Running", "Restarting", "Succeeded", "Failed", "Suspended")
STARTUP_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)
DURATION_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200)


class TrainingMetrics:
    def __init__(self, r: CollectorRegistry) -> None:
        self.created = Counter("trainingjob_created", "TrainingJobs seen for the first time", registry=r)
        self.completed = Counter("trainingjob_completed", "TrainingJobs that succeeded", registry=r)
        self.failed = Counter(
            "trainingjob_failed", "TrainingJobs that failed, by reason", ["reason"], registry=r
        )
        labels = ["namespace", "trainingjob"]
        self.state = Gauge(
            "trainingjob_state",
            "1 for the state each active TrainingJob is in",
            [*labels, "state"],
            registry=r,
        )
        self.gpus = Gauge(
            "trainingjob_allocated_gpus", "GPUs asked for by each active TrainingJob", labels, registry=r
        )
        self.workers = Gauge(
            "trainingjob_allocated_workers", "Workers running, per active TrainingJob", labels, registry=r
        )
        self.progress = Gauge("trainingjob_progress_percent", "Reported progress, 0-100", labels, registry=r)
        self.epoch = Gauge("trainingjob_current_epoch", "Reported epoch", labels, registry=r)
        self.loss = Gauge("trainingjob_loss", "Reported loss", labels, registry=r)
        self.accuracy = Gauge("trainingjob_accuracy", "Reported accuracy", labels, registry=r)
        self.stalled = Gauge(
            "trainingjob_stalled",
            "1 while an active TrainingJob's Stalled condition is True",
            labels,
            registry=r,
        )
        self.restarts = Counter("trainingjob_restarts", "Gang restarts, by cause", ["cause"], registry=r)
        self.startup = Histogram(
            "trainingjob_startup_seconds",
            "From creation to every worker running",
            buckets=STARTUP_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "trainingjob_duration_seconds",
            "From creation to Succeeded or Failed, by the state it ended in",
            ["state"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.recovery = Histogram(
            "trainingjob_restart_recovery_seconds",
            "From a gang restart to every worker running again",
            buckets=STARTUP_BUCKETS,
            registry=r,
        )

    def observe(
        self,
        key: tuple[str, str],
        old: api.TrainingJobStatus | None,
        new: api.TrainingJobStatus,
        spec: api.TrainingJobSpec | None,
        now: datetime,
    ) -> None:
        """Count what changed between the status read and the status written."""
        ns, name = key
        before = old.state if old is not None else None
        if old is None or old.observed_generation is None:
            self.created.inc()
        if new.state != before:
            if new.state in api.TERMINAL_STATES and new.start_time:
                took = (now - parse_ts(new.start_time)).total_seconds()
                self.duration.labels(state=new.state).observe(max(0.0, took))
            if new.state == "Succeeded":
                self.completed.inc()
            elif new.state == "Failed":
                reason = next((c.reason for c in new.conditions if c.type == "Failed"), "") or "Unknown"
                self.failed.labels(reason=reason).inc()
            elif new.state == "Running" and new.start_time and not new.restarts and new.attempt == 1:
                self.startup.observe(max(0.0, (now - parse_ts(new.start_time)).total_seconds()))
        recovered = new.restarts[-1].recovered_after_seconds if new.restarts else None
        was = old.restarts[-1] if old is not None and old.restarts else None
        if recovered is not None and (was is None or was.recovered_after_seconds is None):
            self.recovery.observe(recovered)  # the planner records it once, when all run again
        for restart in new.restarts[len(old.restarts) if old is not None else 0 :]:
            self.restarts.labels(cause=restart.cause).inc()
        if new.state in api.TERMINAL_STATES:
            self.forget(key)
            return
        for s in STATES:
            self.state.labels(ns, name, s).set(1.0 if s == new.state else 0.0)
        if spec is not None:
            self.gpus.labels(ns, name).set(spec.gpus_per_worker * spec.num_workers)
        self.workers.labels(ns, name).set(new.active_workers)
        stalled = any(c.type == "Stalled" and c.status == "True" for c in new.conditions)
        self.stalled.labels(ns, name).set(1.0 if stalled else 0.0)
        if new.progress:
            self.progress.labels(ns, name).set(float(new.progress.rstrip("%")))
        if new.current_epoch is not None:
            self.epoch.labels(ns, name).set(new.current_epoch)
        for metric, gauge in (("loss", self.loss), ("accuracy", self.accuracy)):
            if metric in new.metrics:
                gauge.labels(ns, name).set(new.metrics[metric])

    def forget(self, key: tuple[str, str]) -> None:
        ns, name = key
        for s in STATES:
            with contextlib.suppress(KeyError):
                self.state.remove(ns, name, s)
        for g in (self.gpus, self.workers, self.progress, self.epoch, self.loss, self.accuracy, self.stalled):
            with contextlib.suppress(KeyError):
                g.remove(ns, name)
