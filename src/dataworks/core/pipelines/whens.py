"""A step's condition as one CEL expression: its `when:` and the seed's `config.conditions`
(pure layer, Pipeline policy; no CEL here, so the worker that imports steps stays light).

The seed's three condition types are accepted as written and become CEL, so
one evaluator (core.pipelines.conditions) decides every condition, locally and
on a cluster alike:

| seed condition | CEL |
| --- | --- |
| `{type: data_size_threshold, min_size_gb: 15}` | `gb(steps["a"].outputs.bytes + ...) >= 15.0`: the bytes of the step's dependencies (or of `step: NAME`) |
| `{type: business_hours_only}` | `inHours(now, "09:00", "18:00", "UTC")`: the seed's hours 9 to 17; `timezone:` may name another zone |
| `{type: previous_step_result, step: check, required_result: passed}` | `steps["check"].outputs.result == "passed"` |

Several conditions, and a `when:` beside them, must all hold.
"""  # noqa: E501 (the table)

from __future__ import annotations

import json
from typing import Any

SEED_TYPES = ("data_size_threshold", "business_hours_only", "previous_step_result")


def step_ref(name: str) -> str:
    """How an expression names step `name`'s entry: always valid, whatever the name."""
    return f"steps[{json.dumps(name)}]"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _one(n: int, cond: Any, depends_on: tuple[str, ...]) -> tuple[str | None, tuple[str, str] | None]:
    """(expression, None) or (None, (field, problem)) for the n-th seed condition."""
    where = f"config.conditions[{n}]"
    if not isinstance(cond, dict):
        return None, (where, "must be an object with a type")
    kind = cond.get("type")
    if kind == "data_size_threshold":
        size = _number(cond.get("min_size_gb"))
        if size is None or size < 0:
            return None, (f"{where}.min_size_gb", "must be a number of GiB, e.g. 15")
        measured = [str(cond["step"])] if cond.get("step") else list(depends_on)
        if not measured:
            return None, (
                f"{where}.step",
                "data_size_threshold measures the bytes of a step: name it in step, or depend on it",
            )
        total = " + ".join(f"{step_ref(s)}.outputs.bytes" for s in measured)
        return f"gb({total}) >= {size!r}", None
    if kind == "business_hours_only":
        tz = str(cond.get("timezone") or "UTC")
        return f'inHours(now, "09:00", "18:00", {json.dumps(tz)})', None
    if kind == "previous_step_result":
        step, required = cond.get("step"), cond.get("required_result")
        if not isinstance(step, str) or not step:
            return None, (f"{where}.step", "must name the step whose result is required")
        if required is None:
            return None, (f"{where}.required_result", "must give the result required, e.g. passed")
        return f"{step_ref(step)}.outputs.result == {json.dumps(str(required))}", None
    known = ", ".join(SEED_TYPES)
    return None, (f"{where}.type", f"unknown condition type {kind!r}; the types are {known}, or use when:")


def expression(
    when: str | None, conditions: Any, depends_on: tuple[str, ...]
) -> tuple[str | None, list[tuple[str, str]]]:
    """The one CEL expression of a step's condition (None: it always runs), and the problems
    (field, message) found in `config.conditions`."""
    parts = [when.strip()] if when and when.strip() else []
    problems: list[tuple[str, str]] = []
    if conditions is not None:
        if not isinstance(conditions, list):
            return None, [("config.conditions", "must be a list of conditions, each with a type")]
        for n, cond in enumerate(conditions):
            expr, problem = _one(n, cond, depends_on)
            if problem is not None:
                problems.append(problem)
            elif expr is not None:
                parts.append(expr)
    if not parts:
        return None, problems
    if len(parts) == 1:
        return parts[0], problems
    return " && ".join(f"({p})" for p in parts), problems
