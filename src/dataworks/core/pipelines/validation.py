"""Whole-pipeline validation beyond what the CRD can express (pure layer).

The API server already rejects duplicate names, bad enums, bad names and
self-dependencies (see api.pipeline). This module finds the rest: unknown
dependencies, cycles (naming them), and per-step problems from core.steps.
The operator marks such a pipeline InvalidSpec; the CLI and the local
executor report the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from dataworks.api import pipeline as api
from dataworks.core.kit import dag
from dataworks.core.pipelines import steps
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
            path = ".".join(str(p) for p in loc)
            errors.append(SpecError(step, path, err["msg"]))
        return None, errors


def validate(
    spec: api.PipelineSpec, *, max_parallelism: int = steps.DEFAULT_MAX_PARALLELISM
) -> tuple[Validated | None, list[SpecError]]:
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
    if errors:
        return None, errors
    return Validated(spec=spec, steps=tuple(defs)), []


def validate_raw(raw: dict[str, Any], **kw: Any) -> tuple[Validated | None, list[SpecError]]:
    spec, errors = parse_spec(raw)
    if spec is None:
        return None, errors
    return validate(spec, **kw)
