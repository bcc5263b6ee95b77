"""Problem summaries in a status: the first few, and how many more."""

from __future__ import annotations

import pytest

from dataworks.core.kit import texts


@pytest.mark.parametrize(
    ("problems", "shown", "text"),
    [
        pytest.param([], 5, "", id="none"),
        pytest.param(["a"], 5, "a", id="one"),
        pytest.param(["a", "b", "c"], 3, "a; b; c", id="exactly-as-many-as-shown"),
        pytest.param(["a", "b", "c", "d"], 3, "a; b; c; and 1 more", id="one-more"),
        pytest.param([1, 2, 3, 4, 5, 6, 7], 2, "1; 2; and 5 more", id="any-objects"),
    ],
)
def test_summary(problems: list[object], shown: int, text: str) -> None:
    assert texts.summary(problems, shown) == text
