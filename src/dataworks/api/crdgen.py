"""Renders CustomResourceDefinitions from the api models (pure layer).

The CRD schema must be structural: every $ref inlined, `nullable` instead of
anyOf-with-null, no titles or defaults the API server would reject, and
free-form objects marked x-kubernetes-preserve-unknown-fields. CEL rules
(`crd_rules`) and printer columns come from class-level metadata.

Run `python -m dataworks.api.crdgen deploy/crds` (or `make crds`) to write
the YAML; a unit test fails when the committed files differ.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from dataworks.api import kinds, pipeline, sequentialjob
from dataworks.api.meta import KindInfo

_DROP = {"title", "default"}


def _any_value(schema: dict[str, Any]) -> dict[str, Any]:
    """A field of any JSON type (`Any`, e.g. a parameter's default) keeps whatever it is given:
    a structural schema needs a type, or this marker."""
    if "type" not in schema and not schema.get("x-kubernetes-int-or-string"):
        schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = _resolve(defs[node["$ref"].split("/")[-1]], defs)
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return {**target, **_resolve(extra, defs)}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or key == "$defs":
            continue
        if key == "properties":  # field names, not keywords: a field may be called `default`
            out[key] = {name: _any_value(_resolve(sub, defs)) for name, sub in value.items()}
            continue
        out[key] = _resolve(value, defs)
    any_of = out.pop("anyOf", None)
    if any_of is not None:
        non_null = [s for s in any_of if s.get("type") != "null"]
        if len(non_null) != 1:
            raise ValueError(f"cannot render a union of {len(non_null)} types structurally: {any_of}")
        merged = {**non_null[0], **out}
        if len(non_null) < len(any_of):
            merged["nullable"] = True
        out = merged
    if "const" in out:
        out["enum"] = [out.pop("const")]
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), int | float) and not isinstance(out[bound], bool):
            out[limit], out[bound] = out[bound], True  # JSON Schema's number, OpenAPI v3's flag
    if out.get("type") == "object" and "properties" not in out:
        extra = out.pop("additionalProperties", None)
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = extra
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif out.get("additionalProperties") is False:
        out.pop("additionalProperties")
    elif out.get("additionalProperties") is True:  # a model with extra="allow": known fields, and more
        out.pop("additionalProperties")
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("type") == "array" and isinstance(out.get("items"), dict) and not out["items"]:
        out["items"] = {"x-kubernetes-preserve-unknown-fields": True}
    if out.get("properties") == {}:  # a model with no fields: the API server would drop it, and a
        del out["properties"]  # server-side apply of the file would then conflict with the stored CRD
    return out


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a model, with CEL rules attached."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    schema: dict[str, Any] = _resolve(raw, raw.get("$defs", {}))
    _attach_rules(model, schema)
    return schema


def _attach_rules(model: type[BaseModel], schema: dict[str, Any]) -> None:
    rules = model.__dict__.get("crd_rules")
    if rules:
        schema["x-kubernetes-validations"] = list(rules)
    for name, field in model.model_fields.items():
        alias = field.alias or name
        sub = schema.get("properties", {}).get(alias)
        if sub is None:
            continue
        target = _model_in(field.annotation)
        if target is None:
            continue
        if sub.get("type") == "array":
            _attach_rules(target, sub["items"])
        else:
            _attach_rules(target, sub)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _step_cost_bounds(spec: dict[str, Any]) -> None:
    """Unique step names (a list-map keyed by name) and bounded strings for CEL cost."""
    steps = spec["properties"]["steps"]
    steps["x-kubernetes-list-type"] = "map"
    steps["x-kubernetes-list-map-keys"] = ["name"]
    steps["items"]["properties"]["dependsOn"]["items"]["maxLength"] = pipeline.MAX_STEP_NAME


def _sequence_lists(spec: dict[str, Any]) -> None:
    """Unique container, step-policy and volume names: list-maps keyed by name."""
    volumes = spec["properties"]["template"]["properties"]["spec"]["properties"]["volumes"]
    for listed in (spec["properties"]["containers"], spec["properties"]["steps"], volumes):
        listed["x-kubernetes-list-type"] = "map"
        listed["x-kubernetes-list-map-keys"] = ["name"]
        listed["items"].setdefault("required", ["name"])


# Schema adjustments a model cannot express, per kind.
_SPEC_HOOKS: dict[str, Callable[[dict[str, Any]], None]] = {
    pipeline.KIND: _step_cost_bounds,
    sequentialjob.KIND: _sequence_lists,
}


def crd(info: KindInfo) -> dict[str, Any]:
    """The CustomResourceDefinition of one registered kind."""
    spec = schema_of(info.spec)
    hook = _SPEC_HOOKS.get(info.kind)
    if hook is not None:
        hook(spec)
    root = {
        "type": "object",
        "description": info.root.__doc__,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": schema_of(info.status),
        },
        "required": ["spec"],
    }
    rules = info.root.__dict__.get("crd_rules")
    if rules:  # rules across metadata and spec (only metadata.name is visible to CEL there)
        root["x-kubernetes-validations"] = list(rules)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": info.crd_name},
        "spec": {
            "group": info.group,
            "scope": "Namespaced",
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": list(info.categories),
            },
            "versions": [
                {
                    "name": info.version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}, **({"scale": dict(info.scale)} if info.scale else {})},
                    "additionalPrinterColumns": [dict(c) for c in info.printer_columns],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def pipeline_crd() -> dict[str, Any]:
    return crd(pipeline.INFO)


def render_all(registry: kinds.Registry | None = None) -> dict[str, str]:
    """File name -> YAML text of the CRD of every registered kind."""
    out = {}
    for info in registry or kinds.default():
        doc = crd(info)
        out[f"{info.group}_{info.plural}.yaml"] = (
            "# Generated by `make crds` from src/dataworks/api; do not edit.\n"
            + yaml.safe_dump(doc, sort_keys=False)
        )
    return out


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else "deploy/crds")
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (out / name).write_text(text)
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
