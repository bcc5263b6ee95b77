"""Lag against a real redis-server in each state, beside what Redis's own XINFO lag says."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from dataworks.streams import lagreading
from tests.local import services


@pytest.fixture
def r(redis_server: services.Redis) -> Iterator[redis.Redis]:
    client = redis.Redis(port=redis_server.port)
    client.flushall()
    yield client
    client.close()


def fill(r: redis.Redis, n: int, key: str = "s") -> list[bytes]:
    return [r.xadd(key, {"n": i}) for i in range(n)]


def redis_lag(r: redis.Redis, group: str = "g") -> int | None:
    return next(g["lag"] for g in r.xinfo_groups("s") if g["name"] == group.encode())


def test_normal_redis_knows_and_so_do_we(r: redis.Redis) -> None:
    fill(r, 10)
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "c", {"s": ">"}, count=4)
    reading = lagreading.read(r, "s", "g")
    assert (reading.entries, reading.exact, reading.how) == (6, True, "redis")


def test_after_xdel_of_an_undelivered_entry_redis_says_null_we_count(r: redis.Redis) -> None:
    ids = fill(r, 10)
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "c", {"s": ">"}, count=4)
    r.xdel("s", ids[7])
    assert redis_lag(r) is None  # what KEDA's lag mode reads as 0
    reading = lagreading.read(r, "s", "g")
    assert (reading.entries, reading.exact) == (5, True)


def test_after_xtrim_past_the_group_the_whole_stream_waits(r: redis.Redis) -> None:
    fill(r, 10)
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "c", {"s": ">"}, count=2)
    r.xtrim("s", maxlen=5, approximate=False)
    reading = lagreading.read(r, "s", "g")
    assert (reading.entries, reading.exact) == (5, True)


def test_after_setid_to_an_arbitrary_id(r: redis.Redis) -> None:
    ids = fill(r, 10)
    r.xgroup_create("s", "g", id="0")
    r.xgroup_setid("s", "g", id=ids[3])
    assert redis_lag(r) is None
    reading = lagreading.read(r, "s", "g")
    assert (reading.entries, reading.exact) == (6, True)


def test_an_empty_group_at_the_end_and_a_new_group_at_the_start(r: redis.Redis) -> None:
    fill(r, 10)
    r.xgroup_create("s", "tail", id="$")
    r.xgroup_create("s", "head", id="0")
    assert lagreading.read(r, "s", "tail").entries == 0
    assert lagreading.read(r, "s", "head").entries == 10


def test_a_backlog_beyond_the_probe_is_estimated_never_zero(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(5000):
        pipe.xadd("s", {"n": i})
    ids = pipe.execute()
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "c", {"s": ">"}, count=1000)
    r.xdel("s", *ids[2000:2100])  # undelivered entries deleted: Redis's lag turns null
    assert redis_lag(r) is None
    reading = lagreading.read(r, "s", "g", limit=500)
    assert not reading.exact
    assert reading.entries >= 3900  # 3900 wait; the estimate counts the deleted 100 too
    assert reading.entries <= 4000


def test_an_unknown_group_is_named(r: redis.Redis) -> None:
    fill(r, 1)
    with pytest.raises(LookupError, match="no consumer group nope"):
        lagreading.read(r, "s", "nope")
