"""Conditional steps on the real control plane: the outputs come from the check step's real
termination message, and the same pipeline ends as it does locally (tests/local/test_conditions.py).

Two ways the check step speaks: painted by the fate annotation `message` (the harness writes it as
the container's termination message), or run for real as a process (exec) whose shell writes
/dev/termination-log. Either way the operator reads it from the pod's status."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube import Client
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event

from tests.builders.pipelines import CONDITIONAL_PHASES, conditional_manifest
from tests.cluster.pipelines import create, jobs, manifest, step, wait_phase

pytestmark = pytest.mark.usefixtures("operator")


@pytest.mark.parametrize("fate", [pytest.param({}, id="painted"), pytest.param({"exec": "true"}, id="exec")])
def test_a_condition_skips_one_branch_and_runs_its_sibling_from_real_outputs(
    client: Client, namespace: str, fate: dict[str, str]
) -> None:
    create(client, namespace, conditional_manifest("cond", fate=fate))
    st = wait_phase(client, namespace, "cond", "Completed", "Failed", timeout=120)
    assert st["phase"] == "Completed", st
    by = {s["name"]: s for s in st["stepStatuses"]}
    assert {n: s["phase"] for n, s in by.items()} == CONDITIONAL_PHASES
    assert by["check"]["outputs"] == {"result": "warned", "rows": 3}
    assert by["publish"]["reason"] == "ConditionFalse"
    assert by["publish"]["message"] == (
        'when: steps.check.outputs.result == "passed" is false (steps.check.outputs.result = "warned")'
    )
    ran = {j.metadata.labels["dataworks.io/step"] for j in jobs(client, namespace, "cond")}
    assert ran == {"check", "quarantine", "notify"}  # no Job for a skipped step


def test_a_condition_that_fails_to_evaluate_fails_its_step_naming_the_error(
    client: Client, namespace: str
) -> None:
    obj = manifest(
        "broken",
        [
            step("count", fate={"message": "not json"}),
            step("use", ["count"], when="steps.count.outputs.rows > 10"),
        ],
    )
    create(client, namespace, obj)
    st = wait_phase(client, namespace, "broken", "Completed", "Failed", timeout=60)
    assert st["phase"] == "Failed"
    by = {s["name"]: s for s in st["stepStatuses"]}
    assert by["count"]["outputs"] == {"message": "not json"}
    assert (by["use"]["phase"], by["use"]["reason"]) == ("Failed", "ConditionError")
    assert by["use"]["message"] == "when: steps.count.outputs.rows > 10: no such key: 'rows'"
    warned = [e.message for e in client.list(Event, namespace=namespace) if e.reason == "StepFailed"]
    assert any("no such key: 'rows'" in m for m in warned), warned


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            {"when": "steps.a.outputs.rows >"},
            "step 'b': when: line 1, column 23: Syntax error",
            id="does-not-compile",
        ),
        pytest.param(
            {"when": "steps.c.phase == 'Completed'"},
            "step 'b': when: reads step 'c', which it does not depend on; add 'c' to dependsOn",
            id="reads-a-step-it-does-not-depend-on",
        ),
        pytest.param(
            {"config": {"conditions": [{"type": "weekend_only"}]}},
            "step 'b': config.conditions[0].type: unknown condition type 'weekend_only'",
            id="unknown-seed-condition",
        ),
    ],
)
def test_a_bad_condition_is_refused_before_any_job_starts(
    client: Client, namespace: str, change: dict[str, Any], message: str
) -> None:
    obj = manifest("bad", [step("a"), step("b", ["a"], **change), step("c")])
    create(client, namespace, obj)
    st = wait_phase(client, namespace, "bad", "Failed", timeout=30)
    assert message in st["message"], st["message"]
    assert jobs(client, namespace, "bad") == []
    assert not list(client.list(Job, namespace=namespace))


def test_without_conditions_outputs_are_read_when_the_pipeline_ends(client: Client, namespace: str) -> None:
    # No condition needs them on the way, so no step transition waits for a pod read: every
    # completed step's outputs are read together before the pipeline's last status write.
    steps = [step("a", fate={"message": '{"rows": 1}'}), step("b", ["a"], fate={"message": '{"rows": 2}'})]
    create(client, namespace, manifest("plain", steps))
    st = wait_phase(client, namespace, "plain", "Completed", "Failed", timeout=60)
    assert st["phase"] == "Completed"
    assert {s["name"]: s.get("outputs") for s in st["stepStatuses"]} == {"a": {"rows": 1}, "b": {"rows": 2}}
