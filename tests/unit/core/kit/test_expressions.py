"""Pins the CEL engine (core/kit/expressions.py): a syntax error names its line and column, a
variable or function outside the allowed ones is refused at compile time (a comprehension's own
variable is not one), evaluation errors say what went wrong in one line, and the time and size
helpers read a timestamp in a time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dataworks.core.kit import expressions
from dataworks.core.kit.expressions import ExpressionError

ALLOWED = frozenset({"steps", "now", "params"})
# A Wednesday: 16:30 UTC is 17:30 in Berlin and 11:30 in New York.
WED = datetime(2026, 12, 2, 16, 30, tzinfo=UTC)
SAT = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def run(source: str, **variables: Any) -> Any:
    return expressions.evaluate(expressions.compile_expression(source, ALLOWED), variables)


@pytest.mark.parametrize(
    ("source", "variables", "expected"),
    [
        pytest.param("gb(x) >= 1.5", {"params": {}, "x": 0}, None, id="unknown-variable-never-evaluated"),
        pytest.param("gb(params.size) >= 1.5", {"params": {"size": 2 * 2**30}}, True, id="gb"),
        pytest.param("hour(now) == 16", {"now": WED}, True, id="hour-utc"),
        pytest.param('hour(now, "Europe/Berlin") == 17', {"now": WED}, True, id="hour-in-a-zone"),
        pytest.param("weekday(now) == 3", {"now": WED}, True, id="weekday-iso"),
        pytest.param('inHours(now, "09:00", "17:00")', {"now": WED}, True, id="in-window"),
        pytest.param('inHours(now, "09:00", "16:30")', {"now": WED}, False, id="end-is-exclusive"),
        pytest.param('inHours(now, "16:30", "17:00")', {"now": WED}, True, id="start-is-inclusive"),
        pytest.param('inHours(now, "22:00", "02:00")', {"now": WED}, False, id="across-midnight-out"),
        pytest.param('inHours(now, "16:00", "02:00")', {"now": WED}, True, id="across-midnight-in"),
        pytest.param('businessHours(now, "America/New_York")', {"now": WED}, True, id="business-ny"),
        pytest.param('businessHours(now, "Europe/Berlin")', {"now": WED}, True, id="business-berlin"),
        pytest.param('businessHours(now, "Asia/Tokyo")', {"now": WED}, False, id="after-hours-tokyo"),
        pytest.param("businessHours(now)", {"now": SAT}, False, id="weekend"),
        pytest.param(
            'steps["load-db"].outputs.rows > 10 && steps.fetch.phase == "Completed"',
            {"steps": {"load-db": {"outputs": {"rows": 11}}, "fetch": {"phase": "Completed"}}},
            True,
            id="dashed-name-by-index",
        ),
        pytest.param(
            "steps.a.outputs.rows >= 2.5",
            {"steps": {"a": {"outputs": {"rows": 3}}}},
            True,
            id="int-vs-double",
        ),
        pytest.param(
            "steps.all(s, steps[s].phase == 'Completed')",
            {"steps": {"a": {"phase": "Completed"}, "b": {"phase": "Completed"}}},
            True,
            id="comprehension-variable",
        ),
    ],
)
def test_evaluate(source: str, variables: dict[str, Any], expected: Any) -> None:
    if expected is None:
        with pytest.raises(ExpressionError, match="unknown variable 'x'"):
            run(source, **variables)
        return
    assert run(source, **variables) is expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param(
            "steps.a.outputs.rows >", "line 1, column 23: Syntax error: mismatched input '<EOF>'", id="syntax"
        ),
        pytest.param(
            "stepz.a == 1",
            "unknown variable 'stepz'; an expression may use now, params, steps",
            id="variable",
        ),
        pytest.param("hours(now) == 1", "unknown function 'hours'", id="function"),
    ],
)
def test_compile_errors(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as e:
        expressions.compile_expression(source, ALLOWED)
    assert str(e.value).startswith(message), str(e.value)


@pytest.mark.parametrize(
    ("source", "variables", "message"),
    [
        pytest.param(
            "steps.a.outputs.rows > 1",
            {"steps": {"a": {"outputs": {}}}},
            "no such key: 'rows'",
            id="missing-key",
        ),
        pytest.param(
            'hour(now, "Mars/Base") == 1', {"now": WED}, "unknown time zone 'Mars/Base'", id="bad-zone"
        ),
        pytest.param(
            'inHours(now, "9am", "17:00")', {"now": WED}, "'9am' is not a time of day", id="bad-clock"
        ),
        pytest.param('params.n + "x" == "1x"', {"params": {"n": 1}}, "No such overload", id="types"),
    ],
)
def test_evaluation_errors(source: str, variables: dict[str, Any], message: str) -> None:
    with pytest.raises(ExpressionError) as e:
        run(source, **variables)
    assert message in str(e.value), str(e.value)
    assert "\n" not in str(e.value)
