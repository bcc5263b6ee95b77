"""The committed CRD YAML is exactly what the models generate."""

from __future__ import annotations

from pathlib import Path

import yaml

from dataworks.api import crdgen

CRDS = Path(__file__).resolve().parents[3] / "deploy" / "crds"


def test_committed_crds_match_the_models() -> None:
    rendered = crdgen.render_all()
    committed = {p.name: p.read_text() for p in CRDS.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert set(committed) == set(rendered), "run `make crds` and commit deploy/crds"
    for name, text in rendered.items():
        assert committed[name] == text, f"deploy/crds/{name} is stale: run `make crds`"


def test_schema_is_structural() -> None:
    crd = crdgen.pipeline_crd()
    text = yaml.safe_dump(crd)
    for forbidden in ("$ref", "anyOf", "title:", "$defs"):
        assert forbidden not in text
    version = crd["spec"]["versions"][0]
    steps = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["steps"]
    assert steps["x-kubernetes-list-map-keys"] == ["name"]
    assert steps["items"]["properties"]["config"]["x-kubernetes-preserve-unknown-fields"] is True
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Phase", "Steps", "Duration", "Age"]
    assert crd["spec"]["names"]["shortNames"] == ["pl"]


def test_the_crd_kustomization_lists_every_crd() -> None:
    listed = yaml.safe_load((CRDS / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(crdgen.render_all())
