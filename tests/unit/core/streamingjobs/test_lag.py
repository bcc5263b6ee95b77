"""The lag of a consumer group, in every state Redis can be in; never 0 while entries wait."""

from __future__ import annotations

import pytest

from dataworks.core.streamingjobs.lag import Group, Lag, Probe, Stream, StreamId, lag, needs_probe


def sid(ms: int, seq: int = 0) -> StreamId:
    return StreamId(ms, seq)


def stream(length: int, last: int, added: int, first: int | None) -> Stream:
    return Stream(length, sid(last), added, None if first is None else sid(first))


def group(delivered: int, read: int | None, redis_lag: int | None, pending: int = 0) -> Group:
    return Group(sid(delivered), read, redis_lag, pending)


@pytest.mark.parametrize(
    ("the_stream", "the_group", "probe", "expected"),
    [
        pytest.param(stream(0, 0, 0, None), group(0, 0, 0), None, Lag(0, True, "caught-up"), id="empty"),
        pytest.param(stream(5, 5, 5, 1), group(5, 5, 0), None, Lag(0, True, "caught-up"), id="caught-up"),
        pytest.param(stream(5, 5, 5, 1), group(2, 2, 3), None, Lag(3, True, "redis"), id="redis-knows"),
        pytest.param(
            stream(4, 9, 9, 6),
            group(3, 3, None),
            None,
            Lag(4, True, "whole-stream"),
            id="trimmed-past-the-group",
        ),
        pytest.param(
            stream(4, 5, 5, 1),
            group(1, 1, None),
            Probe(3, 1000),
            Lag(3, True, "probe"),
            id="xdel-undelivered",
        ),
        pytest.param(
            stream(4, 5, 5, 1),
            group(2, None, None),
            Probe(2, 1000),
            Lag(2, True, "probe"),
            id="setid-arbitrary",
        ),
        pytest.param(
            stream(90_000, 100_000, 100_000, 1),
            group(40_000, 40_000, None),
            Probe(1000, 1000),
            Lag(60_000, False, "estimate"),
            id="big-backlog-with-deletions-counts-from-entries-read",
        ),
        pytest.param(
            stream(80_000, 100_001, 100_000, 20_001),
            group(60_001, None, None),
            Probe(1000, 1000),
            Lag(40_000, False, "estimate"),
            id="big-backlog-after-setid-interpolates-ids",
        ),
        pytest.param(
            stream(5, 10, 10, 6),
            group(2, 2, 8),
            None,
            Lag(5, True, "whole-stream"),
            id="redis-overcounts-a-trim",
        ),
        pytest.param(
            stream(3000, 100_000, 100_000, 1),
            group(99_990, None, None),
            Probe(1000, 1000),
            Lag(1000, False, "estimate"),
            id="an-estimate-never-falls-below-what-the-probe-saw",
        ),
    ],
)
def test_lag(the_stream: Stream, the_group: Group, probe: Probe | None, expected: Lag) -> None:
    assert needs_probe(the_stream, the_group) == (probe is not None)
    assert lag(the_stream, the_group, probe) == expected


def test_a_probe_is_required_when_the_cheap_answers_do_not_apply() -> None:
    with pytest.raises(ValueError, match="needs a probe"):
        lag(stream(4, 5, 5, 1), group(1, 1, None))


def test_ids_parse_and_order_as_redis_orders_them() -> None:
    assert StreamId.parse(b"1700000000000-3") == StreamId(1700000000000, 3)
    assert StreamId.parse("5") == StreamId(5, 0)
    assert StreamId(5, 10) > StreamId(5, 9)
    assert StreamId(6, 0) > StreamId(5, 99)
    assert str(StreamId(7, 1)) == "7-1"
