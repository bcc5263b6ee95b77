"""Which archives expire: older than the retention time, then the oldest over each namespace's cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dataworks.core.jobhandler.retention import Kept, expired

NOW = datetime(2026, 12, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def kept(ns: str, name: str, age_days: float) -> Kept:
    return Kept(ns, name, NOW - age_days * DAY)


@pytest.mark.parametrize(
    ("archives", "cap", "gone"),
    [
        pytest.param([], 10, [], id="none"),
        pytest.param([kept("a", "x", 1)], 10, [], id="young"),
        pytest.param([kept("a", "x", 8), kept("a", "y", 1)], 10, ["x"], id="one-too-old"),
        pytest.param([kept("a", "x", 7)], 10, [], id="exactly-seven-days-is-kept"),
        pytest.param(
            [kept("a", "x", 3), kept("a", "y", 2), kept("a", "z", 1)], 2, ["x"], id="over-cap-oldest-goes"
        ),
        pytest.param(
            [kept("a", "x", 3), kept("b", "y", 2), kept("b", "z", 1)], 1, ["y"], id="cap-is-per-namespace"
        ),
        pytest.param(
            [kept("a", "old", 9), kept("a", "x", 3), kept("a", "y", 2)],
            1,
            ["old", "x"],
            id="expired-do-not-count-toward-the-cap",
        ),
    ],
)
def test_expired(archives: list[Kept], cap: int, gone: list[str]) -> None:
    assert [a.name for a in expired(archives, NOW, 7 * DAY, cap)] == gone
