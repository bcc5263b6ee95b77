"""Pins step conditions (core/pipelines/whens.py, conditions.py and their use in scheduling):
the seed's three condition types become CEL, and a bad one names its field; a condition that does
not compile, or reads a step the step does not depend on, is refused before anything runs; a
condition decides run, skip (naming the expression and the values it read) or fail; a skipped
step's dependents are skipped too unless it says `onSkipped: run`; and a whole pipeline ends
Completed with its skipped steps, from outputs its steps reported."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from dataworks.core.pipelines import conditions, scheduling, validation, whens
from tests.builders.pipelines import Sim, make_pipeline, make_status, make_work

WED_EVENING = datetime(2026, 12, 2, 19, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("when", "conds", "deps", "expected", "problems"),
    [
        pytest.param(None, None, (), None, [], id="no-condition"),
        pytest.param(" steps.a.outputs.rows > 0 ", None, ("a",), "steps.a.outputs.rows > 0", [], id="when"),
        pytest.param(
            None,
            [{"type": "data_size_threshold", "min_size_gb": 15}],
            ("a", "b"),
            'gb(steps["a"].outputs.bytes + steps["b"].outputs.bytes) >= 15.0',
            [],
            id="size-of-the-dependencies",
        ),
        pytest.param(
            None,
            [{"type": "data_size_threshold", "min_size_gb": "0.5", "step": "fetch-all"}],
            ("x",),
            'gb(steps["fetch-all"].outputs.bytes) >= 0.5',
            [],
            id="size-of-a-named-step",
        ),
        pytest.param(
            None,
            [{"type": "business_hours_only"}],
            (),
            'inHours(now, "09:00", "18:00", "UTC")',
            [],
            id="business-hours",
        ),
        pytest.param(
            None,
            [{"type": "business_hours_only", "timezone": "Europe/Berlin"}],
            (),
            'inHours(now, "09:00", "18:00", "Europe/Berlin")',
            [],
            id="business-hours-in-a-zone",
        ),
        pytest.param(
            None,
            [{"type": "previous_step_result", "step": "check", "required_result": "passed"}],
            ("check",),
            'steps["check"].outputs.result == "passed"',
            [],
            id="previous-result",
        ),
        pytest.param(
            "params.full",
            [{"type": "business_hours_only"}],
            (),
            '(params.full) && (inHours(now, "09:00", "18:00", "UTC"))',
            [],
            id="all-must-hold",
        ),
        pytest.param(
            None,
            [{"type": "data_size_threshold"}],
            ("a",),
            None,
            [("config.conditions[0].min_size_gb", "must be a number of GiB, e.g. 15")],
            id="size-missing",
        ),
        pytest.param(
            None,
            [{"type": "data_size_threshold", "min_size_gb": 1}],
            (),
            None,
            [
                (
                    "config.conditions[0].step",
                    "data_size_threshold measures the bytes of a step: name it in step, or depend on it",
                )
            ],
            id="size-of-nothing",
        ),
        pytest.param(
            None,
            [{"type": "previous_step_result", "required_result": "ok"}],
            (),
            None,
            [("config.conditions[0].step", "must name the step whose result is required")],
            id="result-of-no-step",
        ),
        pytest.param(
            None,
            [{"type": "weekend_only"}],
            (),
            None,
            [
                (
                    "config.conditions[0].type",
                    "unknown condition type 'weekend_only'; the types are data_size_threshold, "
                    "business_hours_only, previous_step_result, or use when:",
                )
            ],
            id="unknown-type",
        ),
        pytest.param(
            None,
            {"type": "business_hours_only"},
            (),
            None,
            [("config.conditions", "must be a list of conditions, each with a type")],
            id="not-a-list",
        ),
    ],
)
def test_seed_conditions_become_one_expression(
    when: str | None, conds: Any, deps: tuple[str, ...], expected: str | None, problems: list[tuple[str, str]]
) -> None:
    assert whens.expression(when, conds, deps) == (expected, problems)


def errors_of(spec: dict[str, Any]) -> list[str]:
    validated, errors = validation.validate_raw(spec)
    assert (validated is None) == bool(errors)
    return [str(e) for e in errors]


@pytest.mark.parametrize(
    ("when", "message"),
    [
        pytest.param(
            "steps.a.outputs.rows >", "step 'c': when: line 1, column 23: Syntax error", id="syntax"
        ),
        pytest.param(
            "stepz.a.phase == 'Completed'", "step 'c': when: unknown variable 'stepz'", id="variable"
        ),
        pytest.param(
            "steps.b.outputs.rows > 1",
            "step 'c': when: reads step 'b', which it does not depend on; add 'b' to dependsOn",
            id="not-a-dependency",
        ),
        pytest.param(
            'steps["zz"].phase == "Completed"',
            "step 'c': when: reads step 'zz', which is not a step of this pipeline",
            id="no-such-step",
        ),
        pytest.param(
            "steps.load-db.outputs.rows > 1",
            "step 'c': when: steps.load-db reads as a subtraction; write steps[\"load-db\"]",
            id="dashed-name",
        ),
    ],
)
def test_a_condition_that_cannot_run_is_refused_before_anything_runs(when: str, message: str) -> None:
    b = make_pipeline().step("a").step("b").step("load-db").step("c", depends_on=["a"], when=when)
    (error,) = errors_of(b.spec)
    assert error.startswith(message), error


def test_a_transitive_dependency_may_be_read() -> None:
    b = (
        make_pipeline()
        .step("a")
        .step("b", depends_on=["a"])
        .step("c", depends_on=["b"], when="steps.a.outputs.x")
    )
    assert errors_of(b.spec) == []


def test_seed_condition_errors_name_the_step_and_field() -> None:
    b = make_pipeline().step("a", config={"conditions": [{"type": "nope"}]})
    (error,) = errors_of(b.spec)
    assert error.startswith("step 'a': config.conditions[0].type: unknown condition type 'nope'")


def decide(when: str, seen: dict[str, Any]) -> conditions.Decision:
    b = make_pipeline().step("fetch").step("x", depends_on=["fetch"], when=when)
    validated, errors = validation.validate_raw(b.spec)
    assert validated is not None, errors
    return conditions.decide(validated.by_name()["x"], seen)


def seen(rows: Any = 5, now: datetime = WED_EVENING) -> dict[str, Any]:
    fetch = ("Completed", {"rows": rows, "bytes": 3 * 2**30})
    return conditions.variables({"fetch": fetch}, params={}, pipeline={"name": "p"}, now=now)


@pytest.mark.parametrize(
    ("when", "variables", "outcome", "message"),
    [
        pytest.param("steps.fetch.outputs.rows > 1", seen(), "run", "", id="true"),
        pytest.param(
            "steps.fetch.outputs.rows > 10",
            seen(),
            "skip",
            "when: steps.fetch.outputs.rows > 10 is false (steps.fetch.outputs.rows = 5)",
            id="false-names-the-values",
        ),
        pytest.param(
            "gb(steps.fetch.outputs.bytes) >= 15.0",
            seen(),
            "skip",
            "when: gb(steps.fetch.outputs.bytes) >= 15.0 is false (steps.fetch.outputs.bytes = 3221225472)",
            id="size",
        ),
        pytest.param(
            "businessHours(now)",
            seen(),
            "skip",
            "when: businessHours(now) is false (now = 2026-12-02T19:30:00+00:00)",
            id="after-hours",
        ),
        pytest.param(
            "steps.fetch.outputs.result == 'passed'",
            seen(),
            "fail",
            "when: steps.fetch.outputs.result == 'passed': no such key: 'result'",
            id="missing-output-fails",
        ),
        pytest.param(
            "steps.fetch.outputs.rows",
            seen(),
            "fail",
            "when: steps.fetch.outputs.rows: must be true or false, got 5",
            id="not-a-boolean",
        ),
    ],
)
def test_decide(when: str, variables: dict[str, Any], outcome: str, message: str) -> None:
    d = decide(when, variables)
    assert (d.outcome, d.message) == (outcome, message)


def conditional(on_skipped: str = "skip", when: str = "steps.check.outputs.result == 'passed'") -> Sim:
    """check -> publish (conditional) -> notify; and check -> archive, unconditional."""
    b = (
        make_pipeline()
        .step("check")
        .step("publish", depends_on=["check"], when=when, onSkipped=on_skipped)
        .step("notify", depends_on=["publish"])
        .step("archive", depends_on=["check"])
    )
    return Sim(b)


@pytest.mark.parametrize(
    ("result", "on_skipped", "expected"),
    [
        pytest.param(
            "passed",
            "skip",
            {"check": "Completed", "publish": "Completed", "notify": "Completed", "archive": "Completed"},
            id="condition-true",
        ),
        pytest.param(
            "warned",
            "skip",
            {"check": "Completed", "publish": "Skipped", "notify": "Skipped", "archive": "Completed"},
            id="false-skips-dependents",
        ),
        pytest.param(
            "warned",
            "run",
            {"check": "Completed", "publish": "Skipped", "notify": "Completed", "archive": "Completed"},
            id="false-with-onSkipped-run",
        ),
    ],
)
def test_a_conditional_pipeline_runs_to_completion(
    result: str, on_skipped: str, expected: dict[str, str]
) -> None:
    sim = conditional(on_skipped)
    sim.outputs["check"] = json.dumps({"result": result, "rows": 3})
    status = sim.run()
    assert status.phase == "Completed"
    assert {s.name: s.phase for s in status.step_statuses} == expected
    by = {s.name: s for s in status.step_statuses}
    assert by["check"].outputs == {"result": result, "rows": 3}
    assert "publish" not in sim.created if expected["publish"] == "Skipped" else "publish" in sim.created
    if expected["publish"] == "Skipped":
        assert by["publish"].reason == "ConditionFalse"
        assert by["publish"].message == (
            "when: steps.check.outputs.result == 'passed' is false "
            f'(steps.check.outputs.result = "{result}")'
        )
    if expected["notify"] == "Skipped":
        assert (by["notify"].reason, by["notify"].message) == (
            "UpstreamSkipped",
            "skipped because step publish skipped",
        )


def test_a_condition_that_fails_at_run_time_fails_the_step_and_the_pipeline() -> None:
    sim = conditional(when="steps.check.outputs.rows > 1")
    sim.outputs["check"] = "not json"
    status = sim.run()
    by = {s.name: s for s in status.step_statuses}
    assert by["check"].outputs == {"message": "not json"}
    assert (by["publish"].phase, by["publish"].reason) == ("Failed", "ConditionError")
    assert by["publish"].message == "when: steps.check.outputs.rows > 1: no such key: 'rows'"
    assert status.phase == "Failed"
    assert any(e.reason == "StepFailed" and "no such key" in e.message for e in sim.events)


def test_a_step_after_a_skipped_one_runs_without_its_output() -> None:
    b = (
        make_pipeline()
        .step("check")
        .step("publish", depends_on=["check"], when="false", onSkipped="run")
        .step("notify", depends_on=["check", "publish"])
    )
    status = make_status().step("check", "Completed").step("publish").step("notify")
    w = make_work(b, status)
    scheduling.schedule(w)
    (launch,) = w.plan.create
    assert (launch.step.name, launch.absent_inputs) == ("notify", ("publish",))
    assert w.by_name["publish"].phase == "Skipped"
