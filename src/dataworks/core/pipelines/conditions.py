"""Whether a step whose dependencies ended runs, by its condition (pure layer, Pipeline policy).

A step's condition (its `when:` and the seed's `config.conditions`, as one CEL
expression: core.pipelines.whens) is checked twice:
- **before anything runs** (`problems`): it compiles, uses only `steps`,
  `params`, `now` and `pipeline`, and names only steps it depends on, directly
  or not, so their outputs exist when it is evaluated;
- **when the step would start** (`decide`), over the steps' phases and
  outputs, the parameters, the pipeline and the planner's `now`. False skips
  the step, with the expression and the values it read in the message; an
  error (a missing output, a wrong type) fails it with the error; anything
  but true or false is an error too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from dataworks.core.kit import expressions
from dataworks.core.pipelines.steps import SpecError, StepDef

VARIABLES = frozenset({"steps", "params", "now", "pipeline"})

# steps.name or steps["name"] / steps['name'], then any .field / ["field"] after it.
_STEP = re.compile(r"""\bsteps\s*(?:\.\s*([A-Za-z_]\w*)|\[\s*(["'])(.+?)\2\s*\])""")
_PATH = re.compile(
    r"""\b(?:steps|params|pipeline)(?:\s*\.\s*[A-Za-z_]\w*|\s*\[\s*(["']).+?\1\s*\])+|\bnow\b"""
)
_DASHED = re.compile(r"\bsteps\.([a-z0-9]+(?:-[a-z0-9]+)+)")

Outcome = Literal["run", "skip", "fail"]


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    message: str = ""


def referenced_steps(source: str) -> list[str]:
    """The step names an expression reads, in order of appearance."""
    return [m[1] or m[3] for m in _STEP.finditer(source)]


def problems(sdef: StepDef, ancestors: set[str], names: set[str]) -> list[SpecError]:
    """Why the step's condition cannot run, naming the field; [] when it can."""
    if sdef.when is None:
        return []
    dashed = _DASHED.search(sdef.when)
    if dashed:
        fix = f'steps["{dashed[1]}"]'
        return [SpecError(sdef.name, "when", f"steps.{dashed[1]} reads as a subtraction; write {fix}")]
    try:
        expressions.compile_expression(sdef.when, VARIABLES)
    except expressions.ExpressionError as e:
        return [SpecError(sdef.name, "when", f"{e} in {sdef.when!r}")]
    out = []
    for ref in dict.fromkeys(referenced_steps(sdef.when)):
        if ref not in names:
            why = f"reads step {ref!r}, which is not a step of this pipeline"
            out.append(SpecError(sdef.name, "when", why))
        elif ref not in ancestors:
            out.append(
                SpecError(
                    sdef.name,
                    "when",
                    f"reads step {ref!r}, which it does not depend on; add {ref!r} to dependsOn "
                    "so its outputs exist when the condition is evaluated",
                )
            )
    return out


def variables(
    steps: dict[str, tuple[str, dict[str, Any] | None]],
    *,
    params: dict[str, Any],
    pipeline: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """What an expression sees: each step's phase and outputs, the parameters, the pipeline, now."""
    return {
        "steps": {name: {"phase": phase, "outputs": out or {}} for name, (phase, out) in steps.items()},
        "params": params,
        "pipeline": pipeline,
        "now": now,
    }


def decide(sdef: StepDef, seen: dict[str, Any]) -> Decision:
    """Run, skip or fail the step, by its condition over `seen` (`variables`)."""
    if sdef.when is None:
        return Decision("run")
    try:
        compiled = expressions.compile_expression(sdef.when, VARIABLES)
        value = expressions.evaluate(compiled, seen)
    except expressions.ExpressionError as e:
        return Decision("fail", f"when: {sdef.when}: {e}{_values(sdef.when, seen)}")
    if value is True:
        return Decision("run")
    if value is False:
        return Decision("skip", f"when: {sdef.when} is false{_values(sdef.when, seen)}")
    got = json.dumps(value, default=str)
    return Decision("fail", f"when: {sdef.when}: must be true or false, got {got}")


def _values(source: str, seen: dict[str, Any]) -> str:
    """The values an expression read, for the message: ` (steps.fetch.outputs.bytes = 12, ...)`."""
    shown: dict[str, str] = {}
    for m in _PATH.finditer(source):
        path = re.sub(r"\s+", "", m[0])
        if path in shown:
            continue
        value = _lookup(path, seen)
        if value is not _MISSING:
            text = value.isoformat() if isinstance(value, datetime) else json.dumps(value, default=str)
            shown[path] = text if len(text) <= 80 else text[:77] + "..."
    if not shown:
        return ""
    return " (" + ", ".join(f"{k} = {v}" for k, v in shown.items()) + ")"


_MISSING = object()
_PART = re.compile(r"""\.([A-Za-z_]\w*)|\[(["'])(.+?)\2\]""")


def _lookup(path: str, seen: dict[str, Any]) -> Any:
    root = re.match(r"[A-Za-z_]\w*", path)
    if root is None or root[0] not in seen:
        return _MISSING
    value = seen[root[0]]
    for m in _PART.finditer(path, root.end()):
        key = m[1] or m[3]
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value
