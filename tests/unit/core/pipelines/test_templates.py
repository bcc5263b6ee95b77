"""Pins template expansion (core/pipelines/templates.py): parameters are checked and typed, each
error naming the parameter; a value that is only a placeholder keeps its type; names and dependsOn
become DNS labels the same way; a placeholder naming no parameter, and two steps expanding to one
name, are errors; the seed's standard-etl expands to what its author meant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dataworks.api import pipelinetemplate as tapi
from dataworks.core.pipelines import templates, validation

SEED = list(
    yaml.safe_load_all(
        (Path(__file__).resolve().parents[4] / "examples" / "seed" / "standard-etl.yaml").read_text()
    )
)


def template(
    params: list[dict[str, Any]], steps: list[dict[str, Any]] | None = None
) -> tapi.PipelineTemplateSpec:
    steps = steps or [{"name": "a", "type": "container", "image": "busybox"}]
    return tapi.PipelineTemplateSpec.model_validate({"parameters": params, "steps": steps})


def test_the_seeds_standard_etl_expands_as_its_author_meant() -> None:
    tpl, pipeline = SEED
    spec, values, errors = templates.expand(
        pipeline["spec"], tapi.PipelineTemplateSpec.model_validate(tpl["spec"]), "standard-etl"
    )
    assert errors == []
    assert values == {"source_system": "salesforce", "target_date": "2024-01-15", "parallelism": 10}
    assert spec is not None
    assert [s["name"] for s in spec["steps"]] == ["extract-salesforce", "validate-data", "load-warehouse"]
    assert spec["steps"][0]["config"] == {"source": "salesforce", "date": "2024-01-15"}
    assert spec["steps"][1]["dependsOn"] == ["extract-salesforce"]
    assert spec["steps"][2]["config"]["parallelism"] == 10  # typed, not "10"
    assert "template" not in spec
    assert "parameters" not in spec


@pytest.mark.parametrize(
    ("params", "given", "expected", "errors"),
    [
        pytest.param([{"name": "n", "type": "integer", "default": 5}], {}, {"n": 5}, [], id="default"),
        pytest.param([{"name": "n", "type": "integer"}], {"n": "12"}, {"n": 12}, [], id="integer-from-text"),
        pytest.param([{"name": "x", "type": "number"}], {"x": "0.5"}, {"x": 0.5}, [], id="number"),
        pytest.param(
            [{"name": "b", "type": "boolean"}], {"b": "True"}, {"b": True}, [], id="boolean-from-text"
        ),
        pytest.param([{"name": "s"}], {"s": 7}, {"s": "7"}, [], id="string-from-number"),
        pytest.param([{"name": "s"}], {}, {"s": None}, [], id="neither-given-nor-defaulted"),
        pytest.param(
            [{"name": "env", "type": "enum", "values": ["dev", "prod"]}],
            {"env": "prod"},
            {"env": "prod"},
            [],
            id="enum",
        ),
        pytest.param(
            [{"name": "n", "type": "integer"}],
            {"n": "ten"},
            None,
            ["parameters.n: must be an integer, got 'ten'"],
            id="wrong-type",
        ),
        pytest.param(
            [{"name": "b", "type": "boolean"}],
            {"b": "yes"},
            None,
            ["parameters.b: must be true or false, got 'yes'"],
            id="not-a-boolean",
        ),
        pytest.param(
            [{"name": "env", "type": "enum", "values": ["dev", "prod"]}],
            {"env": "qa"},
            None,
            ["parameters.env: must be one of dev, prod, got 'qa'"],
            id="not-in-the-enum",
        ),
        pytest.param(
            [{"name": "src", "required": True}],
            {},
            None,
            ["parameters.src: is required by template t"],
            id="missing-required",
        ),
        pytest.param(
            [{"name": "src"}],
            {"source": "x"},
            None,
            ["parameters.source: is not a parameter of template t; its parameters are src"],
            id="unknown-parameter",
        ),
        pytest.param(
            [{"name": "n", "type": "integer", "default": "many"}],
            {},
            None,
            ["template t: n.default: must be an integer, got 'many'"],
            id="bad-default",
        ),
    ],
)
def test_parameters(
    params: list[dict[str, Any]], given: dict[str, Any], expected: dict[str, Any] | None, errors: list[str]
) -> None:
    values, problems = templates.parameters(template(params).parameters, given, "t")
    assert [str(p) for p in problems] == errors
    if expected is not None:
        assert values == expected


def test_names_and_their_dependencies_become_the_same_dns_labels() -> None:
    steps = [
        {"name": "extract-{{.src}}", "type": "container", "image": "busybox", "args": ["--from={{ .src }}"]},
        {"name": "load", "type": "container", "image": "busybox", "dependsOn": ["extract-{{.src}}"]},
    ]
    spec, _, errors = templates.expand(
        {"template": "t", "parameters": {"src": "Sales_Force CRM"}}, template([{"name": "src"}], steps), "t"
    )
    assert errors == []
    assert spec is not None
    assert spec["steps"][0]["name"] == "extract-sales-force-crm"
    assert spec["steps"][0]["args"] == ["--from=Sales_Force CRM"]  # only names are made DNS labels
    assert spec["steps"][1]["dependsOn"] == ["extract-sales-force-crm"]
    validated, problems = validation.validate_raw(spec)
    assert problems == []
    assert validated is not None


@pytest.mark.parametrize(
    ("steps", "given", "error"),
    [
        pytest.param(
            [{"name": "a-{{.nope}}", "type": "container", "image": "x"}],
            {},
            "template t: steps[0].name: {{.nope}} names no parameter of the template",
            id="unknown-placeholder",
        ),
        pytest.param(
            [
                {"name": "load-{{.a}}", "type": "container", "image": "x"},
                {"name": "load-{{.b}}", "type": "container", "image": "x"},
            ],
            {"a": "EU", "b": "eu"},
            "template t: steps[1].name: expands to 'load-eu', as steps[0] does; step names must be unique",
            id="two-steps-one-name",
        ),
    ],
)
def test_expansion_errors_name_the_step_and_field(
    steps: list[dict[str, Any]], given: dict[str, Any], error: str
) -> None:
    params = [{"name": "a"}, {"name": "b"}]
    spec, _, errors = templates.expand({"template": "t", "parameters": given}, template(params, steps), "t")
    assert spec is None
    assert [str(e) for e in errors] == [error]


def test_the_pipelines_own_fields_stay_beside_the_templates_steps() -> None:
    spec, _, _ = templates.expand({"template": "t", "maxParallel": 2, "suspend": True}, template([]), "t")
    assert spec == {
        "maxParallel": 2,
        "suspend": True,
        "steps": [{"name": "a", "type": "container", "image": "busybox"}],
    }
