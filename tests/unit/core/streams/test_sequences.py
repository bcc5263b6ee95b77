"""Runs of sequence numbers, and the loss check over many consumers' reports."""

from __future__ import annotations

import random

import pytest

from dataworks.core.streams.sequences import Runs, check, runs


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], []),
        ([1], [[1, 1]]),
        ([3, 1, 2, 7, 2], [[1, 3], [7, 7]]),
        ([5, 6, 8, 9, 10], [[5, 6], [8, 10]]),
    ],
)
def test_runs(values: list[int], expected: list[list[int]]) -> None:
    assert runs(values) == expected


def test_check_counts_what_nobody_processed_and_what_two_did() -> None:
    a = {"processed": 4, "sequences": {"A": [[1, 3]], "B": [[1, 1]]}}
    b = {"processed": 3, "sequences": {"A": [[3, 4]], "B": [[3, 3]]}}
    # A5 and B2 lost; A3 twice; A1-A4, B1 and B3 processed
    assert check([a, b], {"A": 5, "B": 3}) == {"lost": 2, "duplicated": 1, "processed": 7, "distinct": 6}


def test_runs_built_one_number_at_a_time_match_runs_of_the_whole() -> None:
    rng = random.Random(3)
    for _ in range(200):
        values = [rng.randrange(60) for _ in range(rng.randrange(80))]
        built = Runs()
        for v in values:
            built.add(v)
        assert built.as_list() == runs(values), values
