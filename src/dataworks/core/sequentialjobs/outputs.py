"""A step's output: its container's termination message (pure layer, SequentialJob policy).

A container says what it produced by writing its termination message
(/dev/termination-log, or its terminationMessagePath). The kubelet keeps at
most 4 KiB of it; the status keeps at most as much, cut on a character
boundary. Of a Job's pods the one that ended last speaks for the step: the
succeeded pod of a completed step, the last failed pod of a failed one.

Reading pods is an API request, kept off the step transition: the pods of a
completed step that is not the last are read just after the next step's Job
was created (`unread` asks the runtime to look again at once). Those of the
last step are read before the sequence is marked complete, so a
`kubectl wait --for=condition=Complete` finds every output; those of a failed
step before it is recorded, for its reason.
"""

from __future__ import annotations

from typing import Any

from dataworks.api import sequentialjob as api
from dataworks.core.kit import jobs
from dataworks.core.sequentialjobs.work import PodFacts, Work


def cap(text: str, limit: int = api.OUTPUT_LIMIT) -> str:
    """`text` in at most `limit` bytes of UTF-8, never cutting a character in two."""
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="ignore")


def _terminated(pods: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
    """(finishedAt, exitCode, message) of every terminated container of the pods."""
    found = []
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            term = (cs.get("state") or {}).get("terminated")
            if term:
                found.append(
                    (
                        str(term.get("finishedAt") or ""),
                        int(term.get("exitCode") or 0),
                        term.get("message") or "",
                    )
                )
    return sorted(found)


def facts_of(pods: list[dict[str, Any]], *, succeeded: bool) -> PodFacts:
    """What the pods of a finished Job tell about its step."""
    ended = [t for t in _terminated(pods) if (t[1] == 0) is succeeded]
    output = cap(ended[-1][2]) if ended and ended[-1][2] else None
    if succeeded:
        return PodFacts(output=output)
    return PodFacts(
        output=output, reason=jobs.pod_failure_reason(pods), message=jobs.pod_failure_message(pods)
    )


def unread(w: Work) -> bool:
    """Whether a completed step's pods are still to be read for its output."""
    for st in w.status.steps:
        job = w.job(st.name)
        if st.phase == "Completed" and st.output is None and job is not None and job.state == "Succeeded":
            return True
    return False
