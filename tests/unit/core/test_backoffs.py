"""Table-driven tests of the retry policy: which answers are transient, and the wait schedule."""

from __future__ import annotations

import pytest

from dataworks.core.kit import backoffs


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (200, False),
        (201, False),
        (400, False),
        (403, False),
        (404, False),
        (409, False),  # AlreadyExists / Conflict is an answer, not a failure to answer
        (422, False),
        (429, True),  # API Priority and Fairness: come back later
        (500, True),
        (501, False),  # Not Implemented will not be implemented by the next try
        (502, True),
        (503, True),
        (504, True),
        (505, False),
    ],
)
def test_transient_statuses(status: int, transient: bool) -> None:
    assert backoffs.transient(status) is transient


DEFAULT = backoffs.Backoff()


@pytest.mark.parametrize(
    ("policy", "attempt", "rand", "retry_after", "wait"),
    [
        # Exponential from `first`, doubling.
        (DEFAULT, 1, 0.0, None, 0.1),
        (DEFAULT, 2, 0.0, None, 0.2),
        (DEFAULT, 3, 0.0, None, 0.4),
        (DEFAULT, 6, 0.0, None, 3.2),
        # Capped: never above `cap`, however many tries failed.
        (DEFAULT, 7, 0.0, None, 5.0),
        (DEFAULT, 11, 0.0, None, 5.0),
        (DEFAULT, 60, 0.0, None, 5.0),
        # Jitter shortens each wait by up to half, so it spreads even at the cap.
        (DEFAULT, 1, 0.5, None, 0.075),
        (DEFAULT, 1, 0.999, None, 0.05005),
        (DEFAULT, 11, 0.5, None, 3.75),
        # A server's Retry-After is a floor, itself capped.
        (DEFAULT, 1, 0.0, 1.0, 1.0),
        (DEFAULT, 7, 0.0, 1.0, 5.0),
        (DEFAULT, 1, 0.0, 600.0, 5.0),
        # Other shapes.
        (backoffs.Backoff(first=1, factor=1, jitter=0), 5, 0.9, None, 1.0),
        (backoffs.Backoff(first=0.5, factor=3, cap=2, jitter=0), 2, 0.9, None, 1.5),
        (backoffs.Backoff(first=0.5, factor=3, cap=2, jitter=0), 3, 0.9, None, 2.0),
        (backoffs.Backoff(first=0, jitter=0), 4, 0.3, None, 0.0),
    ],
)
def test_wait(
    policy: backoffs.Backoff, attempt: int, rand: float, retry_after: float | None, wait: float
) -> None:
    assert policy.wait(attempt, rand, retry_after) == pytest.approx(wait)


@pytest.mark.parametrize(
    ("policy", "attempt", "more"),
    [
        (DEFAULT, 1, True),
        (DEFAULT, 11, True),
        (DEFAULT, 12, False),  # twelve tries in all, as client-go's event broadcaster
        (backoffs.Backoff(tries=1), 1, False),
        (backoffs.Backoff(tries=2), 1, True),
    ],
)
def test_retries_left(policy: backoffs.Backoff, attempt: int, more: bool) -> None:
    assert policy.retries_left(attempt) is more


def test_default_gives_up_within_about_half_a_minute() -> None:
    # 0.1 + 0.2 + 0.4 + 0.8 + 1.6 + 3.2 + 5 * 5 seconds of waiting between the 12 tries
    assert DEFAULT.longest() == pytest.approx(31.3)


@pytest.mark.parametrize(
    "kwargs",
    [{"tries": 0}, {"first": -1}, {"factor": 0.5}, {"cap": -1}, {"jitter": 1.5}, {"jitter": -0.1}],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="invalid backoff"):
        backoffs.Backoff(**kwargs)  # type: ignore[arg-type]


def test_attempts_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        DEFAULT.wait(0, 0.0)
