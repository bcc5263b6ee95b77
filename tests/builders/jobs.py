"""Fluent builders of Job and Pod objects as the Kubernetes API returns them (camelCase keys,
conditions whose status is the string "True", zero counts omitted), for the Job reader and the
Pipeline policies.

    make_job("p-a").of("a").started().failed().pod(make_pod("p-a-x").exited(137, "OOMKilled"))
    make_job("p-f").of("f", type_="fan-out").indexed(4).failed("FailedIndexes").indexes("0-2")

`build()` gives the Job dict, `view()` the JobView the operator plans with: `job_view` of the
dict, plus the failed pods' reason and message when the Job failed (as the operator adds them).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from dataworks.core.kit import jobs as kitjobs
from dataworks.core.kit import naming
from dataworks.core.kit.jobs import JobView
from dataworks.core.kit.labels import JOB_NAME, LABEL_ATTEMPT, LABEL_STEP, LABEL_STEP_TYPE

OWNER_LABEL = "dataworks.io/pipeline"
STARTED = "2026-01-01T00:00:00Z"
FINISHED = "2026-01-01T00:05:00Z"
BACKOFF = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")


def _condition(type_: str, reason: str, message: str, at: str, status: str = "True") -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastProbeTime": at,
        "lastTransitionTime": at,
    }


class PodBuilder:
    """A pod of a Job; each `exited`/`running`/`waiting` adds one container status."""

    def __init__(self, name: str) -> None:
        self.body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "ns", "labels": {}},
            "status": {"phase": "Running", "containerStatuses": []},
        }

    def _add(self, state: dict[str, Any]) -> PodBuilder:
        statuses = self.body["status"]["containerStatuses"]
        statuses.append({"name": f"c{len(statuses)}", "ready": False, "restartCount": 0, "state": state})
        return self

    def exited(
        self,
        code: int,
        reason: str = "Error",
        *,
        message: str | None = None,
        at: str | None = FINISHED,
    ) -> PodBuilder:
        term: dict[str, Any] = {"exitCode": code, "reason": reason, "startedAt": STARTED}
        if message is not None:
            term["message"] = message
        if at is not None:
            term["finishedAt"] = at
        self.body["status"]["phase"] = "Failed" if code else "Succeeded"
        return self._add({"terminated": term})

    def running(self) -> PodBuilder:
        return self._add({"running": {"startedAt": STARTED}})

    def waiting(self, reason: str = "ContainerCreating") -> PodBuilder:
        self.body["status"]["phase"] = "Pending"
        return self._add({"waiting": {"reason": reason}})

    def build(self) -> dict[str, Any]:
        return copy.deepcopy(self.body)


def make_pod(name: str = "pod") -> PodBuilder:
    return PodBuilder(name)


class JobBuilder:
    """A Job; without a terminal method it is active (no conditions)."""

    def __init__(self, name: str) -> None:
        self.body: dict[str, Any] = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": "ns", "labels": {}},
            "spec": {"backoffLimit": 1, "completions": 1, "parallelism": 1, "suspend": False},
            "status": {},
        }
        self.pods: list[dict[str, Any]] = []

    @property
    def _status(self) -> dict[str, Any]:
        return self.body["status"]

    def _conditions(self) -> list[dict[str, Any]]:
        return self._status.setdefault("conditions", [])

    def of(self, step: str, attempt: int = 1, *, pipeline: str = "p", type_: str = "container") -> JobBuilder:
        """The Job of attempt `attempt` of step `step` of pipeline `pipeline` (its labels)."""
        self.body["metadata"]["labels"].update(
            {OWNER_LABEL: pipeline, LABEL_STEP: step, LABEL_STEP_TYPE: type_, LABEL_ATTEMPT: str(attempt)}
        )
        return self

    def label(self, key: str, value: str) -> JobBuilder:
        self.body["metadata"]["labels"][key] = value
        return self

    def started(self, at: str = STARTED) -> JobBuilder:
        self._status["startTime"] = at
        self._status.setdefault("active", 1)
        return self

    def _ended(self, key: str, count: int) -> JobBuilder:
        self._status.pop("active", None)
        self._status[key] = count
        return self

    def counts(self, *, active: int = 0, succeeded: int = 0, failed: int = 0) -> JobBuilder:
        """Pod counts as the Job controller writes them (a zero count is omitted)."""
        for key, value in (("active", active), ("succeeded", succeeded), ("failed", failed)):
            if value:
                self._status[key] = value
            else:
                self._status.pop(key, None)
        return self

    def indexed(self, completions: int, *, backoff_per_index: int = 1) -> JobBuilder:
        """An Indexed Job (a fan-out): `completions` workers, each retried on its own."""
        self.body["spec"].update(
            {
                "completionMode": "Indexed",
                "completions": completions,
                "parallelism": completions,
                "backoffLimitPerIndex": backoff_per_index,
            }
        )
        self.body["spec"].pop("backoffLimit", None)
        return self

    def indexes(self, failed: str, *, completed: str | None = None) -> JobBuilder:
        """The Indexed Job's failedIndexes (and completedIndexes), e.g. "0,2-4"."""
        self._status["failedIndexes"] = failed
        if completed is not None:
            self._status["completedIndexes"] = completed
        return self

    def suspended(self) -> JobBuilder:
        self.body["spec"]["suspend"] = True
        self._status.pop("active", None)
        self._conditions().append(_condition("Suspended", "JobSuspended", "Job suspended", STARTED))
        return self

    def resumed(self) -> JobBuilder:
        """Suspended once, running again: the Suspended condition stays, with status False."""
        self.body["spec"]["suspend"] = False
        self._conditions().append(
            _condition("Suspended", "JobResumed", "Job resumed", STARTED, status="False")
        )
        self._status.setdefault("active", 1)
        return self

    def success_criteria_met(self, at: str = FINISHED) -> JobBuilder:
        """Succeeded, pods still terminating: SuccessCriteriaMet comes before Complete."""
        self._conditions().append(
            _condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number", at)
        )
        return self

    def succeeded(self, at: str | None = FINISHED, *, count: int = 1) -> JobBuilder:
        """Complete, with completionTime `at` (None: not yet written)."""
        self.success_criteria_met(at or FINISHED)
        self._conditions().append(
            _condition("Complete", "CompletionsReached", "Reached expected number", at or FINISHED)
        )
        if at is not None:
            self._status["completionTime"] = at
        return self._ended("succeeded", count)

    def failure_target(self, reason: str = BACKOFF[0], message: str = BACKOFF[1]) -> JobBuilder:
        """Failing, pods still terminating: FailureTarget comes before Failed."""
        self._conditions().append(_condition("FailureTarget", reason, message, FINISHED))
        return self

    def failed(self, reason: str = BACKOFF[0], message: str = BACKOFF[1], *, count: int = 1) -> JobBuilder:
        self.failure_target(reason, message)
        self._conditions().append(_condition("Failed", reason, message, FINISHED))
        return self._ended("failed", count)

    def condition(self, type_: str, status: str, reason: str = "", message: str = "") -> JobBuilder:
        """Any other condition, e.g. one whose status is "False"."""
        self._conditions().append(_condition(type_, reason, message, FINISHED, status=status))
        return self

    def deleting(self, at: str = FINISHED) -> JobBuilder:
        self.body["metadata"]["deletionTimestamp"] = at
        return self

    def pod(self, *pods: PodBuilder) -> JobBuilder:
        for p in pods:
            body = p.build()
            body["metadata"]["labels"][JOB_NAME] = self.body["metadata"]["name"]
            self.pods.append(body)
        return self

    def build(self) -> dict[str, Any]:
        return copy.deepcopy(self.body)

    def view(self) -> JobView:
        """What the operator plans with: the Job's view, plus its pods' failure when it failed."""
        v = kitjobs.job_view(self.build())
        if v.state != "Failed" or not self.pods:
            return v
        return dataclasses.replace(
            v,
            pod_reason=kitjobs.pod_failure_reason(self.pods),
            pod_message=kitjobs.pod_failure_message(self.pods),
        )


def make_job(name: str = "j") -> JobBuilder:
    return JobBuilder(name)


def step_job(step: str, attempt: int = 1, *, pipeline: str = "p", type_: str = "container") -> JobBuilder:
    """The started Job the planner launches for attempt `attempt` of `step` (its deterministic name)."""
    name = naming.job_name(pipeline, step, attempt)
    return make_job(name).of(step, attempt, pipeline=pipeline, type_=type_).started()
