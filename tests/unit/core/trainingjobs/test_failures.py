"""Why an attempt failed, and whether a gang restart may help."""

from __future__ import annotations

from typing import Any

import pytest

from dataworks.core.trainingjobs.failures import Failure, classify, retryable

POLICY = "Pod ml/tj-a1-1-x7k2p has condition DisruptionTarget matching FailJob rule at index 0"


def failed(
    index: int, code: int, reason: str = "Error", at: str = "2026-12-01T00:00:05Z", message: str = ""
) -> dict[str, Any]:
    term = {"exitCode": code, "reason": reason, "finishedAt": at, "message": message}
    return {
        "metadata": {"annotations": {"batch.kubernetes.io/job-completion-index": str(index)}},
        "status": {
            "phase": "Failed",
            "containerStatuses": [{"name": "worker", "state": {"terminated": term}}],
        },
    }


def rendezvous_timed_out(index: int) -> dict[str, Any]:
    message = "worker 0 at tj-a1-0.tj.ml.svc:29500 did not accept a connection within 600s: refused"
    term = {"exitCode": 1, "reason": "Error", "finishedAt": "2026-12-01T00:10:00Z", "message": message}
    return {
        "metadata": {"annotations": {"batch.kubernetes.io/job-completion-index": str(index)}},
        "status": {
            "phase": "Failed",
            "initContainerStatuses": [{"name": "wait-for-worker-0", "state": {"terminated": term}}],
            "containerStatuses": [{"name": "worker", "state": {"waiting": {"reason": "PodInitializing"}}}],
        },
    }


def evicted(index: int) -> dict[str, Any]:
    return {
        "metadata": {"annotations": {"batch.kubernetes.io/job-completion-index": str(index)}},
        "status": {"phase": "Failed", "reason": "Evicted", "message": "the node was low on memory"},
    }


def disrupted(index: int, reason: str) -> dict[str, Any]:
    """A worker stopped by a disruption: Failed with exit 143, and the DisruptionTarget condition."""
    pod = failed(index, 143, at="2026-12-01T00:00:09Z")
    pod["status"]["conditions"] = [
        {"type": "DisruptionTarget", "status": "True", "reason": reason, "message": "m"}
    ]
    return pod


@pytest.mark.parametrize(
    ("pods", "job_reason", "expected"),
    [
        pytest.param([failed(1, 3)], None, Failure("ExitCode", 1, 3, None), id="exit-code"),
        pytest.param(
            [rendezvous_timed_out(1)],
            None,
            Failure(
                "RendezvousTimeout",
                1,
                1,
                "worker 0 at tj-a1-0.tj.ml.svc:29500 did not accept a connection within 600s: refused",
            ),
            id="worker-0-never-listened",
        ),
        pytest.param([failed(0, 137, "OOMKilled")], None, Failure("OOMKilled", 0, 137, None), id="oom"),
        pytest.param(
            [failed(0, 1, at="2026-12-01T00:00:09Z"), failed(2, 7, at="2026-12-01T00:00:03Z")],
            None,
            Failure("ExitCode", 2, 7, None),
            id="the-first-to-fail-is-the-cause",
        ),
        pytest.param(
            [failed(0, 1, message="line 1\nRuntimeError: NCCL timeout")],
            None,
            Failure("ExitCode", 0, 1, "RuntimeError: NCCL timeout"),
            id="last-line-of-the-message",
        ),
        pytest.param(
            [evicted(1)], None, Failure("Evicted", 1, None, "the node was low on memory", True), id="evicted"
        ),
        *(
            pytest.param(
                [failed(0, 1), disrupted(1, reason)],
                None,
                Failure(cause, 1, None, None, True),
                id=f"disruption-{reason}",
            )
            for reason, cause in [
                ("EvictionByEvictionAPI", "Evicted"),
                ("TerminationByKubelet", "Evicted"),
                ("PreemptionByScheduler", "Preempted"),
                ("DeletionByTaintManager", "NodeLost"),
                ("DeletionByPodGC", "NodeLost"),
                ("SomethingNewInPreemptionLand", "Preempted"),
                ("SomethingNew", "Evicted"),
            ]
        ),
        pytest.param(
            [],
            "DeadlineExceeded",
            Failure("DeadlineExceeded", message="the Job's activeDeadlineSeconds passed"),
            id="deadline",
        ),
        pytest.param(
            [], "BackoffLimitExceeded", Failure("Unknown", message="BackoffLimitExceeded"), id="pods-gone"
        ),
        pytest.param(
            [],
            ("PodFailurePolicy", POLICY),
            Failure("Evicted", 1, None, POLICY, True),
            id="evicted-pod-gone-known-by-the-jobs-message",
        ),
        pytest.param(
            [failed(0, 1, at="2026-12-01T00:00:02Z")],
            ("PodFailurePolicy", POLICY),
            Failure("Evicted", 1, None, POLICY, True),
            id="a-peers-exit-after-the-eviction-is-not-the-cause",
        ),
        pytest.param(
            [evicted(0)],
            ("PodFailurePolicy", POLICY),
            Failure("Evicted", 0, None, "the node was low on memory", True),
            id="a-disrupted-pod-still-there-is-read-first",
        ),
        pytest.param(
            [],
            (
                "PodFailurePolicy",
                "Pod ml/tj-a1-1-x7k2p has condition ConfigIssue matching FailJob rule at index 1",
            ),
            Failure(
                "Unknown",
                message="PodFailurePolicy",
            ),
            id="another-rule-is-not-a-disruption",
        ),
    ],
)
def test_classify(
    pods: list[dict[str, Any]], job_reason: str | tuple[str, str] | None, expected: Failure
) -> None:
    reason, message = job_reason if isinstance(job_reason, tuple) else (job_reason, None)
    assert classify(pods, reason, message) == expected


@pytest.mark.parametrize(
    ("failure", "codes", "reasons", "expected"),
    [
        pytest.param(Failure("ExitCode", 0, 1), [], [], True, id="plain-failure"),
        pytest.param(Failure("ExitCode", 0, 2), [2], [], False, id="listed-exit-code"),
        pytest.param(Failure("OOMKilled", 0, 137), [], ["OOMKilled"], False, id="listed-reason"),
        pytest.param(
            Failure("Evicted", 0, None, disruption=True), [], ["Evicted"], True, id="disruptions-always-retry"
        ),
    ],
)
def test_retryable(failure: Failure, codes: list[int], reasons: list[str], expected: bool) -> None:
    assert retryable(failure, codes, reasons) is expected


def test_describe_names_the_worker_code_and_cause() -> None:
    assert Failure("OOMKilled", 1, 137).describe() == "worker 1 failed with exit code 137 (OOMKilled)"
