"""Every manifest we ship validates against the Kubernetes versions we support
(kubernetes-validate's bundled schemas), and every example Pipeline against our CRD's schema."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SUPPORTED = ["1.32", "1.33", "1.34", "1.35", "1.36"]
# Kinds whose schemas come from CRDs, not from Kubernetes itself: ours (checked below against
# deploy/crds) and the Prometheus operator's (checked by promtool and by kustomize building them).
CRD_KINDS = {"Pipeline", "SequentialJob", "ServiceMonitor", "PrometheusRule", "CustomResourceDefinition"}


def build(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(ROOT / "bin" / "kubectl"), "kustomize", str(ROOT / "deploy" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize("overlay", ["default", "with-monitoring", "namespaced"])
def test_deploy_validates(overlay: str, version: str) -> None:
    docs = build(overlay)
    checked = 0
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 8  # namespace, service account, role(s), bindings, config, deployment, service


def test_the_namespaced_role_grants_what_the_cluster_role_does() -> None:
    cluster_role = yaml.safe_load((ROOT / "deploy" / "rbac" / "role.yaml").read_text())
    role = next(
        d
        for d in yaml.safe_load_all((ROOT / "deploy" / "namespaced" / "role.yaml").read_text())
        if d["kind"] == "Role"
    )
    assert role["rules"] == cluster_role["rules"]
    kinds = [d["kind"] for d in build("namespaced")]
    assert "ClusterRole" not in kinds
    assert "ClusterRoleBinding" not in kinds


def as_json_schema(node: Any) -> Any:
    """OpenAPI v3's boolean exclusiveMinimum/Maximum (beside minimum/maximum) as JSON Schema's."""
    if isinstance(node, list):
        return [as_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: as_json_schema(v) for k, v in node.items()}
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if out.get(exclusive) is True and bound in out:
            out[exclusive] = out.pop(bound)
    return out


def test_examples_validate_against_the_crd() -> None:
    schemas = {}
    for plural in ("pipelines", "pipelinetemplates", "scheduledpipelines", "sequentialjobs"):
        crd = yaml.safe_load((ROOT / "deploy" / "crds" / f"dataworks.io_{plural}.yaml").read_text())
        openapi = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        schemas[crd["spec"]["names"]["kind"]] = as_json_schema(openapi)
    found = {kind: 0 for kind in schemas}
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") in schemas:
                jsonschema.validate(doc, schemas[doc["kind"]])
                found[doc["kind"]] += 1
    assert found == {"Pipeline": 9, "PipelineTemplate": 2, "ScheduledPipeline": 1, "SequentialJob": 1}
