"""The SequentialJob API: the seed's manifest parses with only its apiVersion changed, as its author
meant; its CRD has the seed's names, printer columns, list-map keys and CEL rules, and stays
structural (int-or-string quantities, free-form nested Kubernetes objects)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from dataworks.api import crdgen, kinds
from dataworks.api import sequentialjob as api

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sequentialjob" / "data-processing-pipeline.yaml"


def test_the_seed_example_parses_as_its_author_meant() -> None:
    obj = api.SequentialJob.model_validate(yaml.safe_load(EXAMPLE.read_text()))
    assert obj.api_version == "dataworks.io/v1"
    assert [c.name for c in obj.spec.containers] == ["extract", "transform", "load"]
    load = obj.spec.containers[2]
    assert load.env is not None
    assert load.env[0].value_from == {"secretKeyRef": {"name": "db-credentials", "key": "connection-string"}}
    assert load.resources is not None
    assert load.resources.limits == {"memory": "512Mi", "cpu": "1000m"}
    assert load.volume_mounts is not None
    assert load.volume_mounts[0].mount_path == "/data"
    template = obj.spec.template
    assert template is not None
    assert template.metadata is not None
    assert template.spec is not None
    assert template.metadata.labels == {"app": "data-pipeline"}
    (volume,) = template.spec.volumes or []
    assert volume.model_dump(by_alias=True) == {
        "name": "data-volume",
        "persistentVolumeClaim": {"claimName": "pipeline-data"},
    }
    # Per-step defaults: no retry, no deadline, stop on failure.
    policy = obj.spec.policy("transform")
    assert (policy.backoff_limit, policy.active_deadline_seconds, policy.on_failure) == (None, None, "stop")


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        pytest.param(
            {"containers": [{"name": "a", "image": "x", "imagee": "x"}]},
            ("containers", 0, "imagee"),
            id="container",
        ),
        pytest.param(
            {"containers": [{"name": "a", "image": "x"}], "template": {"spec": {"volumess": []}}},
            ("template", "spec", "volumess"),
            id="pod-spec",
        ),
        pytest.param(
            {"containers": [{"name": "a", "image": "x"}], "steps": [{"name": "a", "retries": 2}]},
            ("steps", 0, "retries"),
            id="step-policy",
        ),
    ],
)
def test_a_field_that_is_not_kubernetes_is_an_error(
    spec: dict[str, object], where: tuple[object, ...]
) -> None:
    with pytest.raises(ValidationError) as err:
        api.SequentialJobSpec.model_validate(spec)
    assert [e["loc"] for e in err.value.errors()] == [where]


def test_quantities_are_int_or_string() -> None:
    spec = api.SequentialJobSpec.model_validate(
        {"containers": [{"name": "a", "image": "x", "resources": {"limits": {"cpu": 2, "memory": "1Gi"}}}]}
    )
    assert spec.containers[0].resources is not None
    assert spec.containers[0].resources.limits == {"cpu": 2, "memory": "1Gi"}


def test_the_registry_knows_it_by_every_spelling() -> None:
    for name in ("SequentialJob", "sequentialjob", "sequentialjobs", "sqj", "sequentialjobs.dataworks.io"):
        assert kinds.default().lookup(name) is api.INFO


def test_the_crd() -> None:
    crd = crdgen.crd(api.INFO)
    text = yaml.safe_dump(crd)
    for forbidden in ("$ref", "anyOf", "title:", "$defs", "additionalProperties: true"):
        assert forbidden not in text
    assert crd["spec"]["names"]["shortNames"] == ["sqj"]
    assert crd["spec"]["names"]["categories"] == ["dataworks"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]]
    assert columns == [
        ("Step", ".status.progress.step"),
        ("Status", ".status.phase"),
        ("Age", ".metadata.creationTimestamp"),
    ]
    root = version["schema"]["openAPIV3Schema"]
    spec = root["properties"]["spec"]
    containers, steps = spec["properties"]["containers"], spec["properties"]["steps"]
    assert containers["minItems"] == 1
    for listed in (containers, steps):
        assert (listed["x-kubernetes-list-type"], listed["x-kubernetes-list-map-keys"]) == ("map", ["name"])
    item = containers["items"]["properties"]
    assert item["resources"]["properties"]["limits"]["additionalProperties"] == {
        "x-kubernetes-int-or-string": True
    }
    assert item["livenessProbe"]["x-kubernetes-preserve-unknown-fields"] is True
    volume = spec["properties"]["template"]["properties"]["spec"]["properties"]["volumes"]["items"]
    assert volume["x-kubernetes-preserve-unknown-fields"] is True
    assert volume["required"] == ["name"]
    (rule,) = root["x-kubernetes-validations"]
    assert "size(self.metadata.name) + size(c.name) < 63" in rule["rule"]
    assert [r["fieldPath"] for r in spec["x-kubernetes-validations"]] == [".steps", ".retry.step"]
    status = root["properties"]["status"]["properties"]
    assert {"state", "progress", "startTime", "completionTime", "observedGeneration", "conditions"} <= set(
        status
    )
    assert set(status["progress"]["properties"]) == {"currentIndex", "completedIndices", "step"}
    assert set(status["state"]["properties"]) == {"active", "succeeded", "failed"}
