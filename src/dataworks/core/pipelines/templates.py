"""A Pipeline's template, expanded with its parameters (pure layer, Pipeline policy).

`expand(pipeline_spec, template_spec, template_name)` gives the spec the
pipeline runs: the template's steps with every `{{.name}}` placeholder filled
in, beside the pipeline's own fields (maxParallel, ...). The rules:

- **Parameters** are checked against the template's declarations: an unknown
  name, a missing required one, and a value of the wrong type are errors that
  name the parameter. Values are converted to their declared type: `integer`
  takes 10 or "10", `boolean` true or "true", `enum` one of its values. A
  parameter neither given nor defaulted is empty.
- **A value that is only a placeholder** (`parallelism: "{{.parallelism}}"`)
  becomes the typed value (10, not "10"); inside a longer string, and in a
  `when:` expression, it is written as text (booleans as true/false, which
  CEL reads as booleans).
- **Where a step is named** (its name, dependsOn, a seed condition's `step`,
  and `steps["..."]` in a `when:`) the filled-in text is made a DNS label
  (lowercase; other characters become `-`), the same way everywhere, so
  `extract-{{.source_system}}` with `Sales_Force` names `extract-sales-force`
  and the steps that depend on it or read it still find it. Two steps that expand to one
  name are an error naming both.
- A placeholder that names no declared parameter is an error naming the step
  and field.
"""

from __future__ import annotations

import re
from typing import Any

from dataworks.api import pipelinetemplate as tapi
from dataworks.core.pipelines.steps import SpecError

PLACEHOLDER = re.compile(r"\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
NAMES = frozenset({"name", "dependsOn", "step"})  # step names (`step` of a seed condition): DNS labels
_STEP_REF = re.compile(r"""(steps\[\s*["'])([^"']*\{\{[^"']*)(["']\s*\])""")
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def _typed(p: tapi.Parameter, value: Any) -> tuple[Any, str | None]:
    """The value as its declared type, or the problem."""
    if p.type == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value, None
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return int(value), None
        return None, f"must be an integer, got {value!r}"
    if p.type == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value, None
        try:
            return float(value), None
        except (TypeError, ValueError):
            return None, f"must be a number, got {value!r}"
    if p.type == "boolean":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true", None
        return None, f"must be true or false, got {value!r}"
    if isinstance(value, dict | list):
        return None, f"must be a {p.type}, not an object or list"
    text = _text(value)
    if p.type == "enum" and text not in (p.values or []):
        return None, f"must be one of {', '.join(p.values or [])}, got {text!r}"
    return text, None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def parameters(
    declared: list[tapi.Parameter], given: dict[str, Any] | None, template: str
) -> tuple[dict[str, Any], list[SpecError]]:
    """Every declared parameter's value, and the problems (each naming the parameter)."""
    given = dict(given or {})
    names = [p.name for p in declared]
    errors = [
        SpecError(
            None,
            f"parameters.{name}",
            f"is not a parameter of template {template}; its parameters are {', '.join(names) or 'none'}",
        )
        for name in given
        if name not in names
    ]
    values: dict[str, Any] = {}
    for p in declared:
        if p.name not in given:
            if p.required:
                errors.append(SpecError(None, f"parameters.{p.name}", f"is required by template {template}"))
                continue
            if p.default is None:
                values[p.name] = None
                continue
        value, problem = _typed(p, given.get(p.name, p.default))
        if problem is not None:
            field = f"parameters.{p.name}" if p.name in given else f"template {template}: {p.name}.default"
            errors.append(SpecError(None, field, problem))
        else:
            values[p.name] = value
    return values, errors


def dns_label(text: str) -> str:
    """Filled-in text in a step name: lowercase, other characters as '-'."""
    return _NOT_DNS.sub("-", text.lower()).strip("-")


def _fill(value: Any, values: dict[str, Any], where: str, errors: list[SpecError], dns: bool = False) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, values, f"{where}.{k}", errors, dns=k in NAMES) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values, f"{where}[{i}]", errors, dns) for i, v in enumerate(value)]
    if not isinstance(value, str) or "{{" not in value:
        return value
    unknown = [m[1] for m in PLACEHOLDER.finditer(value) if m[1] not in values]
    if unknown:
        errors.append(SpecError(None, where, f"{{{{.{unknown[0]}}}}} names no parameter of the template"))
        return value
    if where.endswith(".when"):  # a step named in a condition is named as the step is
        value = _STEP_REF.sub(lambda m: m[1] + _fill(m[2], values, where, errors, dns=True) + m[3], value)
    whole = PLACEHOLDER.fullmatch(value.strip())
    if whole is not None and not dns and not where.endswith(".when"):  # an expression is text
        found = values[whole[1]]
        return "" if found is None else found

    def text(m: re.Match[str]) -> str:
        filled = _text(values[m[1]])
        return dns_label(filled) if dns else filled

    return PLACEHOLDER.sub(text, value)


def expand(
    spec: dict[str, Any], template: tapi.PipelineTemplateSpec, name: str
) -> tuple[dict[str, Any] | None, dict[str, Any], list[SpecError]]:
    """(the spec the pipeline runs, the parameter values, problems): the template's steps filled
    in, beside the pipeline's own fields."""
    values, errors = parameters(template.parameters, spec.get("parameters"), name)
    if errors:
        return None, values, errors
    steps: list[dict[str, Any]] = []
    for i, raw in enumerate(template.steps):
        where = f"template {name}: steps[{i}]"
        steps.append({k: _fill(v, values, f"{where}.{k}", errors, dns=k in NAMES) for k, v in raw.items()})
    seen: dict[str, int] = {}
    for i, step in enumerate(steps):
        n = step.get("name")
        if isinstance(n, str) and n in seen:
            errors.append(
                SpecError(
                    None,
                    f"template {name}: steps[{i}].name",
                    f"expands to {n!r}, as steps[{seen[n]}] does; step names must be unique",
                )
            )
        elif isinstance(n, str):
            seen[n] = i
    if errors:
        return None, values, errors
    own = {k: v for k, v in spec.items() if k not in {"template", "parameters", "steps"}}
    return {**own, "steps": steps}, values, []
