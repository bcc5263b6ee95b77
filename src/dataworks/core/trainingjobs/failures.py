"""Why a TrainingJob's attempt failed, and whether that is worth a gang restart (pure layer).

The first worker to fail is the cause (by its container's finish time). A
disruption (eviction, preemption, node drain or loss: the pod's
DisruptionTarget condition, or the reasons Evicted and NodeLost) restarts the
gang without counting against backoffLimit, as the seed's Phase 7.2 asks. A
disrupted pod that is already gone is known by the Job's own failure message
(its `podFailurePolicy` rule names the pod).
Exit codes and reasons the spec lists as non-retryable fail at once. A
worker whose wait for worker 0's port timed out fails as RendezvousTimeout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dataworks.core.trainingjobs.workers import RENDEZVOUS_CONTAINER, index_of

DISRUPTION_REASONS = frozenset(
    {"Evicted", "NodeLost", "Preempted", "PreemptionByScheduler", "DeletionByTaintManager"}
)


@dataclass(frozen=True)
class Failure:
    cause: str  # OOMKilled, ExitCode, Evicted, Preempted, NodeLost, DeadlineExceeded, Unknown
    worker: int | None = None
    exit_code: int | None = None
    message: str | None = None
    disruption: bool = False

    def describe(self) -> str:
        who = f"worker {self.worker}" if self.worker is not None else "a worker"
        code = f" with exit code {self.exit_code}" if self.exit_code is not None else ""
        why = f": {self.message}" if self.message else ""
        return f"{who} failed{code} ({self.cause}){why}"


# DisruptionTarget's reasons, as the API server, scheduler and controllers write them, in the
# causes the restart history uses.
DISRUPTION_CAUSES = {
    "EvictionByEvictionAPI": "Evicted",  # a drain, or any client of the Eviction API
    "TerminationByKubelet": "Evicted",  # node-pressure eviction, or a graceful node shutdown
    "PreemptionByScheduler": "Preempted",
    "DeletionByTaintManager": "NodeLost",  # a NoExecute taint, such as an unreachable node
    "DeletionByPodGC": "NodeLost",  # the pod's node is gone
}


def _disruption(pod: dict[str, Any]) -> str | None:
    status = pod.get("status") or {}
    for c in status.get("conditions") or []:
        if c.get("type") == "DisruptionTarget" and c.get("status") == "True":
            reason = str(c.get("reason") or "")
            guess = "Preempted" if "preempt" in reason.lower() else "Evicted"
            return DISRUPTION_CAUSES.get(reason, guess)
    if status.get("reason") in DISRUPTION_REASONS:
        return str(status["reason"])
    return None


# The Job controller's message for a podFailurePolicy rule that matched a pod condition.
_POLICY_MESSAGE = re.compile(r"Pod \S+?/(?P<pod>\S+) has condition DisruptionTarget matching FailJob rule")


def _from_job_message(job_reason: str | None, job_message: str | None) -> Failure | None:
    """A disruption read back from the Job's failure message, for when the pod is already gone."""
    m = _POLICY_MESSAGE.search(job_message or "") if job_reason == "PodFailurePolicy" else None
    if m is None:
        return None
    index = re.search(r"-(\d+)-[a-z0-9]{5}$", m["pod"])  # an Indexed Job's pod: <job>-<index>-<suffix>
    worker = int(index.group(1)) if index else None
    return Failure("Evicted", worker, None, job_message, disruption=True)


def classify(
    pods: list[dict[str, Any]], job_reason: str | None = None, job_message: str | None = None
) -> Failure:
    """The failure that ended an attempt, from its pods (the earliest failed worker), else from
    the Job's failure condition."""
    found: list[tuple[str, Failure]] = []
    for pod in pods:
        status = pod.get("status") or {}
        disrupted = _disruption(pod)
        if disrupted:
            found.append(
                ("", Failure(disrupted, index_of(pod), None, status.get("message"), disruption=True))
            )
            continue
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
            if not term or term.get("exitCode") in (None, 0):
                continue
            reason = str(term.get("reason") or "Error")
            cause = reason if reason not in {"Error", "Completed"} else "ExitCode"
            if cs.get("name") == RENDEZVOUS_CONTAINER:
                cause = "RendezvousTimeout"  # worker 0's port never accepted a connection
            message = (term.get("message") or "").strip().splitlines()[-1:] or [None]
            found.append(
                (
                    str(term.get("finishedAt") or ""),
                    Failure(cause, index_of(pod), int(term["exitCode"]), message[0]),
                )
            )
    if not any(f.disruption for _, f in found) and (read := _from_job_message(job_reason, job_message)):
        return read  # the disrupted pod is gone; the others' exits came after it
    if found:
        return min(found, key=lambda f: (f[0], f[1].worker if f[1].worker is not None else 1 << 30))[1]
    if job_reason == "DeadlineExceeded":
        return Failure("DeadlineExceeded", message="the Job's activeDeadlineSeconds passed")
    return Failure("Unknown", message=job_reason)


def retryable(failure: Failure, exit_codes: list[int], reasons: list[str]) -> bool:
    """Whether a gang restart may help: not a listed exit code or reason."""
    if failure.disruption:
        return True
    if failure.exit_code is not None and failure.exit_code in exit_codes:
        return False
    return failure.cause not in reasons
