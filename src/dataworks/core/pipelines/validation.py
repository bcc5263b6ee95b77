"""Whole-pipeline validation beyond what the CRD can express (pure layer).

The API server already rejects duplicate names, bad enums, bad names and
self-dependencies (see api.pipeline). This module finds the rest: unknown
dependencies, cycles (naming them), per-step problems from core.steps, and
conditions that do not compile or read steps they do not depend on
(core.pipelines.conditions).
The operator marks such a pipeline InvalidSpec; the CLI and the local
executor report the same messages. An unknown field anywhere is an error that
names it, its path and the nearest valid name, as `fieldValidation=Strict`
makes the API server do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from dataworks.api import pipeline as api
from dataworks.api.defaults import DEFAULT_MAX_PARALLELISM
from dataworks.core.kit import dag
from dataworks.core.kit.fields import METADATA_FIELDS, field_names, path_of, unknown_field
from dataworks.core.pipelines import conditions, steps
from dataworks.core.pipelines.steps import SpecError, StepDef


@dataclass(frozen=True)
class Validated:
    """A pipeline spec that passed validation, as StepDefs in manifest order."""

    spec: api.PipelineSpec
    steps: tuple[StepDef, ...]

    def by_name(self) -> dict[str, StepDef]:
        return {s.name: s for s in self.steps}


def parse_spec(raw: dict[str, Any]) -> tuple[api.PipelineSpec | None, list[SpecError]]:
    """Parse a spec dict with the api models; errors name the field path."""
    try:
        return api.PipelineSpec.model_validate(raw), []
    except ValidationError as e:
        errors = []
        for err in e.errors():
            loc = list(err["loc"])
            step = None
            if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
                items = raw.get("steps") or []
                if loc[1] < len(items) and isinstance(items[loc[1]], dict):
                    step = items[loc[1]].get("name")
            if err["type"] == "value_error" and not loc:  # a whole-spec rule: "field: message"
                field, _, message = str(err["ctx"]["error"]).partition(": ")
                errors.append(SpecError(None, field, message))
                continue
            if err["type"] == "extra_forbidden":
                valid = field_names(api.PipelineSpec, loc[:-1])
                errors.append(SpecError(step, path_of(loc), unknown_field(str(loc[-1]), valid)))
                continue
            path = ".".join(str(p) for p in loc)
            errors.append(SpecError(step, path, err["msg"]))
        return None, errors


def document_errors(obj: dict[str, Any]) -> list[SpecError]:
    """Unknown fields at the top of a Pipeline manifest and in its metadata."""
    errors = []
    top = field_names(api.Pipeline, [])
    for key in obj:
        if key not in top:
            errors.append(SpecError(None, str(key), unknown_field(str(key), top)))
    metadata = obj.get("metadata")
    for key in metadata if isinstance(metadata, dict) else {}:
        if key not in METADATA_FIELDS:
            errors.append(SpecError(None, f"metadata.{key}", unknown_field(str(key), METADATA_FIELDS)))
    return errors


def validate(
    spec: api.PipelineSpec, *, max_parallelism: int = DEFAULT_MAX_PARALLELISM
) -> tuple[Validated | None, list[SpecError]]:
    if spec.template is not None:  # the operator and the CLI expand a template before this
        why = (
            f"PipelineTemplate {spec.template!r} is not expanded here: give it with --template-file, "
            "or create the pipeline on a cluster that has the template"
        )
        return None, [SpecError(None, "template", why)]
    errors: list[SpecError] = []
    defs: list[StepDef] = []
    names = [s.name for s in spec.steps]
    seen: set[str] = set()
    for s in spec.steps:
        if s.name in seen:
            errors.append(
                SpecError(s.name, "name", "is used by more than one step; step names must be unique")
            )
        seen.add(s.name)
    for s in spec.steps:
        for d in s.depends_on:
            if d not in seen:
                errors.append(
                    SpecError(s.name, "dependsOn", f"names {d!r}, which is not a step of this pipeline")
                )
            elif d == s.name:
                errors.append(SpecError(s.name, "dependsOn", "a step cannot depend on itself"))
        sdef, serrs = steps.normalize(s, max_parallelism=max_parallelism)
        defs.append(sdef)
        errors += serrs
    cycle = dag.find_cycle({s.name: s.depends_on for s in spec.steps if s.name in names})
    if cycle and len(cycle) > 2:
        errors.append(SpecError(cycle[0], "dependsOn", "forms a cycle: " + " -> ".join(cycle)))
    elif not cycle:
        deps = {s.name: s.depends_on for s in spec.steps}
        for sdef in defs:
            errors += conditions.problems(sdef, _ancestors(sdef.name, deps), seen)
    if errors:
        return None, errors
    return Validated(spec=spec, steps=tuple(defs)), []


def _ancestors(name: str, deps: dict[str, list[str]]) -> set[str]:
    """Every step `name` depends on, directly or not."""
    found: set[str] = set()
    todo = list(deps.get(name, []))
    while todo:
        d = todo.pop()
        if d not in found:
            found.add(d)
            todo.extend(deps.get(d, []))
    return found


def validate_raw(raw: dict[str, Any], **kw: Any) -> tuple[Validated | None, list[SpecError]]:
    spec, errors = parse_spec(raw)
    if spec is None:
        return None, errors
    return validate(spec, **kw)


def validate_document(obj: dict[str, Any], **kw: Any) -> tuple[Validated | None, list[SpecError]]:
    """A whole Pipeline manifest (what `pipeline-ctl run` reads): its spec, and no unknown field."""
    outer = document_errors(obj)
    validated, errors = validate_raw(obj.get("spec") or {}, **kw)
    if outer:
        return None, outer + errors
    return validated, errors
