"""An unknown field is an error naming the field, its path and the nearest valid name.

A misspelt `dependOn:` used to be dropped, so the dependent step ran first. Free-form
maps (`config`, annotations, a toleration) stay free-form, and a stored status with a
field this operator does not know still parses.
"""

from __future__ import annotations

from typing import Any

import pytest

from dataworks.api import pipeline as api
from dataworks.core.kit.plan import Meta
from dataworks.core.pipelines import validation
from tests.builders import pipelines as builders
from tests.builders.pipelines import T0


def container(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "type": "container", "image": "busybox", "command": ["true"], **kw}


UNKNOWN = [
    (
        {"steps": [container("a"), container("b", dependOn=["a"])]},
        "step 'b': spec.steps[1].dependOn: unknown field 'dependOn'; did you mean 'dependsOn'?",
    ),
    (
        {"steps": [container("a", retry={"limit": 1, "noRetryExitCode": [2]})]},
        "step 'a': spec.steps[0].retry.noRetryExitCode: unknown field 'noRetryExitCode'; "
        "did you mean 'noRetryExitCodes'?",
    ),
    (
        {"steps": [container("a", env=[{"name": "X", "valueFron": {}}])]},
        "step 'a': spec.steps[0].env[0].valueFron: unknown field 'valueFron'; did you mean 'valueFrom'?",
    ),
    (
        {"steps": [container("a")], "maxParalel": 2},
        "spec.maxParalel: unknown field 'maxParalel'; did you mean 'maxParallel'?",
    ),
    (
        {"steps": [container("a")], "podDefaults": {"nodeSelectors": {}}},
        "spec.podDefaults.nodeSelectors: unknown field 'nodeSelectors'; did you mean 'nodeSelector'?",
    ),
    (
        {"steps": [container("a", zzz=1)]},
        "step 'a': spec.steps[0].zzz: unknown field 'zzz'; valid fields: name, type, dependsOn,",
    ),
]


@pytest.mark.parametrize(("spec", "message"), UNKNOWN)
def test_unknown_fields_are_errors_with_path_and_nearest_name(spec: dict[str, Any], message: str) -> None:
    validated, errors = validation.validate_raw(spec)
    assert validated is None
    assert any(str(e).startswith(message) for e in errors), [str(e) for e in errors]


def test_the_misspelt_dependency_starts_no_job() -> None:
    spec = {"steps": [container("a"), container("b", dependOn=["a"])]}
    plan = builders.plan(Meta("p", "ns"), spec, None, [], now=T0)
    assert plan.create == []
    assert plan.status.phase == "Failed"
    assert "spec.steps[1].dependOn: unknown field 'dependOn'; did you mean 'dependsOn'?" in (
        plan.status.message or ""
    )


def test_a_whole_manifest_names_unknown_top_level_and_metadata_fields() -> None:
    doc = {
        "apiVersion": "dataworks.io/v1",
        "kind": "Pipeline",
        "metadata": {"name": "p", "lables": {"a": "b"}},
        "spce": {},
        "spec": {"steps": [container("a")]},
    }
    _, errors = validation.validate_document(doc)
    assert [str(e) for e in errors] == [
        "spce: unknown field 'spce'; did you mean 'spec'?",
        "metadata.lables: unknown field 'lables'; did you mean 'labels'?",
    ]
    doc.pop("spce")
    doc["metadata"] = {"name": "p", "labels": {"a": "b"}}
    assert validation.validate_document(doc)[1] == []


def test_free_form_maps_stay_free_form() -> None:
    spec = {
        "steps": [
            {"name": "t", "type": "transform", "config": {"sql": "SELECT 1", "anything": {"goes": 1}}},
            container(
                "c",
                annotations={"x/y": "z"},
                envFrom=[{"configMapRef": {"name": "m"}}],
                env=[{"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            ),
        ],
        "podDefaults": {"tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]},
    }
    validated, errors = validation.validate_raw(spec)
    assert errors == [], [str(e) for e in errors]
    assert validated is not None


def test_snake_case_spellings_still_parse() -> None:
    _, errors = validation.validate_raw({"steps": [container("a"), container("b", depends_on=["a"])]})
    assert errors == []


def test_a_stored_status_with_unknown_fields_still_parses() -> None:
    raw = {
        "phase": "Running",
        "fromANewerOperator": True,
        "stepStatuses": [{"name": "a", "phase": "Running", "extra": 1, "workers": {"active": 1, "x": 2}}],
        "conditions": [{"type": "Valid", "status": "True", "future": "yes"}],
    }
    status = api.PipelineStatus.model_validate(raw)
    assert status.step_statuses[0].workers == api.WorkerCounts(active=1)


def test_no_retry_reasons_is_gone_and_points_to_no_retry_exit_codes() -> None:
    from dataworks.api import crdgen

    _, errors = validation.validate_raw({"steps": [container("a", retry={"noRetryReasons": ["OOMKilled"]})]})
    assert [str(e) for e in errors] == [
        "step 'a': spec.steps[0].retry.noRetryReasons: unknown field 'noRetryReasons'; "
        "did you mean 'noRetryExitCodes'?"
    ]
    schema = crdgen.pipeline_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    retry = schema["properties"]["spec"]["properties"]["steps"]["items"]["properties"]["retry"]
    assert sorted(retry["properties"]) == ["limit", "noRetryExitCodes", "retryOnExitCodes"]
