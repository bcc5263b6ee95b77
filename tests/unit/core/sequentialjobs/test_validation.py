"""Pins SequentialJob validation (core/sequentialjobs/validation.py): what the CRD enforces is checked
again for runs without an API server, and what CEL cannot express (volume mounts against the template's
volumes, quantities and requests within limits, one source per variable, pod labels) fails the spec
with an error naming the field as the API server spells it."""

from __future__ import annotations

from typing import Any

import pytest

from dataworks.core.sequentialjobs import validation
from tests.builders import sequentialjobs as matrix
from tests.builders.sequentialjobs import SqjBuilder, make_sqj

VOLUMES = {"spec": {"volumes": [{"name": "data", "emptyDir": {}}]}}


def two(**kw: Any) -> SqjBuilder:
    return make_sqj("s").container("a").container("b", **kw)


@pytest.mark.parametrize(
    ("builder", "name", "errors"),
    [
        pytest.param(two(), "s", [], id="valid"),
        pytest.param(
            two(volumeMounts=[{"name": "data", "mountPath": "/data"}]).set(template=VOLUMES),
            "s",
            [],
            id="mounts",
        ),
        pytest.param(
            two(volumeMounts=[{"name": "dta", "mountPath": "/data"}]).set(template=VOLUMES),
            "s",
            [
                (
                    "spec.containers[1].volumeMounts[0].name",
                    "no volume 'dta' in spec.template.spec.volumes (its volumes: data)",
                )
            ],
            id="unknown-volume",
        ),
        pytest.param(
            two(volumeMounts=[{"name": "data", "mountPath": "/d"}]),
            "s",
            [
                (
                    "spec.containers[1].volumeMounts[0].name",
                    "no volume 'data' in spec.template.spec.volumes (it has none)",
                )
            ],
            id="no-volumes",
        ),
        pytest.param(
            two(volumeMounts=[{"name": "data", "mountPath": "/d"}, {"name": "data", "mountPath": "/d"}]).set(
                template=VOLUMES
            ),
            "s",
            [("spec.containers[1].volumeMounts", "two volumes are mounted at /d")],
            id="same-mount-path",
        ),
        pytest.param(
            two(resources={"limits": {"memory": "lots"}}),
            "s",
            [("spec.containers[1].resources.limits.memory", '"lots" is not a Kubernetes quantity')],
            id="bad-quantity",
        ),
        pytest.param(
            two(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "500m"}}),
            "s",
            [("spec.containers[1].resources.requests.cpu", "2 is more than its limit 500m")],
            id="request-over-limit",
        ),
        pytest.param(
            two(env=[{"name": "X", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
            "s",
            [("spec.containers[1].env[0].valueFrom", "X: set value or valueFrom, not both")],
            id="value-and-value-from",
        ),
        pytest.param(
            two(env=[{"name": "X", "valueFrom": {"secretRef": {"name": "s"}}}]),
            "s",
            [
                (
                    "spec.containers[1].env[0].valueFrom.secretRef",
                    "unknown field 'secretRef'; did you mean 'secretKeyRef'?",
                )
            ],
            id="unknown-source",
        ),
        pytest.param(
            two(env=[{"name": "X", "valueFrom": {}}]),
            "s",
            [("spec.containers[1].env[0].valueFrom", "X: name exactly one of secretKeyRef")],
            id="no-source",
        ),
        pytest.param(
            two().set(template={"metadata": {"labels": {"team": "data eng"}}}),
            "s",
            [("spec.template.metadata.labels[team]", "'data eng' is not a valid label value")],
            id="label-value",
        ),
        pytest.param(
            two().set(template={"metadata": {"labels": {"-x/y": "1"}}}),
            "s",
            [("spec.template.metadata.labels[-x/y]", "'-x/y' is not a valid label key")],
            id="label-key",
        ),
        pytest.param(
            make_sqj("s").container("a").container("a"),
            "s",
            [("spec.containers", "duplicate name 'a': names must be unique")],
            id="duplicate-containers",
        ),
        pytest.param(
            two().policy("c", backoffLimit=1),
            "s",
            [("spec.steps[0].name", "'c' is not a container of spec.containers")],
            id="policy-of-no-container",
        ),
        pytest.param(
            two().set(retry={"id": "r1", "step": "c"}),
            "s",
            [("spec.retry.step", "'c' is not a container of spec.containers")],
            id="retry-of-no-container",
        ),
        pytest.param(
            make_sqj("x" * 40).container("y" * 23),
            "x" * 40,
            [
                (
                    "spec.containers[0].name",
                    "is longer than 63 characters: shorten metadata.name or the container name",
                )
            ],
            id="job-name-too-long",
        ),
        pytest.param(make_sqj("x" * 40).container("y" * 22), "x" * 40, [], id="job-name-of-63"),
        pytest.param(
            two(imagee="x"),
            "s",
            [("spec.containers[1].imagee", "unknown field 'imagee'; did you mean 'image'?")],
            id="unknown-field",
        ),
        pytest.param(
            two().policy("b", onFailure="abort"),
            "s",
            [("spec.steps[0].onFailure", "Input should be 'stop' or 'continue'")],
            id="bad-enum",
        ),
        pytest.param(
            make_sqj("s"),
            "s",
            [("spec.containers", "List should have at least 1 item")],
            id="no-containers",
        ),
    ],
)
def test_validate(builder: SqjBuilder, name: str, errors: list[tuple[str, str]]) -> None:
    validated, found = validation.validate_raw(builder.spec, name)
    assert (validated is None) is bool(errors)
    assert len(found) == len(errors), [str(e) for e in found]
    for error, (field, message) in zip(found, errors, strict=True):
        assert error.field == field
        assert message in error.message, error.message
        assert str(error) == f"{error.field}: {error.message}"


def test_a_whole_manifest_names_unknown_top_level_and_metadata_fields() -> None:
    doc = {**make_sqj("s", "a").manifest(), "sepc": {}}
    doc["metadata"]["lables"] = {}
    validated, errors = validation.validate_document(doc)
    assert validated is None
    assert [str(e) for e in errors] == [
        "sepc: unknown field 'sepc'; did you mean 'spec'?",
        "metadata.lables: unknown field 'lables'; did you mean 'labels'?",
    ]


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        ("app", "data-pipeline", True),
        ("example.com/tier", "", True),
        ("app.kubernetes.io/name", "a.b_c-1", True),
        ("a" * 64, "x", False),
        ("UPPER.example/x", "x", False),
        ("app", "x" * 64, False),
        ("app", "-x", False),
    ],
)
def test_label_error(key: str, value: str, ok: bool) -> None:
    assert (validation.label_error(key, value) is None) is ok


@pytest.mark.parametrize(("name", "spec", "message"), matrix.INVALID, ids=[c[0] for c in matrix.INVALID])
def test_what_the_operator_refuses_is_refused_alike_everywhere(
    name: str, spec: dict[str, Any], message: str
) -> None:
    validated, errors = validation.validate_raw(spec, name)
    assert validated is None
    assert any(message in str(e) for e in errors), [str(e) for e in errors]


@pytest.mark.parametrize(
    ("name", "spec", "message"),
    matrix.REJECTED + matrix.UNKNOWN_FIELDS,
    ids=[c[0][:20] for c in matrix.REJECTED + matrix.UNKNOWN_FIELDS],
)
def test_what_the_api_server_refuses_fails_without_one_too(
    name: str, spec: dict[str, Any], message: str
) -> None:
    validated, errors = validation.validate_raw(spec, name)
    assert validated is None, message
    assert all(e.field.startswith("spec.") for e in errors), [str(e) for e in errors]
