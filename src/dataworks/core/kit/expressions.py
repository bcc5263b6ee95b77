"""CEL expressions (pure layer): compile with the error's position, evaluate with our helpers.

The language is the Common Expression Language, the one of Kubernetes
validation rules and Tekton's `when`, evaluated by `common-expression-language`
(Rust's `cel` crate; docs/decisions.md says why). An expression is compiled
once: a syntax error names its line and column, and a variable outside the
ones a caller allows is refused, so bad input is reported before anything
runs. Evaluation is pure: time comes in as a variable (`now`), never from a
clock.

Helpers, beyond CEL's standard library (which has `timestamp`, `duration`,
`size`, `has`, `exists`, `all`, ...):

| helper | meaning |
| --- | --- |
| `gb(bytes)` | bytes in GiB (2^30), a double: `gb(steps.fetch.outputs.bytes) >= 15` |
| `hour(t[, tz])` | the hour (0-23) of timestamp `t` in time zone `tz` (default UTC) |
| `weekday(t[, tz])` | the ISO day of week of `t` in `tz`: 1 Monday ... 7 Sunday |
| `inHours(t, "09:00", "17:30"[, tz])` | `t` is in the daily window: start inclusive, end |
| | exclusive; a window may cross midnight |
| `businessHours(t[, tz])` | Monday to Friday, 09:00 to 18:00, in `tz` |
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import cel

GIB = 2**30


class ExpressionError(ValueError):
    """An expression that does not compile, or fails when evaluated."""


@dataclass(frozen=True)
class Compiled:
    """A compiled expression, and the top-level variables it reads."""

    source: str
    program: cel.Program
    variables: frozenset[str]


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {tz!r} (an IANA name such as Europe/Berlin)") from e


def _local(t: datetime, tz: str) -> datetime:
    if not isinstance(t, datetime):
        raise TypeError(f"expected a timestamp such as now, got {type(t).__name__}")
    return t.astimezone(_zone(tz))


def _clock(value: str) -> time:
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value)
    if m is None:
        raise ValueError(f"{value!r} is not a time of day such as 09:00")
    return time(int(m[1]), int(m[2]))


def gb(size: float) -> float:
    return float(size) / GIB


def hour(t: datetime, tz: str = "UTC") -> int:
    return _local(t, tz).hour


def weekday(t: datetime, tz: str = "UTC") -> int:
    return _local(t, tz).isoweekday()


def in_hours(t: datetime, start: str, end: str, tz: str = "UTC") -> bool:
    now, a, b = _local(t, tz).time(), _clock(start), _clock(end)
    return a <= now < b if a <= b else now >= a or now < b


def business_hours(t: datetime, tz: str = "UTC") -> bool:
    return weekday(t, tz) <= 5 and in_hours(t, "09:00", "18:00", tz)


HELPERS: dict[str, Callable[..., Any]] = {
    "gb": gb,
    "hour": hour,
    "weekday": weekday,
    "inHours": in_hours,
    "businessHours": business_hours,
}

_BOUND = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
# `<input>:1:5: Syntax error: mismatched input '<EOF>' expecting {...}` in the parser's message.
_PARSE_ERROR = re.compile(r"<input>:(\d+):(\d+): (.*)")


def _parse_message(text: str) -> str:
    m = _PARSE_ERROR.search(text)
    if m is None:
        return text.splitlines()[0] if text else "does not compile"
    detail = re.sub(r" expecting \{.*", "", m[3]).rstrip()
    return f"line {m[1]}, column {m[2]}: {detail}"


@lru_cache(maxsize=4096)
def compile_expression(source: str, allowed: frozenset[str]) -> Compiled:
    """Compile `source`; ExpressionError names the position of a syntax error, or the
    variable or function that is not one of `allowed` / the helpers."""
    try:
        program = cel.compile(source)
    except (ValueError, RuntimeError) as e:
        raise ExpressionError(_parse_message(str(e))) from None
    # The compiler lists a comprehension's own variable (`x` of `list.all(x, ...)`) as a variable.
    bound = set(_BOUND.findall(source))
    variables = frozenset(program.variables()) - bound
    unknown = sorted(variables - allowed)
    if unknown:
        raise ExpressionError(
            f"unknown variable {unknown[0]!r}; an expression may use {', '.join(sorted(allowed))}"
        )
    called = {f for f in program.functions() if not f.startswith("_") and f[:1].islower()}
    strange = sorted(called - set(HELPERS) - _STANDARD)
    if strange:
        raise ExpressionError(
            f"unknown function {strange[0]!r}; the helpers are {', '.join(HELPERS)}, "
            "beside CEL's standard functions"
        )
    return Compiled(source=source, program=program, variables=variables)


# CEL's standard functions and macros as the compiler reports them (receiver-style calls too).
_STANDARD = frozenset(
    {
        "size", "has", "all", "exists", "exists_one", "map", "filter", "int", "uint", "double",
        "string", "bytes", "bool", "type", "dyn", "duration", "timestamp", "matches",
        "contains", "startsWith", "endsWith", "max", "min", "getHours", "getMinutes",
        "getSeconds", "getMilliseconds", "getDayOfWeek", "getDayOfMonth", "getDayOfYear",
        "getDate", "getMonth", "getFullYear", "in", "@in", "@not_strictly_false",
    }
)  # fmt: skip


def context() -> cel.Context:
    """An evaluation context with the helpers; set its variables with add_variable. One kept
    across evaluations (the alert rules', per message) saves the helpers' setup each time."""
    ctx = cel.Context()
    for name, fn in HELPERS.items():
        ctx.add_function(name, fn)
    return ctx


def evaluate(compiled: Compiled, variables: dict[str, Any], ctx: cel.Context | None = None) -> Any:
    """The expression's value over `variables`; ExpressionError says what went wrong."""
    ctx = ctx or context()
    for k, v in variables.items():
        if k in compiled.variables:
            ctx.add_variable(k, v)
    try:
        return compiled.program.execute(ctx)
    except (KeyError, RuntimeError, TypeError, ValueError) as e:
        raise ExpressionError(_runtime_message(e)) from None


def _runtime_message(e: Exception) -> str:
    if isinstance(e, KeyError):
        return f"no such key: {e.args[0]!r}"
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    m = re.search(r"Python function call failed: \w+: (.*?)(\. Check function arguments.*)?$", text)
    if m:
        return m[1]
    return re.sub(r"\. (Check|CEL does not|Convert).*$", "", text)
