"""The handler's controller: each container instance is read once, what was read belongs to one
Job run, and an archive is counted in the metrics once, when it is seen stored. Logs come from a
recording stand-in for operator/logcapture (the cluster tests read real pods' logs)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from dataworks.api import jobhandler as names
from dataworks.controllers.jobhandler import JobHandlerController
from dataworks.core.jobhandler.capture import LogSource
from dataworks.core.jobhandler.logbuffer import Captured, LogBuffer
from dataworks.observability.metrics import HandlerMetrics

NOW = datetime(2026, 12, 1, 12, 0, 5, tzinfo=UTC)


class Recording:
    def __init__(self) -> None:
        self.read: list[tuple[str, str, int]] = []

    async def read_all(
        self, reader: Any, job: dict[str, Any], sources: list[LogSource]
    ) -> list[tuple[Captured, str]]:
        out = []
        for s in sources:
            self.read.append((s.pod, s.container, s.instance))
            buf = LogBuffer(1024)
            buf.feed(f"{s.pod} {s.container} run {s.instance + 1}\n".encode())
            out.append((buf.captured(), ""))
        return out


def job(uid: str = "u1", *conditions: str) -> dict[str, Any]:
    conds = [{"type": c, "status": "True", "lastTransitionTime": "2026-12-01T12:00:00Z"} for c in conditions]
    return {
        "metadata": {"name": "etl", "namespace": "ns", "uid": uid, "labels": {names.ENABLED: "true"}},
        "status": {"conditions": conds},
    }


def pod(owner: str, state: str, restarts: int = 0) -> dict[str, Any]:
    cs: dict[str, Any] = {"name": "main", "restartCount": restarts, "state": {state: {"exitCode": 0}}}
    if restarts:
        cs["lastState"] = {"terminated": {"exitCode": 1}}
    return {
        "metadata": {"name": "etl-x", "namespace": "ns", "uid": "p1", "ownerReferences": [{"uid": owner}]},
        "status": {"phase": "Succeeded" if state == "terminated" else "Running", "containerStatuses": [cs]},
    }


def test_each_instance_is_read_once_and_counted_once_when_stored() -> None:
    capture, registry = Recording(), CollectorRegistry()
    metrics = HandlerMetrics(registry)
    c = JobHandlerController(capture, metrics=metrics)  # type: ignore[arg-type]
    running = {"Pod": [pod("u1", "running", restarts=1)]}
    asyncio.run(c.observe(job(), running, None))  # type: ignore[arg-type]
    assert capture.read == [("etl-x", "main", 0)]  # the first, failed run, while the pod restarts
    done = {"Pod": [pod("u1", "terminated", restarts=1)]}
    for _ in range(3):
        logs = asyncio.run(c.observe(job("u1", "Complete"), done, None))  # type: ignore[arg-type]
    assert capture.read == [("etl-x", "main", 0), ("etl-x", "main", 1)]
    actions = c.plan(job("u1", "Complete"), done, logs, NOW)
    (archive,) = actions.create
    assert "run 1" in archive["data"]["logs"]
    assert "run 2" in archive["data"]["logs"]
    assert (
        registry.get_sample_value("dataworks_jobhandler_jobs_archived_total", {"status": "completed"}) is None
    )
    stored = {**done, "ConfigMap": [archive]}
    for _ in range(2):  # reconciles after the archive appeared count it once
        c.plan(job("u1", "Complete"), stored, logs, NOW)
    assert registry.get_sample_value("dataworks_jobhandler_jobs_archived_total", {"status": "completed"}) == 1
    assert registry.get_sample_value("dataworks_jobhandler_capture_latency_seconds_sum") == 5.0
    original = registry.get_sample_value("dataworks_jobhandler_log_bytes_total", {"what": "original"})
    assert original == len("etl-x main run 1\n") + len("etl-x main run 2\n")
    # Archived: what was read is let go (a failed Job may stay for days), and nothing is read again.
    after = asyncio.run(c.observe(job("u1", "Complete"), stored, None))  # type: ignore[arg-type]
    assert after.captured == {}
    assert len(capture.read) == 2


def test_a_new_run_under_the_same_name_starts_afresh_and_ignores_the_old_runs_pods() -> None:
    capture = Recording()
    c = JobHandlerController(capture)  # type: ignore[arg-type]
    asyncio.run(c.observe(job("u1"), {"Pod": [pod("u1", "terminated")]}, None))  # type: ignore[arg-type]
    logs = asyncio.run(c.observe(job("u2"), {"Pod": [pod("u1", "terminated")]}, None))  # type: ignore[arg-type]
    assert logs.captured == {}
    assert capture.read == [("etl-x", "main", 0)]
