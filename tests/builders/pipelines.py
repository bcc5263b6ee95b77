"""Fluent builders and a Job simulator for planner tests (no cluster, no mocks:
the simulator plays the Job controller by turning Launches into JobViews).

For one policy at a time: `make_status()` builds an old status step by step, and
`make_work(builder, status, jobs)` the planning pass a policy module reads and updates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dataworks.api import pipeline as api
from dataworks.core.kit import clock, naming
from dataworks.core.kit.jobs import JobView
from dataworks.core.kit.plan import Event, Meta
from dataworks.core.pipelines import planning, validation
from dataworks.core.pipelines.work import Work
from tests.builders.jobs import JobBuilder

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FATE = "fate.testcluster.dataworks.io/"  # the test control plane's pod-fate annotations


def step(
    name: str, depends_on: list[str] | None = None, *, fate: dict[str, str] | None = None, **kw: Any
) -> dict[str, Any]:
    """A container step; `fate` keys (without prefix) set its pods' fate on the test cluster."""
    s: dict[str, Any] = {"name": name, "type": "container", "image": "busybox:1.36", "command": ["true"]}
    if depends_on:
        s["dependsOn"] = depends_on
    annotations = {FATE + "duration": "300ms", **{FATE + k: v for k, v in (fate or {}).items()}}
    s["annotations"] = annotations
    s.update(kw)
    return {k: v for k, v in s.items() if v is not None}


def manifest(name: str, steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "dataworks.io/v1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"steps": steps, **spec},
    }


class PipelineBuilder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.spec: dict[str, Any] = {"steps": []}

    def step(
        self, name: str, type_: str = "container", depends_on: list[str] | None = None, **kw: Any
    ) -> PipelineBuilder:
        s: dict[str, Any] = {"name": name, "type": type_, "dependsOn": depends_on or []}
        if type_ == "container":
            s["image"] = "busybox"
        s.update(kw)
        self.spec["steps"].append(s)
        return self

    def set(self, **kw: Any) -> PipelineBuilder:
        self.spec.update(kw)
        return self


def make_pipeline(name: str = "p") -> PipelineBuilder:
    return PipelineBuilder(name)


def at(text: str) -> datetime:
    """A status timestamp as the `now` a planner takes."""
    return clock.parse_ts(text)


def stamp(seconds: float = 0) -> str:
    """The status timestamp `seconds` after T0."""
    return clock.ts(T0 + timedelta(seconds=seconds))


class StatusBuilder:
    """An old PipelineStatus, one step at a time (manifest order is the caller's)."""

    def __init__(self, pipeline: str, phase: str) -> None:
        self.pipeline = pipeline
        self.fields: dict[str, Any] = {"phase": phase}
        self.steps: list[api.StepStatus] = []

    def step(
        self, name: str, phase: str = "Waiting", *, attempt: int = 1, job: str | None = None, **kw: Any
    ) -> StatusBuilder:
        """A step status; a step that started (Running, Completed, Failed) gets its Job's name."""
        if job is None and phase in {"Running", "Completed", "Failed"}:
            job = naming.job_name(self.pipeline, name, attempt)
        self.steps.append(api.StepStatus(name=name, phase=phase, attempt=attempt, job_name=job, **kw))
        return self

    def set(self, **kw: Any) -> StatusBuilder:
        self.fields.update(kw)
        return self

    def build(self) -> api.PipelineStatus:
        return api.PipelineStatus(**self.fields, step_statuses=[s.model_copy() for s in self.steps])


def make_status(pipeline: str = "p", phase: str = "Running") -> StatusBuilder:
    return StatusBuilder(pipeline, phase)


def make_work(
    builder: PipelineBuilder,
    status: StatusBuilder | api.PipelineStatus | None = None,
    jobs: list[JobBuilder | JobView] | tuple[JobBuilder | JobView, ...] = (),
    *,
    now: datetime = T0,
    generation: int = 1,
    settings: planning.Settings | None = None,
) -> Work:
    """The planning pass of a valid pipeline: the state each policy module reads and updates."""
    settings = settings or planning.Settings()
    validated, errors = validation.validate_raw(builder.spec, max_parallelism=settings.max_parallelism)
    assert validated is not None, errors
    old = status.build() if isinstance(status, StatusBuilder) else status
    views = [j.view() if isinstance(j, JobBuilder) else j for j in jobs]
    return Work(
        meta=Meta(builder.name, "ns", generation=generation),
        old=old or api.PipelineStatus(),
        validated=validated,
        now=now,
        jobs=views,
    )


def phases(w: Work) -> dict[str, str]:
    """Each step's phase after a policy ran."""
    return {s.name: s.phase for s in w.status.step_statuses}


def plan(
    meta: Meta,
    spec: dict[str, Any],
    status: api.PipelineStatus | None,
    jobs: list[JobView],
    *,
    now: datetime,
    settings: planning.Settings | None = None,
) -> planning.Plan:
    """Validate a raw spec as the operator does, then plan."""
    settings = settings or planning.Settings()
    checked = validation.validate_raw(spec, max_parallelism=settings.max_parallelism)
    return planning.plan(meta, checked, status, jobs, now=now, settings=settings)


@dataclass
class Sim:
    """Runs the planner to a fixed point; `fail` maps step -> attempts that fail."""

    builder: PipelineBuilder
    fail: dict[str, set[int]] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)  # step -> its termination message
    status: api.PipelineStatus | None = None
    jobs: dict[str, JobView] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    now: datetime = T0
    running_by_round: list[list[str]] = field(default_factory=list)
    settings: planning.Settings = field(default_factory=planning.Settings)

    def reconcile(self) -> planning.Plan:
        self.now += timedelta(seconds=1)
        p = plan(
            Meta(self.builder.name, "ns"),
            self.builder.spec,
            self.status,
            list(self.jobs.values()),
            now=self.now,
            settings=self.settings,
        )
        for launch in p.create:
            if launch.job_name not in self.jobs:
                self.created.append(launch.step.name)
                self.jobs[launch.job_name] = JobView(
                    launch.job_name, launch.step.name, launch.attempt, "Active"
                )
        for name in p.delete:
            self.jobs.pop(name, None)
        self.status = p.status
        self.events += p.events
        self.running_by_round.append([s.name for s in p.status.step_statuses if s.phase == "Running"])
        return p

    def finish_running(self) -> None:
        """The Job controller ends every active Job, failing those listed in `fail`."""
        for name, j in list(self.jobs.items()):
            if j.state == "Active":
                failed = j.attempt in self.fail.get(j.step, set())
                self.jobs[name] = JobView(
                    j.name,
                    j.step,
                    j.attempt,
                    "Failed" if failed else "Succeeded",
                    reason="BackoffLimitExceeded" if failed else None,
                    pod_outputs=None if failed else (self.outputs.get(j.step, ""),),
                )

    def run(self, rounds: int = 50) -> api.PipelineStatus:
        for _ in range(rounds):
            p = self.reconcile()
            if p.finished:
                return p.status
            self.finish_running()
        raise AssertionError(f"did not finish: {self.status}")

    def phase(self, step: str) -> str:
        assert self.status is not None
        return next(s.phase for s in self.status.step_statuses if s.name == step)


CHECK_SAYS = '{"result": "warned", "rows": 3}'
CONDITIONAL_PHASES = {
    "check": "Completed",
    "publish": "Skipped",
    "quarantine": "Completed",
    "notify": "Completed",
    "report": "Skipped",
}


def conditional_manifest(name: str = "conditional", *, fate: dict[str, str] | None = None) -> dict[str, Any]:
    """One pipeline, run locally and on the test cluster alike: `check` reports its outputs
    in its termination message; `publish` runs only if it passed, `quarantine` only if it
    warned; `notify` follows `publish` even when it is skipped (onSkipped: run); `report`
    follows it by default, so it is skipped with it. CONDITIONAL_PHASES is the outcome."""

    def sh(script: str) -> list[str]:
        return ["sh", "-c", script]

    says = fate or {}
    check = step(
        "check",
        command=sh(f"printf '%s' '{CHECK_SAYS}' > /dev/termination-log"),
        fate={**says, "message": CHECK_SAYS},
    )
    return manifest(
        name,
        [
            check,
            step(
                "publish",
                ["check"],
                fate=says,
                when='steps.check.outputs.result == "passed"',
                onSkipped="run",
            ),
            step("quarantine", ["check"], fate=says, when='steps.check.outputs.result == "warned"'),
            step("notify", ["publish"], fate=says),
            step(
                "report",
                ["quarantine", "publish"],
                fate=says,
                config={
                    "conditions": [
                        {"type": "previous_step_result", "step": "check", "required_result": "passed"}
                    ]
                },
            ),
        ],
    )
