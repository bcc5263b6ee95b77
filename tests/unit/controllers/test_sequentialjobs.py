"""The SequentialJob controller turns the planner's decisions into Actions: the next step's Job, the
status only when it changed, Events after it; `observe` reads the pods of a Job that finished since the
last status (and only then), for the step's output; validation is cached per generation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from dataworks.api import sequentialjob as api
from dataworks.controllers.sequentialjobs import SequentialJobController
from dataworks.core.kit.labels import JOB_NAME
from dataworks.local.executing import without_nulls
from dataworks.operator import main as operator_main
from tests.builders.jobs import make_pod
from tests.builders.sequentialjobs import T0, make_sqj, sqj_job


class Pods:
    """A Reader that answers pod lists from given pods, and counts the reads."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods, self.reads = pods, 0

    async def list(self, kind: str, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        self.reads += 1
        assert (kind, namespace) == ("Pod", "ns")
        return [p for p in self.pods if p["metadata"]["labels"].get(JOB_NAME) == labels[JOB_NAME]]


def obj(spec: dict[str, Any], status: dict[str, Any] | None = None, generation: int = 1) -> dict[str, Any]:
    meta = {"name": "s", "namespace": "ns", "uid": "u-1", "generation": generation}
    return {
        "apiVersion": "dataworks.io/v1",
        "kind": "SequentialJob",
        "metadata": meta,
        "spec": spec,
        "status": status,
    }


async def test_a_sequence_through_the_controller() -> None:
    c = SequentialJobController()
    spec = make_sqj("s", "a", "b").spec
    first = c.plan(obj(spec), {"Job": []}, None, T0)
    (job,) = first.create
    assert (job["kind"], job["metadata"]["name"]) == ("Job", "s-a")
    assert job["metadata"]["labels"][api.OWNER_LABEL] == "s"
    assert first.status is not None
    assert [e.reason for e in first.events] == ["JobStarted"]

    # a succeeded: b starts first; a's pods are read on the pass right after, for its output.
    done = sqj_job("a").started().succeeded().pod(make_pod("s-a-x").exited(0, "Completed", message="rows=3"))
    children = {"Job": [done.build()]}
    reader = Pods(done.pods)
    observed = await c.observe(obj(spec, first.status), children, reader)
    assert (reader.reads, observed) == (0, {})
    second = c.plan(obj(spec, first.status), children, observed, T0 + timedelta(seconds=5))
    assert [j["metadata"]["name"] for j in second.create] == ["s-b"]
    assert second.requeue_at == T0 + timedelta(seconds=5)
    assert [e.reason for e in second.events] == ["JobCompleted", "JobStarted"]
    assert second.status is not None
    stored = without_nulls(second.status)
    children = {"Job": [done.build(), sqj_job("b").started().build()]}
    observed = await c.observe(obj(spec, stored), children, reader)
    assert reader.reads == 1
    third = c.plan(obj(spec, stored), children, observed, T0 + timedelta(seconds=5))
    assert third.status is not None
    assert third.status["steps"][0]["output"] == "rows=3"
    assert (third.create, third.events, third.requeue_at) == ([], [], None)

    # Read: the pods of that Job are not read again, and an unchanged pass writes nothing.
    stored = without_nulls(third.status)
    await c.observe(obj(spec, stored), children, reader)
    assert reader.reads == 1
    again = c.plan(obj(spec, stored), children, {}, T0 + timedelta(seconds=6))
    assert (again.create, again.events, again.status) == ([], [], None)


async def test_the_last_steps_pods_are_read_before_the_sequence_completes() -> None:
    c = SequentialJobController()
    spec = make_sqj("s", "a").spec
    first = without_nulls(c.plan(obj(spec), {"Job": []}, None, T0).status or {})
    done = sqj_job("a").started().succeeded().pod(make_pod("s-a-x").exited(0, "Completed", message="total=9"))
    children = {"Job": [done.build()]}
    observed = await c.observe(obj(spec, first), children, Pods(done.pods))
    last = c.plan(obj(spec, first), children, observed, T0 + timedelta(seconds=5))
    assert last.status is not None
    assert (last.status["phase"], last.status["steps"][0]["output"]) == ("Completed", "total=9")


def test_an_invalid_spec_is_failed_once_and_validated_once_per_generation() -> None:
    c = SequentialJobController()
    spec = make_sqj("s", "a").container("b", volumeMounts=[{"name": "v", "mountPath": "/v"}]).spec
    bad = c.plan(obj(spec), {"Job": []}, None, T0)
    assert bad.create == []
    assert bad.status is not None
    assert bad.status["phase"] == "Failed"
    assert [e.reason for e in bad.events] == ["ValidationFailed"]
    spec["template"] = {"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}  # cached: same generation
    assert c.plan(obj(spec, bad.status), {"Job": []}, None, T0).create == []
    fixed = c.plan(obj(spec, bad.status, generation=2), {"Job": []}, None, T0)
    assert [j["metadata"]["name"] for j in fixed.create] == ["s-a"]


def test_the_operator_knows_the_controller() -> None:
    assert set(operator_main.CONTROLLERS) == {
        "pipelines",
        "scheduledpipelines",
        "sequentialjobs",
        "trainingjobs",
        "streamingjobs",
        "jobhandler",
    }
    assert SequentialJobController.info is api.INFO
    assert SequentialJobController.owns == ("Job",)


async def test_the_jobs_of_earlier_runs_are_not_read_again() -> None:
    c = SequentialJobController()
    status = {
        "phase": "Running",
        "observedGeneration": 1,
        "steps": [
            {"name": "a", "index": 0, "phase": "Completed", "attempt": 1, "jobName": "s-a"},
            {"name": "b", "index": 1, "phase": "Running", "attempt": 2, "jobName": "s-b-a2"},
        ],
    }
    earlier = sqj_job("b").started().failed().pod(make_pod("s-b-x").exited(1, message="boom"))
    now = sqj_job("b", 2).started().succeeded().pod(make_pod("s-b-a2-x").exited(0, "Completed", message="ok"))
    reader = Pods([*earlier.pods, *now.pods])
    spec = make_sqj("s", "a", "b").spec
    observed = await c.observe(obj(spec, status), {"Job": [earlier.build(), now.build()]}, reader)
    assert reader.reads == 1
    assert observed["s-b-a2"].output == "ok"
