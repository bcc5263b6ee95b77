"""Local Jobs (edge layer): a Job manifest run as processes, behaving as the Job controller does.

The operator hands retries to Kubernetes: `backoffLimit` for a step,
`backoffLimitPerIndex` for a fan-out's workers, `podFailurePolicy` for exit
codes never (or only) worth retrying, `activeDeadlineSeconds` for timeouts.
`LocalJob` reads those very fields from the Job manifest (`JobRules`), gives
the same rules to local processes, and reports itself as the same `JobView`
the planner reads, so `core.pipelines.planning` decides both. The container's
`resources.limits` are enforced by a cgroup per try (local/cgroups.py), and a
try the OOM killer ended is reported `OOMKilled`, as a kubelet reports it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from dataworks.core.kit.clock import ts
from dataworks.core.kit.jobs import JobState, JobView, one_line
from dataworks.core.kit.labels import LABEL_ATTEMPT, LABEL_STEP
from dataworks.local import cgroups

PolicyAction = Literal["FailJob", "FailIndex", "Ignore", "Count"]
DEFAULT_BACKOFF_LIMIT = 6  # the Job API's default

GRACE_SECONDS = 10.0


@dataclass
class Worker:
    """One index of the Job: its current process and its history."""

    index: int
    tries: int = 0
    failures: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    done: bool = False
    failed: bool = False
    exit_codes: list[int] = field(default_factory=list)
    ended_at: str | None = None  # when its latest try was seen to end (microseconds: order matters)
    group: cgroups.Group | None = None  # its container's limits, while its latest try runs
    oom_killed: bool = False  # its latest try was ended by the OOM killer

    @property
    def running(self) -> bool:
        """Its latest try runs, as far as the last poll saw."""
        return not self.done and self.proc is not None and self.proc.returncode is None


@dataclass(frozen=True)
class Launcher:
    """How to start worker <index>, try <n>: argv, environment, working directory, log file."""

    argv: Callable[[int], list[str]]
    env: Callable[[int, int], dict[str, str]]
    cwd: Path
    log: Callable[[int, int], Path]
    termination: Callable[[int], Path] | None = None  # worker <index>'s termination message file
    limits: cgroups.Limits = field(default_factory=cgroups.Limits)  # the container's resources.limits
    limiter: cgroups.Limiter | None = None  # enforces them (default: this machine's)


@dataclass(frozen=True)
class JobRules:
    """What the Job controller obeys, read from a Job manifest."""

    name: str
    step: str
    attempt: int
    indexed: bool
    completions: int
    retries: int  # backoffLimitPerIndex when Indexed, backoffLimit otherwise
    deadline: int | None
    failure_rules: tuple[dict[str, Any], ...]

    @classmethod
    def of(cls, job: dict[str, Any]) -> JobRules:
        meta, spec = job["metadata"], job["spec"]
        labels = meta.get("labels") or {}
        indexed = spec.get("completionMode") == "Indexed"
        # An Indexed Job without backoffLimitPerIndex counts failures against backoffLimit, as one.
        limit = spec.get("backoffLimitPerIndex") if indexed else None
        limit = spec.get("backoffLimit") if limit is None else limit
        rules = (spec.get("podFailurePolicy") or {}).get("rules") or []
        return cls(
            name=meta["name"],
            step=str(labels.get(LABEL_STEP, meta["name"])),
            attempt=int(labels.get(LABEL_ATTEMPT, "1")),
            indexed=indexed,
            completions=int(spec.get("completions") or 1),
            retries=int(DEFAULT_BACKOFF_LIMIT if limit is None else limit),
            deadline=spec.get("activeDeadlineSeconds"),
            failure_rules=tuple(r for r in rules if "onExitCodes" in r),
        )

    def on_exit(self, code: int) -> PolicyAction:
        """The podFailurePolicy action for a container that exited with `code` (first match)."""
        for rule in self.failure_rules:
            match = rule["onExitCodes"]
            listed = code in match.get("values", [])
            if listed == (match.get("operator", "In") == "In"):
                return rule["action"]  # type: ignore[no-any-return]
        return "Count"


class LocalJob:
    """One Job: `completions` workers (indexed or not) with the Job's retry rules."""

    def __init__(self, job: dict[str, Any], *, launcher: Launcher, wake: threading.Event) -> None:
        self.manifest = job
        self.rules = JobRules.of(job)
        self.name, self.attempt, self.retries = self.rules.name, self.rules.attempt, self.rules.retries
        self.step_name = self.rules.step
        self.launcher, self.wake = launcher, wake
        self.workers = [Worker(i) for i in range(self.rules.completions)]
        self.start_time: str | None = None
        self.completion_time: str | None = None
        self.started_at = 0.0
        self.state: JobState = "Active"
        self.reason: str | None = None
        self.message: str | None = None
        self.deleting = False
        self.suspended = False
        self.message_of_failure: str | None = None

    # -- processes -----------------------------------------------------------
    def start(self, now: datetime) -> None:
        self.start_time, self.started_at = ts(now), time.monotonic()
        for w in self.workers:
            self._spawn(w)

    def _spawn(self, w: Worker) -> None:
        w.tries += 1
        if self.launcher.termination is not None:  # a new container starts with an empty message
            self.launcher.termination(w.index).unlink(missing_ok=True)
        w.log = self.launcher.log(w.index, w.tries)
        w.log.parent.mkdir(parents=True, exist_ok=True)
        with w.log.open("ab") as out:
            try:
                w.proc = subprocess.Popen(
                    self.launcher.argv(w.index),
                    env=self.launcher.env(w.index, w.tries),
                    cwd=self.launcher.cwd,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # Ctrl-C reaches the executor, which stops workers in order
                )
            except OSError as e:
                out.write(f"error: cannot start {self.launcher.argv(w.index)[0]!r}: {e.strerror}\n".encode())
                w.proc = None
                w.exit_codes.append(127)
                w.done = w.failed = True
                self.wake.set()
                return
        w.oom_killed = False
        if self.launcher.limits:
            limiter = self.launcher.limiter or cgroups.default()
            w.group = limiter.start(
                f"{self.rules.name}-{w.index}-{w.tries}-{w.proc.pid}", self.launcher.limits, w.proc.pid
            )
        threading.Thread(target=self._reap, args=(w, w.proc, w.group), daemon=True).start()

    def _reap(self, w: Worker, proc: subprocess.Popen[bytes], group: cgroups.Group | None) -> None:
        proc.wait()
        self._release(w, group)
        self.wake.set()

    @staticmethod
    def _release(w: Worker, group: cgroups.Group | None) -> None:
        """After the try in `group` ended: whether the OOM killer ended it, and the group
        removed. Once: the reaper and `poll`, whichever sees the end first, and never a later
        try's group."""
        if group is None or w.group is not group:
            return
        w.group = None
        w.oom_killed = group.end()

    def _signal(self, sig: int) -> None:
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(w.proc.pid, sig)

    def terminate(self) -> None:
        """Delete the Job: SIGTERM every worker, SIGKILL after the grace period."""
        self.deleting = True
        if self.suspended:
            self._signal(signal.SIGCONT)
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for w in self.workers:
            if w.proc is not None:
                try:
                    w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(w.proc.pid, signal.SIGKILL)
                    w.proc.wait()

    def suspend(self) -> None:
        self.suspended = True
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.suspended = False
        self._signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return any(w.proc is not None and w.proc.poll() is None for w in self.workers)

    # -- the Job controller's rules ------------------------------------------
    @property
    def indexed(self) -> bool:
        return self.rules.indexed

    def poll(self, now: datetime) -> None:
        if self.state != "Active" or self.deleting or self.suspended:
            return
        timeout = self.rules.deadline
        if timeout and time.monotonic() - self.started_at > timeout:
            self._signal(signal.SIGKILL)
            self._finish("Failed", now, "DeadlineExceeded", "Job was active longer than specified deadline")
            return
        for w in self.workers:
            if w.done or w.proc is None or w.proc.poll() is None:
                continue
            # A process killed by signal N reports -N; a container runtime reports 128+N
            # (SIGKILL, as an OOM kill: 137), and the exit-code rules are written for that.
            code = w.proc.returncode if w.proc.returncode >= 0 else 128 - w.proc.returncode
            self._release(w, w.group)  # before the pod is shown: an OOM kill is its reason
            w.exit_codes.append(code)
            w.ended_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            if code == 0:
                w.done = True
                continue
            action = self.rules.on_exit(code)
            if action == "Ignore":  # does not count towards the limit: run it again
                self._spawn(w)
                continue
            w.failures += 1
            if action == "FailJob":
                self._finish("Failed", now, "PodFailurePolicy", f"container step exited with code {code}")
                return
            if action == "FailIndex" or w.failures > self.retries:
                w.done = w.failed = True
            else:
                self._spawn(w)
        if all(w.done for w in self.workers):
            failed = [w.index for w in self.workers if w.failed]
            if not failed:
                self._finish("Succeeded", now)
            elif self.indexed:
                self._finish("Failed", now, "FailedIndexes", "Job has failed indexes")
            else:
                self._finish(
                    "Failed", now, "BackoffLimitExceeded", "Job has reached the specified backoff limit"
                )

    def _finish(
        self, state: JobState, now: datetime, reason: str | None = None, message: str | None = None
    ) -> None:
        self.state, self.reason, self.message = state, reason, message
        self.completion_time = ts(now)
        if state == "Failed":
            self._signal(signal.SIGKILL)
            self.message_of_failure = self.failure_message()

    def failure_message(self) -> str | None:
        """What the last failed worker printed last: its `error:` line, as a pod's termination message."""
        failed = [
            w for w in self.workers if w.failed or (self.state == "Failed" and w.exit_codes[-1:] != [0])
        ]
        for w in reversed(failed):
            if w.log is not None and w.log.exists():
                with w.log.open("rb") as f:
                    f.seek(max(0, w.log.stat().st_size - 8192))
                    text = f.read().decode(errors="replace")
                if text.strip():
                    return one_line(text)
        return None

    def view(self) -> JobView:
        failed_indexes = ",".join(str(w.index) for w in self.workers if w.failed) or None
        return JobView(
            name=self.name,
            step=self.step_name,
            attempt=self.attempt,
            state="Suspended" if self.suspended and self.state == "Active" else self.state,
            reason=self.reason,
            message=self.message,
            start_time=self.start_time,
            completion_time=self.completion_time if self.state == "Succeeded" else None,
            active=sum(1 for w in self.workers if not w.done),
            succeeded=sum(1 for w in self.workers if w.done and not w.failed),
            failed=sum(w.failures for w in self.workers),
            failed_indexes=failed_indexes if self.indexed else None,
            deleting=self.deleting,
            pod_message=self.message_of_failure,
        )

    # -- as the API would show it ---------------------------------------------
    def as_object(self) -> dict[str, Any]:
        """The Job as the API server would return it: the manifest plus the status the Job
        controller would write, so a controller reads a local Job exactly as a cluster's."""
        view = self.view()
        status: dict[str, Any] = {
            "startTime": view.start_time,
            "active": view.active,
            "ready": sum(1 for w in self.workers if w.running) if view.state == "Active" else 0,
            "succeeded": view.succeeded,
            "failed": view.failed,
        }
        if view.failed_indexes:
            status["failedIndexes"] = view.failed_indexes
        if view.state == "Succeeded":
            status["completionTime"] = view.completion_time
            status["conditions"] = [{"type": "Complete", "status": "True"}]
        elif view.state == "Failed":
            status["conditions"] = [
                {"type": "Failed", "status": "True", "reason": view.reason, "message": view.message}
            ]
        obj = {**self.manifest, "spec": {**self.manifest["spec"], "suspend": self.suspended}}
        obj["metadata"] = dict(self.manifest["metadata"])
        if self.deleting:
            obj["metadata"]["deletionTimestamp"] = self.completion_time or self.start_time
        obj["status"] = {k: v for k, v in status.items() if v is not None}
        return obj

    def pods(self) -> list[dict[str, Any]]:
        """Each worker's latest try as a pod: Running while its process runs, else its container's
        terminated state, with the termination message a failed container leaves (its last
        `error:` line)."""
        out = []
        for w in self.workers:
            if w.running and self.state == "Active":
                out.append(self._pod(w, "Running", {"running": {"startedAt": self.start_time}}))
                continue
            if not w.exit_codes:
                continue
            code = w.exit_codes[-1]
            reason = "Completed" if code == 0 else "OOMKilled" if w.oom_killed else "Error"
            terminated: dict[str, Any] = {"exitCode": code, "reason": reason}
            written = self._termination_message(w)
            if written:
                terminated["message"] = written
            if code != 0 and w.log is not None:
                message = written or self._tail_message(w)  # FallbackToLogsOnError
                if message:
                    terminated["message"] = message
                terminated["finishedAt"] = w.ended_at or self.completion_time or self.start_time
            out.append(self._pod(w, "Succeeded" if code == 0 else "Failed", {"terminated": terminated}))
        return out

    def _termination_message(self, w: Worker) -> str | None:
        """What the worker's container wrote to its termination message file (4 KiB at most)."""
        if self.launcher.termination is None:
            return None
        try:
            data = self.launcher.termination(w.index).read_bytes()[:4096]
        except OSError:
            return None
        return data.decode(errors="ignore") or None

    def _pod(self, w: Worker, phase: str, state: dict[str, Any]) -> dict[str, Any]:
        return {
            "metadata": {
                "name": self.pod_name(w),
                "labels": {"batch.kubernetes.io/job-name": self.name},
                "annotations": {"batch.kubernetes.io/job-completion-index": str(w.index)},
            },
            "status": {"phase": phase, "containerStatuses": [{"name": "step", "state": state}]},
        }

    def pod_name(self, w: Worker) -> str:
        return f"{self.name}-{w.index}"

    def log_tail(self, pod: str, lines: int) -> str | None:
        """The last `lines` lines of a worker's log (`kubectl logs --tail`), or None for no such pod."""
        for w in self.workers:
            if self.pod_name(w) == pod and w.log is not None and w.log.exists():
                with w.log.open("rb") as f:
                    f.seek(max(0, w.log.stat().st_size - 65536))
                    text = f.read().decode(errors="replace")
                return "".join(text.splitlines(keepends=True)[-lines:])
        return None

    def _tail_message(self, w: Worker) -> str | None:
        if w.log is None or not w.log.exists():
            return None
        with w.log.open("rb") as f:
            f.seek(max(0, w.log.stat().st_size - 8192))
            text = f.read().decode(errors="replace")
        return one_line(text) if text.strip() else None
