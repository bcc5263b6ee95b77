"""How many messages of a Kafka topic a consumer group has not processed yet (pure layer).

Kafka keeps what Redis does not: each partition's offsets are dense and its high watermark is
the next offset to be written, so the lag is exact from three numbers per partition, read in
one round of admin calls (streams/kafkabrokering.py):
- `high - committed` for a partition the group has committed on;
- for one it has not, what the group would read from where it starts: the whole retained
  partition (`high - low`) with `earliest`, nothing with `latest`;
- never below 0, and a committed offset that retention left behind (below `low`) counts from
  `low`: those messages are gone, not waiting.
Kafka has no per-message acknowledgement, so nothing is "pending" as in a Redis group: a
consumer commits an offset once everything before it was processed (at least once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from dataworks.core.streamingjobs.lag import Lag

StartFrom = Literal["earliest", "latest"]


@dataclass(frozen=True)
class Partition:
    low: int  # the first offset retained
    high: int  # the next offset to be written (the high watermark)
    committed: int | None  # the group's committed offset; None if it has none


def partition_lag(p: Partition, start_from: StartFrom) -> int:
    if p.committed is None:
        return p.high - p.low if start_from == "earliest" else 0
    return max(0, p.high - max(p.committed, p.low))


def lag(partitions: Mapping[int, Partition], start_from: StartFrom) -> Lag:
    """The group's lag over the topic's partitions: exact, always."""
    total = sum(partition_lag(p, start_from) for p in partitions.values())
    return Lag(total, True, "offsets" if total else "caught-up")


def produced(partitions: Mapping[int, Partition]) -> int:
    """Messages ever produced to the topic: the arrival counter the rate is measured on."""
    return sum(p.high for p in partitions.values())
