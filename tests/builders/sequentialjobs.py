"""Fluent builders and a Job simulator for SequentialJob planner tests (no cluster, no mocks:
the simulator plays the Job controller by turning Launches into JobViews).

    make_sqj("s").container("a").container("b").policy("b", onFailure="continue").set(suspend=True)
    make_status().step("a", "Completed").step("b", "Running")
    make_work(builder, status, [sqj_job("b").started()])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dataworks.api import sequentialjob as api
from dataworks.core.kit import clock, naming
from dataworks.core.kit.jobs import JobView
from dataworks.core.kit.plan import Event, Meta
from dataworks.core.sequentialjobs import planning, validation
from dataworks.core.sequentialjobs.work import PodFacts, Work
from tests.builders.jobs import JobBuilder, make_job

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FATE = "fate.testcluster.dataworks.io/"


def stamp(seconds: float = 0) -> str:
    """The status timestamp `seconds` after T0."""
    return clock.ts(T0 + timedelta(seconds=seconds))


class SqjBuilder:
    """A SequentialJob spec, one container at a time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.spec: dict[str, Any] = {"containers": []}

    def container(self, name: str, **kw: Any) -> SqjBuilder:
        self.spec["containers"].append({"name": name, "image": "busybox:1.36", "command": ["true"], **kw})
        return self

    def policy(self, name: str, **kw: Any) -> SqjBuilder:
        """Per-step settings in spec.steps (wire spellings: backoffLimit, onFailure, ...)."""
        self.spec.setdefault("steps", []).append({"name": name, **kw})
        return self

    def set(self, **kw: Any) -> SqjBuilder:
        self.spec.update(kw)
        return self

    def manifest(self) -> dict[str, Any]:
        return {
            "apiVersion": "dataworks.io/v1",
            "kind": "SequentialJob",
            "metadata": {"name": self.name},
            "spec": self.spec,
        }


def make_sqj(name: str = "s", *containers: str) -> SqjBuilder:
    b = SqjBuilder(name)
    for c in containers:
        b.container(c)
    return b


class StatusBuilder:
    """An old SequentialJobStatus, one step at a time (in container order)."""

    def __init__(self, owner: str, phase: str) -> None:
        self.owner = owner
        self.fields: dict[str, Any] = {"phase": phase, "observed_generation": 1}
        self.steps: list[api.StepStatus] = []

    def step(
        self, name: str, phase: str = "Waiting", *, attempt: int = 1, job: str | None = None, **kw: Any
    ) -> StatusBuilder:
        if job is None and phase in {"Running", "Completed", "Failed", "Cancelled"}:
            job = naming.job_name(self.owner, name, attempt)
        index = len(self.steps)
        self.steps.append(
            api.StepStatus(name=name, index=index, phase=phase, attempt=attempt, job_name=job, **kw)
        )
        return self

    def set(self, **kw: Any) -> StatusBuilder:
        self.fields.update(kw)
        return self

    def build(self) -> api.SequentialJobStatus:
        return api.SequentialJobStatus(**self.fields, steps=[s.model_copy() for s in self.steps])


def make_status(phase: str = "Running", owner: str = "s") -> StatusBuilder:
    return StatusBuilder(owner, phase)


def sqj_job(step: str, attempt: int = 1, *, owner: str = "s") -> JobBuilder:
    """The Job the planner launches for run `attempt` of `step` (its deterministic name and labels)."""
    return make_job(naming.job_name(owner, step, attempt)).of(step, attempt).label(api.OWNER_LABEL, owner)


def make_work(
    builder: SqjBuilder,
    status: StatusBuilder | api.SequentialJobStatus | None = None,
    jobs: list[JobBuilder | JobView] | tuple[JobBuilder | JobView, ...] = (),
    *,
    facts: dict[str, PodFacts] | None = None,
    now: datetime = T0,
    generation: int = 1,
) -> Work:
    """The planning pass of a valid SequentialJob: the state each policy module reads and updates."""
    validated, errors = validation.validate_raw(builder.spec, builder.name)
    assert validated is not None, [str(e) for e in errors]
    old = status.build() if isinstance(status, StatusBuilder) else status
    views = [j.view() if isinstance(j, JobBuilder) else j for j in jobs]
    return Work(
        meta=Meta(builder.name, "ns", generation=generation),
        old=old or api.SequentialJobStatus(),
        spec=validated.spec,
        now=now,
        jobs=views,
        facts=facts,
    )


def phases(w: Work | api.SequentialJobStatus) -> dict[str, str]:
    status = w.status if isinstance(w, Work) else w
    return {s.name: s.phase for s in status.steps}


def plan(
    builder: SqjBuilder,
    status: api.SequentialJobStatus | None,
    jobs: list[JobView],
    *,
    now: datetime = T0,
    facts: dict[str, PodFacts] | None = None,
    generation: int = 1,
) -> planning.Plan:
    """Validate the builder's spec as the operator does, then plan."""
    checked = validation.validate_raw(builder.spec, builder.name)
    meta = Meta(builder.name, "ns", generation=generation)
    return planning.plan(meta, checked, status, jobs, now=now, facts=facts)


@dataclass
class Sim:
    """Runs the planner to a fixed point, playing the Job controller: `fail` maps a step to the
    runs (attempts) whose Job fails, `outputs` a step to its termination message."""

    builder: SqjBuilder
    fail: dict[str, set[int]] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    status: api.SequentialJobStatus | None = None
    jobs: dict[str, JobView] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    now: datetime = T0
    generation: int = 1

    def reconcile(self) -> planning.Plan:
        self.now += timedelta(seconds=1)
        facts = {
            j.name: PodFacts(
                output=self.outputs.get(j.step), reason=None if j.state == "Succeeded" else "Error"
            )
            for j in self.jobs.values()
            if j.state in {"Succeeded", "Failed"}
        }
        p = plan(
            self.builder,
            self.status,
            list(self.jobs.values()),
            now=self.now,
            facts=facts,
            generation=self.generation,
        )
        for launch in p.create:
            if launch.job_name not in self.jobs:
                self.created.append(launch.job_name)
                step = launch.container.name
                self.jobs[launch.job_name] = JobView(launch.job_name, step, launch.attempt, "Active")
        for name in p.delete:
            self.jobs.pop(name, None)
        self.status = p.status
        self.events += p.events
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
                    message="Job has reached the specified backoff limit" if failed else None,
                )

    def run(self, rounds: int = 50) -> api.SequentialJobStatus:
        for _ in range(rounds):
            p = self.reconcile()
            if p.finished:
                return p.status
            self.finish_running()
        raise AssertionError(f"did not finish: {self.status}")

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]


def _one(**kw: Any) -> dict[str, Any]:
    """A one-container spec with `kw` added to the container."""
    return {"containers": [{"name": "a", "image": "busybox:1.36", **kw}]}


# The bad-input matrix: (name, spec, what the user is told). Each message names the field.
# Refused by the API server (422) from the CRD's schema and CEL rules:
REJECTED: list[tuple[str, dict[str, Any], str]] = [
    (
        "no-containers",
        {"containers": []},
        "spec.containers: Invalid value: 0: spec.containers in body should have at least 1 items",
    ),
    (
        "duplicate-names",
        {"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]},
        'spec.containers[1]: Duplicate value: {"name":"a"}',
    ),
    (
        "x" * 50,  # with the container's name, longer than a Job name may be
        {"containers": [{"name": "c" * 20, "image": "x"}]},
        "spec.containers: Invalid value: metadata.name and each container name make the step's Job name",
    ),
    ("no-image", {"containers": [{"name": "a"}]}, "spec.containers[0].image: Required value"),
    ("bad-container-name", _one(name="Extract_1"), 'spec.containers[0].name: Invalid value: "Extract_1"'),
    (
        "bad-on-failure",
        {**_one(), "steps": [{"name": "a", "onFailure": "abort"}]},
        'spec.steps[0].onFailure: Unsupported value: "abort"',
    ),
    (
        "negative-backoff-limit",
        {**_one(), "steps": [{"name": "a", "backoffLimit": -1}]},
        "spec.steps[0].backoffLimit: Invalid value: -1",
    ),
    (
        "policy-of-no-container",
        {**_one(), "steps": [{"name": "b", "backoffLimit": 1}]},
        "spec.steps: Invalid value: each entry of spec.steps must name a container of spec.containers",
    ),
    (
        "retry-of-no-container",
        {**_one(), "retry": {"id": "r1", "step": "b"}},
        "spec.retry.step: Invalid value: spec.retry.step must name a container of spec.containers",
    ),
    (
        "containers-in-the-template",
        {**_one(), "template": {"spec": {"containers": [{"name": "x", "image": "x"}]}}},
        "spec.template.spec.containers: Invalid value: the steps are spec.containers",
    ),
    (
        "restart-always",
        {**_one(), "template": {"spec": {"restartPolicy": "Always"}}},
        'spec.template.spec.restartPolicy: Unsupported value: "Always"',
    ),
    (
        "fractional-cpu-number",
        _one(resources={"limits": {"cpu": 0.5}}),
        'spec.containers[0].resources.limits.cpu: Invalid value: "number"',
    ),
]

# Refused with 400 by a strict create (kubectl apply, dataworks run): not a Kubernetes field.
UNKNOWN_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    (
        "misspelt-image",
        {"containers": [{"name": "a", "image": "x", "imagee": "y"}]},
        'strict decoding error: unknown field "spec.containers[0].imagee"',
    ),
]

# Accepted by the API server, failed by the operator (and the local runtime) with ValidationFailed:
INVALID: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown-volume",
        _one(volumeMounts=[{"name": "data", "mountPath": "/data"}]),
        "spec.containers[0].volumeMounts[0].name: no volume 'data' in spec.template.spec.volumes",
    ),
    (
        "bad-quantity",
        _one(resources={"limits": {"memory": "lots"}}),
        'spec.containers[0].resources.limits.memory: "lots" is not a Kubernetes quantity',
    ),
    (
        "request-over-limit",
        _one(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
        "spec.containers[0].resources.requests.cpu: 2 is more than its limit 1",
    ),
    (
        "value-and-value-from",
        _one(env=[{"name": "X", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
        "spec.containers[0].env[0].valueFrom: X: set value or valueFrom, not both",
    ),
    (
        "bad-label-value",
        {**_one(), "template": {"metadata": {"labels": {"team": "data eng"}}}},
        "spec.template.metadata.labels[team]: 'data eng' is not a valid label value",
    ),
]
