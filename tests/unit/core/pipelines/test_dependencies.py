"""Pins pipelineDependencies (core/pipelines/dependencies.py and its place in the planner): a
pipeline starts only when every pipeline it names has Completed, within maxAgeHours (or the
seed's max_age_hours); otherwise it stays Pending and DependenciesReady says which and why, with
one Event per new reason; a cycle through it is named; once started, the gate no longer matters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from dataworks.api import pipeline as api
from dataworks.core.kit.clock import ts
from dataworks.core.kit.plan import Meta
from dataworks.core.pipelines import planning, validation
from dataworks.core.pipelines.dependencies import Gate, Upstream, gate
from tests.builders.pipelines import T0, make_pipeline, make_status

NOW = T0 + timedelta(days=1)


def done(name: str, hours_ago: float, *after: str) -> Upstream:
    return Upstream(name, True, "Completed", ts(NOW - timedelta(hours=hours_ago)), after)


def deps(*items: dict[str, Any]) -> list[api.PipelineDependency]:
    return [api.PipelineDependency.model_validate(i) for i in items]


@pytest.mark.parametrize(
    ("wanted", "seen", "expected"),
    [
        pytest.param([], {}, None, id="none"),
        pytest.param(
            [{"name": "orders"}],
            {"orders": done("orders", 30)},
            Gate(True, "DependenciesCompleted", "completed: orders (30h00m ago)"),
            id="completed-any-time",
        ),
        pytest.param(
            [{"name": "orders", "maxAgeHours": 24}],
            {"orders": done("orders", 2)},
            Gate(True, "DependenciesCompleted", "completed: orders (2h00m ago)"),
            id="fresh",
        ),
        pytest.param(
            [{"name": "orders", "max_age_hours": 24}],
            {"orders": done("orders", 30)},
            Gate(False, "DependencyTooOld", "pipeline orders completed 30h00m ago, more than maxAgeHours 24"),
            id="too-old-seed-spelling",
        ),
        pytest.param(
            [{"name": "orders"}],
            {"orders": Upstream("orders", False)},
            Gate(False, "DependencyMissing", "pipeline orders does not exist"),
            id="missing",
        ),
        pytest.param(
            [{"name": "orders"}, {"name": "refunds"}],
            {"orders": Upstream("orders", True, "Running"), "refunds": Upstream("refunds", True, "Failed")},
            Gate(False, "DependencyNotCompleted", "pipeline orders is Running; pipeline refunds is Failed"),
            id="not-completed-names-each",
        ),
        pytest.param(
            [{"name": "orders"}],
            {
                "orders": Upstream("orders", True, "Running", None, ("billing",)),
                "billing": Upstream("billing", True, None, None, ("report",)),
            },
            Gate(
                False,
                "DependencyCycle",
                "pipelines report -> orders -> billing -> report depend on each other; remove one of these "
                "pipelineDependencies",
            ),
            id="cycle-through-others",
        ),
    ],
)
def test_gate(wanted: list[dict[str, Any]], seen: dict[str, Upstream], expected: Gate | None) -> None:
    assert gate("report", deps(*wanted), seen, NOW) == expected


def spec() -> dict[str, Any]:
    b = make_pipeline("report").step("a")
    b.spec["pipelineDependencies"] = [{"name": "orders", "maxAgeHours": 24}]
    return b.spec


def plan(g: Gate | None, old: api.PipelineStatus | None = None) -> planning.Plan:
    return planning.plan(Meta("report", "ns"), validation.validate_raw(spec()), old, [], now=NOW, gate=g)


def condition(p: planning.Plan) -> api.Condition:
    return next(c for c in p.status.conditions if c.type == "DependenciesReady")


def test_a_pipeline_waits_pending_saying_why_with_one_event_per_reason() -> None:
    waiting = Gate(False, "DependencyNotCompleted", "pipeline orders is Running")
    p = plan(waiting)
    assert p.create == []
    assert p.status.phase == "Pending"
    assert p.status.message == "waiting for pipelineDependencies: pipeline orders is Running"
    assert (condition(p).status, condition(p).reason) == ("False", "DependencyNotCompleted")
    assert [(e.reason, e.message) for e in p.events] == [
        ("WaitingForDependencies", "pipeline orders is Running")
    ]
    again = planning.plan(
        Meta("report", "ns"),
        validation.validate_raw(plan(None).validated.spec.model_dump(by_alias=True, exclude_none=True)),
        p.status,
        [],
        now=NOW,
        gate=waiting,  # type: ignore[union-attr]
    )
    assert again.events == []  # the same reason: no second Event


def test_it_starts_when_they_hold() -> None:
    p = plan(Gate(True, "DependenciesCompleted", "completed: orders (1s ago)"))
    assert [launch.step.name for launch in p.create] == ["a"]
    assert condition(p).status == "True"


def test_once_started_the_gate_no_longer_matters() -> None:
    running = make_status("report").step("a", "Running").set(startTime=ts(NOW - timedelta(minutes=1)))
    p = plan(Gate(False, "DependencyTooOld", "pipeline orders completed 30h ago"), running.build())
    assert p.status.phase == "Running"
    assert p.events == []
