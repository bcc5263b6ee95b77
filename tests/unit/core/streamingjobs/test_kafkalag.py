"""Kafka lag from offsets: a table over the partition states that matter."""

from __future__ import annotations

import pytest

from dataworks.core.streamingjobs import kafkalag
from dataworks.core.streamingjobs.kafkalag import Partition


@pytest.mark.parametrize(
    ("p", "start_from", "lag"),
    [
        pytest.param(Partition(0, 100, 40), "earliest", 60, id="committed"),
        pytest.param(Partition(0, 100, 100), "earliest", 0, id="caught-up"),
        pytest.param(Partition(20, 100, None), "earliest", 80, id="no-commit-earliest-reads-all-retained"),
        pytest.param(Partition(20, 100, None), "latest", 0, id="no-commit-latest-waits-for-new"),
        pytest.param(Partition(70, 100, 40), "earliest", 30, id="retention-passed-the-commit"),
        pytest.param(Partition(0, 0, None), "earliest", 0, id="empty"),
        pytest.param(Partition(0, 100, 120), "earliest", 0, id="never-negative"),
    ],
)
def test_partition_lag(p: Partition, start_from: kafkalag.StartFrom, lag: int) -> None:
    assert kafkalag.partition_lag(p, start_from) == lag


def test_the_topics_lag_is_the_sum_and_always_exact() -> None:
    parts = {0: Partition(0, 100, 40), 1: Partition(0, 50, None), 2: Partition(0, 10, 10)}
    found = kafkalag.lag(parts, "earliest")
    assert (found.entries, found.exact, found.how) == (110, True, "offsets")
    assert kafkalag.lag({0: Partition(0, 5, 5)}, "earliest").how == "caught-up"
    assert kafkalag.produced(parts) == 160
