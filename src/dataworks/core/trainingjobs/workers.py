"""What a TrainingJob's workers are doing, from the pods of its current attempt (pure layer).

Running workers are pods whose containers all run (and are ready, when a
readiness probe says so). A worker that waits says why in the scheduler's or
the kubelet's own words: "0/4 nodes are available: 1 Insufficient
nvidia.com/gpu", an image that cannot be pulled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
RENDEZVOUS_CONTAINER = "wait-for-worker-0"  # manifests/trainingjobs.py's init container
PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName"})


@dataclass(frozen=True)
class Workers:
    running: int = 0  # ready
    pending: int = 0
    waiting_reason: str | None = None  # Unschedulable, ImagePull, ...
    waiting_message: str | None = None
    started: int = 0  # in phase Running, ready or not


def index_of(pod: dict[str, Any]) -> int | None:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(INDEX_ANNOTATION)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def phase(pod: dict[str, Any]) -> str | None:
    return (pod.get("status") or {}).get("phase")


def _running(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    for c in status.get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return True


def observe(pods: list[dict[str, Any]]) -> Workers:
    """Count the live pods of one attempt, and the first reason one of them waits."""
    live = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    running = sum(1 for p in live if _running(p))
    reason = message = None
    for pod in sorted(live, key=lambda p: index_of(p) or 0):
        status = pod.get("status") or {}
        if status.get("phase") != "Pending":
            continue
        for c in status.get("conditions") or []:
            if c.get("type") == "PodScheduled" and c.get("status") == "False":
                reason, message = c.get("reason") or "Unschedulable", c.get("message")
        for cs in status.get("initContainerStatuses") or []:
            if cs.get("name") == RENDEZVOUS_CONTAINER and "running" in (cs.get("state") or {}):
                reason = "WaitingForWorker0"
                message = "waiting for worker 0's rendezvous port to accept connections"
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in PULL_REASONS:
                reason, message = (
                    "ImagePull",
                    f"{cs.get('name')}: {waiting.get('message') or waiting['reason']}",
                )
        if reason:
            break
    pending = sum(1 for p in live if (p.get("status") or {}).get("phase") == "Pending")
    started = sum(1 for p in live if phase(p) == "Running")
    return Workers(
        running=running, pending=pending, started=started, waiting_reason=reason, waiting_message=message
    )
