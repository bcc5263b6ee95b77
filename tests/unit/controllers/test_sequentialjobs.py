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

    done = sqj_job("a").started().succeeded().pod(make_pod("s-a-x").exited(0, "Completed", message="rows=3"))
    children = {"Job": [done.build()]}
    reader = Pods(done.pods)
    observed = await c.observe(obj(spec, first.status), children, reader)
    assert reader.reads == 1
    second = c.plan(obj(spec, first.status), children, observed, T0 + timedelta(seconds=5))
    assert [j["metadata"]["name"] for j in second.create] == ["s-b"]
    assert second.status is not None
    assert second.status["steps"][0]["output"] == "rows=3"
    assert [e.reason for e in second.events] == ["JobCompleted", "JobStarted"]

    # Recorded: the pods of that Job are not read again, and an unchanged pass writes nothing.
    stored = {k: v for k, v in second.status.items() if v is not None}
    await c.observe(obj(spec, stored), children, reader)
    assert reader.reads == 1
    running_b = sqj_job("b").started().build()
    again = c.plan(
        obj(spec, second.status), {"Job": [done.build(), running_b]}, {}, T0 + timedelta(seconds=6)
    )
    assert (again.create, again.events) == ([], [])


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
    assert set(operator_main.CONTROLLERS) == {"pipelines", "sequentialjobs", "jobhandler"}
    assert SequentialJobController.info is api.INFO
    assert SequentialJobController.owns == ("Job",)
