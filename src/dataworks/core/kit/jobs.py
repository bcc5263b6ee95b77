"""Reading a Job's state for any owner kind (pure layer).

`job_view` turns a Job object into the `JobView` every planner reads:
Complete or SuccessCriteriaMet is Succeeded, Failed or FailureTarget is
Failed, a suspended Job is Suspended. The failed pods' reasons (OOMKilled)
and termination messages are read by `pod_failure_reason` and
`pod_failure_message`. Which owner a Job belongs to is the runtime's
routing, by the owner kind's label; the view carries the part (`step`) and
attempt from the shared labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from dataworks.core.kit.labels import LABEL_ATTEMPT, LABEL_STEP

JobState = Literal["Active", "Succeeded", "Failed", "Suspended"]


@dataclass(frozen=True)
class JobView:
    """One Job as observed; `step` is empty for a Job that is no owner's step."""

    name: str
    step: str
    attempt: int
    state: JobState
    reason: str | None = None
    message: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    failed_indexes: str | None = None
    deleting: bool = False
    pod_reason: str | None = None  # e.g. OOMKilled, from the failed pods' containers
    pod_message: str | None = None  # the failed container's termination message (the worker's error line)
    # The succeeded pods' termination messages by completion index (None: not read).
    pod_outputs: tuple[str, ...] | None = None


def pod_success_messages(pods: list[dict[str, Any]]) -> tuple[str, ...]:
    """The termination messages of the succeeded pods' containers, by completion index."""
    found: list[tuple[int, str]] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        index = int((meta.get("annotations") or {}).get("batch.kubernetes.io/job-completion-index") or 0)
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            term = (cs.get("state") or {}).get("terminated") or {}
            if term.get("exitCode") == 0 and (pod.get("status") or {}).get("phase") == "Succeeded":
                found.append((index, str(term.get("message") or "")))
    return tuple(text for _, text in sorted(found, key=lambda f: f[0]))


def pod_failure_reason(pods: list[dict[str, Any]]) -> str | None:
    """The most telling termination reason among failed pods (OOMKilled over Error)."""
    reasons = []
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            term = (cs.get("state") or {}).get("terminated") or {}
            if term.get("exitCode") not in (None, 0) and term.get("reason"):
                reasons.append(str(term["reason"]))
    specific = [r for r in reasons if r not in {"Error", "Completed"}]
    return specific[-1] if specific else None


MESSAGE_LIMIT = 400


def pod_failure_message(pods: list[dict[str, Any]]) -> str | None:
    """The termination message of the most recently failed container, shortened to one line."""
    found: list[tuple[str, str]] = []
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            term = (cs.get("state") or {}).get("terminated") or {}
            if term.get("exitCode") not in (None, 0) and (term.get("message") or "").strip():
                found.append((str(term.get("finishedAt") or ""), str(term["message"])))
    if not found:
        return None
    return one_line(max(found)[1])


def one_line(text: str) -> str:
    """The last `error:` line of a worker's output (or its last line), at most MESSAGE_LIMIT long."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    line = (errors[-1].removeprefix("error: ") if errors else lines[-1]) if lines else ""
    return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 1] + "…"


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for c in status.get("conditions") or []:
        if c.get("type") == type_ and c.get("status") == "True":
            return dict(c)
    return None


def job_view(job: dict[str, Any]) -> JobView:
    """The JobView of any Job dict."""
    meta = job.get("metadata") or {}
    labels = meta.get("labels") or {}
    step = str(labels.get(LABEL_STEP) or "")
    try:
        attempt = int(labels.get(LABEL_ATTEMPT, "1"))
    except ValueError:
        attempt = 1
    status = job.get("status") or {}
    spec = job.get("spec") or {}
    state: JobState = "Active"
    reason = message = None
    if (c := _condition(status, "Complete")) or (c := _condition(status, "SuccessCriteriaMet")):
        state = "Succeeded"
    elif (c := _condition(status, "Failed")) or (c := _condition(status, "FailureTarget")):
        state, reason, message = "Failed", c.get("reason"), c.get("message")
    elif spec.get("suspend"):
        state = "Suspended"
    return JobView(
        name=meta.get("name", ""),
        step=step,
        attempt=attempt,
        state=state,
        reason=reason,
        message=message,
        start_time=status.get("startTime"),
        completion_time=status.get("completionTime"),
        active=int(status.get("active") or 0),
        succeeded=int(status.get("succeeded") or 0),
        failed=int(status.get("failed") or 0),
        failed_indexes=status.get("failedIndexes") or None,
        deleting=bool(meta.get("deletionTimestamp")),
    )


PROGRESS_PREFIX = "PROGRESS:"


def last_progress(log_tail: str) -> float | None:
    """The last `PROGRESS: NN.N%` a worker printed, as a fraction, or None."""
    for line in reversed(log_tail.splitlines()):
        text = line.strip()
        if text.startswith(PROGRESS_PREFIX):
            try:
                return max(0.0, min(1.0, float(text[len(PROGRESS_PREFIX) :].strip().rstrip("%")) / 100))
            except ValueError:
                continue
    return None
