"""What one reconcile of a labelled Job does (pure layer).

An unfinished Job: nothing here (the controller reads each container's log
as it terminates). A finished one (Complete or Failed, or the early
SuccessCriteriaMet and FailureTarget once no pod still runs): its archive
ConfigMap is created, one `JobProcessing` Event is posted, the Job is
annotated `job-handler/status: completed|failed`, and a successful Job is
deleted (Background propagation, with its uid as precondition). Each step
is idempotent and keyed by the Job's uid, so any number of reconciles and
operator restarts give one archive and one Event per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dataworks.api import jobhandler as names
from dataworks.api.meta import GROUP
from dataworks.core.jobhandler import archive, capture
from dataworks.core.jobhandler.fitting import Fitted
from dataworks.core.kit.jobs import job_view
from dataworks.core.kit.plan import Actions, Event


@dataclass(frozen=True)
class Settings:
    budget: int = 950_000


@dataclass
class Planned:
    actions: Actions
    fitted: Fitted | None = None  # the logs of the archive this plan creates


def finished(job: dict[str, Any], pods: list[dict[str, Any]]) -> str | None:
    """completed or failed once the Job's outcome is final and no pod may still print; else None."""
    view = job_view(job)
    if view.state not in ("Succeeded", "Failed"):
        return None
    conditions = {
        c.get("type") for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"
    }
    if not conditions & {"Complete", "Failed"} and capture.running(pods):
        return None  # SuccessCriteriaMet or FailureTarget: the last pods are still being stopped
    return "completed" if view.state == "Succeeded" else "failed"


def deletable(job: dict[str, Any]) -> bool:
    """A Job a dataworks kind controls is left to it (it reads its Jobs); any other may go."""
    refs = (job.get("metadata") or {}).get("ownerReferences") or []
    return not any(r.get("controller") and str(r.get("apiVersion", "")).startswith(GROUP + "/") for r in refs)


def handled(job: dict[str, Any]) -> bool:
    """Nothing left to do for this Job while it exists."""
    meta = job.get("metadata") or {}
    outcome = (meta.get("annotations") or {}).get(names.STATUS)
    return outcome == "failed" or (outcome == "completed" and not deletable(job))


def plan(
    job: dict[str, Any],
    archives: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    logs: archive.Logs,
    *,
    settings: Settings,
    now: datetime,
) -> Planned:
    """The Actions for `job`, given the archives labelled with its name and its live pods."""
    meta = job.get("metadata") or {}
    name, uid = meta.get("name", ""), meta.get("uid", "")
    outcome = finished(job, pods)
    if outcome is None or meta.get("deletionTimestamp"):
        return Planned(Actions())
    actions = Actions()
    fitted = None
    mine = [a for a in archives if ((a.get("metadata") or {}).get("labels") or {}).get(names.JOB_UID) == uid]
    if mine:
        where = mine[0]["metadata"]["name"]
    else:
        taken = {(a.get("metadata") or {}).get("name", "") for a in archives}
        where = archive.archive_name(name, uid, taken)
        manifest, fitted = archive.build(job, job_view(job), logs, where, budget=settings.budget, now=now)
        actions.create.append(manifest)
    if (meta.get("annotations") or {}).get(names.STATUS) != outcome:
        actions.events.append(_event(outcome, where, fitted, deletable(job), logs))
        actions.patch.append(
            ("Job", name, {"metadata": {"uid": uid, "annotations": {names.STATUS: outcome}}})
        )
    if outcome == "completed" and deletable(job):
        actions.delete_self = True
    return Planned(actions, fitted)


def plan_gone(
    job: dict[str, Any],
    archives: list[dict[str, Any]],
    logs: archive.Logs,
    *,
    settings: Settings,
    now: datetime,
) -> Planned:
    """A Job deleted by someone else before it was archived: if it had finished, its archive
    and Event from what was read (its pods are gone with it); nothing to annotate or delete."""
    meta = job.get("metadata") or {}
    outcome = finished(job, [])
    uid = meta.get("uid", "")
    if outcome is None or any(
        ((a.get("metadata") or {}).get("labels") or {}).get(names.JOB_UID) == uid for a in archives
    ):
        return Planned(Actions())
    where = archive.archive_name(
        meta.get("name", ""), uid, {(a.get("metadata") or {}).get("name", "") for a in archives}
    )
    manifest, fitted = archive.build(job, job_view(job), logs, where, budget=settings.budget, now=now)
    return Planned(Actions(create=[manifest], events=[_event(outcome, where, fitted, False, logs)]), fitted)


def _event(outcome: str, where: str, fitted: Fitted | None, delete: bool, logs: archive.Logs) -> Event:
    pods = len(logs.pods)
    kept = (
        f"logs of {pods} pod{'s' if pods != 1 else ''} ({fitted.original:,} bytes"
        + (", cut to fit" if fitted.truncated else "")
        + ")"
        if fitted is not None
        else "its results"
    )
    if outcome == "completed":
        then = "; the Job is deleted" if delete else ""
        return Event(
            "Normal", names.REASON, f"Job completed: kept {kept} in ConfigMap {where}{then}", once=True
        )
    return Event(
        "Warning",
        names.REASON,
        f"Job failed: kept {kept} in ConfigMap {where}; the Job is kept for debugging",
        once=True,
    )
