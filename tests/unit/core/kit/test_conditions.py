"""Pins how any kind's conditions are written (core/kit/conditions.py): a missing condition is
added; lastTransitionTime moves only when the status flips, while reason, message and
observedGeneration follow every write; other conditions are left alone."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import pytest

from dataworks.api.meta import Condition
from dataworks.core.kit import conditions
from tests.builders.pipelines import T0, stamp


def cond(
    type_: str,
    status: Literal["True", "False", "Unknown"],
    *,
    at: float = 0,
    reason: str = "Old",
    generation: int = 1,
) -> Condition:
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message="old",
        last_transition_time=stamp(at),
        observed_generation=generation,
    )


@pytest.mark.parametrize(
    ("before", "value", "expected"),
    [
        pytest.param([], True, [("Complete", "True", stamp(60))], id="added-true"),
        pytest.param([], False, [("Complete", "False", stamp(60))], id="added-false"),
        pytest.param([cond("Complete", "False")], False, [("Complete", "False", stamp(0))], id="same-kept"),
        pytest.param([cond("Complete", "True")], True, [("Complete", "True", stamp(0))], id="same-true-kept"),
        pytest.param([cond("Complete", "False")], True, [("Complete", "True", stamp(60))], id="flip-to-true"),
        pytest.param(
            [cond("Complete", "True")], False, [("Complete", "False", stamp(60))], id="flip-to-false"
        ),
        pytest.param(
            [cond("Complete", "Unknown")], False, [("Complete", "False", stamp(60))], id="unknown-flips"
        ),
        pytest.param(
            [cond("Valid", "True", at=5), cond("Failed", "False", at=7)],
            True,
            [("Valid", "True", stamp(5)), ("Failed", "False", stamp(7)), ("Complete", "True", stamp(60))],
            id="others-untouched-new-appended",
        ),
    ],
)
def test_set_condition(before: list[Condition], value: bool, expected: list[tuple[str, str, str]]) -> None:
    conds = [c.model_copy() for c in before]
    conditions.set_condition(
        conds, "Complete", value, reason="New", message="new", now=T0 + timedelta(seconds=60), generation=2
    )
    assert [(c.type, c.status, c.last_transition_time) for c in conds] == expected
    complete = next(c for c in conds if c.type == "Complete")
    assert (complete.reason, complete.message, complete.observed_generation) == ("New", "new", 2)


def test_repeated_writes_keep_the_first_transition_time() -> None:
    conds: list[Condition] = []
    for i, (value, reason) in enumerate(
        [(False, "Pending"), (False, "Running"), (True, "Done"), (True, "Done")]
    ):
        conditions.set_condition(
            conds, "Complete", value, reason=reason, message="", now=T0 + timedelta(seconds=i), generation=1
        )
    assert len(conds) == 1
    assert (conds[0].status, conds[0].reason, conds[0].last_transition_time) == ("True", "Done", stamp(2))


@pytest.mark.parametrize(
    ("conds", "expected"),
    [
        pytest.param([], False, id="absent"),
        pytest.param([cond("Complete", "True")], True, id="true"),
        pytest.param([cond("Complete", "False")], False, id="false"),
        pytest.param([cond("Complete", "Unknown")], False, id="unknown"),
        pytest.param([cond("Failed", "True")], False, id="other-type"),
    ],
)
def test_is_true(conds: list[Condition], expected: bool) -> None:
    assert conditions.is_true(conds, "Complete") is expected
