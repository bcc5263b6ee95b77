"""The operator's Prometheus metrics (edge layer), on a registry of their own.

Names follow the seeds where they fit (`pipeline_starts_total`,
`pipeline_duration_seconds`, `active_pipelines`, `pipeline_step_failures_total`).
Labels stay bounded: phases, step types, failure reasons, verbs and resources;
never pipeline or namespace names.

`observe_status` turns one reconcile's old and new status into counter and
histogram updates, so every transition is counted exactly once, by the
reconcile that wrote it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from dataworks.api import pipeline as api
from dataworks.core.jobhandler.fitting import Fitted
from dataworks.core.kit import clock
from dataworks.observability.streaming import StreamingMetrics
from dataworks.observability.training import TrainingMetrics

TERMINAL = api.TERMINAL_PHASES
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)
RECONCILE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
KNOWN_REASONS = {
    "OOMKilled",
    "Error",
    "BackoffLimitExceeded",
    "DeadlineExceeded",
    "FailedIndexes",
    "PodFailurePolicy",
    "Failed",
    "Evicted",
    "ContainerCannotRun",
    "StartError",
}


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return clock.seconds_between(start, end)


class _Requests(Collector):
    """API requests by verb and resource, read from the client's own counter at scrape time."""

    def __init__(self, counts: Callable[[], dict[tuple[str, str], int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "dataworks_kubernetes_api_requests",
            "Kubernetes API requests by verb and resource",
            labels=["verb", "resource"],
        )
        for (verb, resource), n in sorted(self.counts().items()):
            family.add_metric([verb, resource], n)
        yield family


class Metrics:
    """Every metric the operator exports."""

    def __init__(self, version: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.starts = Counter("pipeline_starts", "Pipelines that started running", registry=r)
        self.durations = Histogram(
            "pipeline_duration_seconds",
            "Wall time of finished pipelines, by final phase",
            ["phase"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.active = Gauge("active_pipelines", "Pipelines not yet in a terminal phase", registry=r)
        self.step_failures = Counter(
            "pipeline_step_failures",
            "Failed steps, by step type and reason",
            ["step_type", "reason"],
            registry=r,
        )
        self.step_durations = Histogram(
            "pipeline_step_duration_seconds",
            "Wall time of completed steps, by step type",
            ["step_type"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.reconcile_seconds = Histogram(
            "dataworks_reconcile_duration_seconds",
            "Time of one reconcile, by kind",
            ["kind"],
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self.reconcile_errors = Counter(
            "dataworks_reconcile_errors",
            "Reconciles that raised, by kind and error type",
            ["kind", "error"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "dataworks_workqueue_depth",
            "Objects waiting for, or in, a reconcile, by kind",
            ["kind"],
            registry=r,
        )
        self.events = Counter(
            "dataworks_events",
            "Kubernetes Events posted, or given up on (refused by the API, or failing through every retry)",
            ["result"],
            registry=r,
        )
        for result in ("posted", "failed"):
            self.events.labels(result=result)  # both exported from the start, so a rate sees 0
        # Per active pipeline (removed when it ends, so bounded by the active count): what the
        # PipelineStuck and PipelineDurationAnomaly alerts read.
        self.started_at = Gauge(
            "dataworks_pipeline_start_timestamp_seconds",
            "Start time of each active pipeline",
            ["namespace", "pipeline"],
            registry=r,
        )
        self.progressed_at = Gauge(
            "dataworks_pipeline_last_progress_timestamp_seconds",
            "When a step of each active pipeline last changed phase",
            ["namespace", "pipeline"],
            registry=r,
        )
        self.handler = HandlerMetrics(r)
        self.training = TrainingMetrics(r)
        self.streaming = StreamingMetrics(r)
        self.build = Info("dataworks_operator_build", "The operator's version", registry=r)
        self.build.info({"version": version})

    def watch_requests(self, counts: Callable[[], dict[tuple[str, str], int]]) -> None:
        self.registry.register(_Requests(counts))

    def forget(self, namespace: str, name: str) -> None:
        for gauge in (self.started_at, self.progressed_at):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name)

    def observe_status(
        self,
        where: tuple[str, str],
        old: api.PipelineStatus | None,
        new: api.PipelineStatus,
        types: dict[str, str],
        now: float,
    ) -> None:
        """Count what changed between the status read and the status written."""
        before = old or api.PipelineStatus()
        namespace, name = where
        if new.phase in TERMINAL:
            self.forget(namespace, name)
        elif new.start_time:
            started = _seconds("1970-01-01T00:00:00Z", new.start_time)
            self.started_at.labels(namespace, name).set(started if started is not None else now)
            steps_now = {(s.name, s.phase, s.attempt) for s in new.step_statuses}
            steps_before = {(s.name, s.phase, s.attempt) for s in before.step_statuses}
            if new.phase == "Suspended":  # paused on purpose: not stuck
                with contextlib.suppress(KeyError):
                    self.progressed_at.remove(namespace, name)
            elif steps_now != steps_before or not before.start_time or before.phase == "Suspended":
                self.progressed_at.labels(namespace, name).set(now)
        if new.start_time and not before.start_time:
            self.starts.inc()
        if new.phase in TERMINAL and before.phase != new.phase:
            took = _seconds(new.start_time, new.completion_time)
            self.durations.labels(phase=new.phase).observe(took if took is not None else 0.0)
        previous = {s.name: s for s in before.step_statuses}
        for s in new.step_statuses:
            was = previous.get(s.name)
            if was is not None and was.phase == s.phase and was.attempt == s.attempt:
                continue
            step_type = types.get(s.name, "unknown")
            if s.phase == "Failed":
                reason = s.reason if s.reason in KNOWN_REASONS else "Other"
                self.step_failures.labels(step_type=step_type, reason=reason).inc()
            elif s.phase == "Completed":
                took = _seconds(s.start_time, s.completion_time)
                if took is not None:
                    self.step_durations.labels(step_type=step_type).observe(took)


class HandlerMetrics:
    """The job-completion handler's metrics (controllers.jobhandler reports to it)."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.jobs = Counter(
            "dataworks_jobhandler_jobs_archived", "Jobs archived, by their outcome", ["status"], registry=r
        )
        self.bytes = Counter(
            "dataworks_jobhandler_log_bytes",
            "Log bytes the archived containers printed (original), kept in ConfigMaps (stored, after "
            "compression) and cut to fit",
            ["what"],
            registry=r,
        )
        self.failures = Counter(
            "dataworks_jobhandler_failures",
            "What could not be kept: a container's log (its pod was gone)",
            ["what"],
            registry=r,
        )
        self.latency = Histogram(
            "dataworks_jobhandler_capture_latency_seconds",
            "From a Job's final condition to its archive seen stored (whole seconds: the condition's "
            "time has no finer grain)",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=r,
        )
        for what in ("original", "stored", "cut"):
            self.bytes.labels(what=what)
        self.failures.labels(what="log")

    def archived(self, status: str, fitted: Fitted | None, latency: float | None) -> None:
        self.jobs.labels(status=status).inc()
        if fitted is not None:
            self.bytes.labels(what="original").inc(fitted.original)
            self.bytes.labels(what="stored").inc(fitted.stored)
            self.bytes.labels(what="cut").inc(max(0, fitted.original - fitted.kept))
        if latency is not None:
            self.latency.observe(latency)

    def failed(self, what: str) -> None:
        self.failures.labels(what=what).inc()
