"""Reading a TrainingJob's workers: how many run, and why one waits, in the cluster's own words."""

from __future__ import annotations

from typing import Any

import pytest

from dataworks.core.trainingjobs.workers import Workers, observe


def pod(
    index: int, phase: str, *, ready: bool = True, scheduled: str | None = None, pull: str | None = None
) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = [{"type": "Ready", "status": "True" if ready else "False"}]
    if scheduled:
        conditions.append(
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": scheduled}
        )
    statuses = (
        [{"name": "worker", "state": {"waiting": {"reason": pull, "message": "no such image"}}}]
        if pull
        else []
    )
    return {
        "metadata": {"annotations": {"batch.kubernetes.io/job-completion-index": str(index)}},
        "status": {"phase": phase, "conditions": conditions, "containerStatuses": statuses},
    }


def waiting_for_worker_0(index: int) -> dict[str, Any]:
    p = pod(index, "Pending", ready=False)
    p["status"]["initContainerStatuses"] = [{"name": "wait-for-worker-0", "state": {"running": {}}}]
    return p


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        pytest.param([], Workers(), id="none"),
        pytest.param([pod(0, "Running"), pod(1, "Running")], Workers(running=2, started=2), id="all-running"),
        pytest.param([pod(0, "Running", ready=False)], Workers(running=0, started=1), id="running-not-ready"),
        pytest.param(
            [
                pod(0, "Running"),
                pod(1, "Pending", scheduled="0/4 nodes are available: 1 Insufficient nvidia.com/gpu"),
            ],
            Workers(
                1, 1, "Unschedulable", "0/4 nodes are available: 1 Insufficient nvidia.com/gpu", started=1
            ),
            id="unschedulable-in-the-schedulers-words",
        ),
        pytest.param(
            [pod(0, "Running"), waiting_for_worker_0(1)],
            Workers(
                1,
                1,
                "WaitingForWorker0",
                "waiting for worker 0's rendezvous port to accept connections",
                started=1,
            ),
            id="waiting-for-worker-0",
        ),
        pytest.param(
            [pod(0, "Pending", pull="ImagePullBackOff")],
            Workers(0, 1, "ImagePull", "worker: no such image"),
            id="image-pull",
        ),
        pytest.param(
            [pod(1, "Pending", scheduled="second"), pod(0, "Pending", scheduled="first")],
            Workers(0, 2, "Unschedulable", "first"),
            id="lowest-index-speaks",
        ),
    ],
)
def test_observe(pods: list[dict[str, Any]], expected: Workers) -> None:
    assert observe(pods) == expected
