"""What the StreamingJob controller reads from and does to a real redis-server
(streams/brokering.py): a reading in every state of the stream and its group, the consumers'
published reports, a gone consumer's entries reclaimed by a live `dataworks consume` at its next
claim (every 0.5 s, not after the 30 s idle time), and a gone consumer forgotten."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis

from dataworks.streams.brokering import Reading, RedisBroker, stats_key
from tests.local import services

CLI = [sys.executable, "-m", "dataworks.cli.main"]


@pytest.fixture
def r(redis_server: services.Redis) -> Iterator[redis.Redis]:
    client = redis.Redis(port=redis_server.port)
    client.flushall()
    yield client
    client.close()


def read(server: services.Redis, start_from: str = "earliest") -> Reading:
    async def once() -> Reading:
        b = RedisBroker(server.url, None)
        try:
            return await b.read("md", "g", start_from=start_from)
        finally:
            await b.close()

    return asyncio.run(once())


def add(r: redis.Redis, n: int, symbol: str = "AAA") -> list[bytes]:
    ids = []
    for i in range(n):
        msg = {"message_id": f"{symbol}-{i}", "symbol": symbol, "sequence_number": i, "timestamp": 0}
        ids.append(r.xadd("md", {"data": json.dumps(msg)}))
    return ids


def test_a_stream_that_does_not_exist_yet_has_nothing_waiting(
    redis_server: services.Redis, r: redis.Redis
) -> None:
    got = read(redis_server)
    assert (got.lag.entries, got.added, got.consumers) == (0, 0, {})


def test_before_the_group_exists_earliest_counts_the_whole_stream(
    redis_server: services.Redis, r: redis.Redis
) -> None:
    add(r, 7)
    assert read(redis_server).lag.entries == 7
    assert read(redis_server, "latest").lag.entries == 0


def test_lag_pending_consumers_and_reports(redis_server: services.Redis, r: redis.Redis) -> None:
    add(r, 10)
    r.xgroup_create("md", "g", id="0")
    r.xreadgroup("g", "c1", {"md": ">"}, count=4)
    r.hset(
        stats_key("md", "g"), "c1", json.dumps({"t": time.time(), "processed": 4, "busy": 0.01, "p99": 3.5})
    )
    r.hset(stats_key("md", "g"), "junk", "not json")
    got = read(redis_server)
    assert got.lag.entries == 6
    assert got.lag.exact
    assert got.pending == 4
    assert got.added == 10
    assert got.consumers == {"c1": 4}
    [report] = got.reports
    assert (report.consumer, report.processed, report.p99_ms) == ("c1", 4, 3.5)


def test_a_deleted_undelivered_entry_never_reads_as_zero_lag(
    redis_server: services.Redis, r: redis.Redis
) -> None:
    ids = add(r, 10)
    r.xgroup_create("md", "g", id="0")
    r.xreadgroup("g", "c1", {"md": ">"}, count=2)
    r.xdel("md", ids[5])  # Redis's own lag is null from now on
    got = read(redis_server)
    assert got.lag.entries == 7
    assert got.lag.how == "probe"


def test_a_gone_consumers_entries_are_processed_by_a_live_one_at_its_next_claim(
    redis_server: services.Redis, r: redis.Redis
) -> None:
    add(r, 50)
    r.xgroup_create("md", "g", id="0")
    r.xreadgroup("g", "gone", {"md": ">"}, count=50)  # read, never acknowledged: its pod is gone
    live = subprocess.Popen(
        [*CLI, "consume", "--redis", redis_server.url, "--stream", "md", "--group", "g", "--consumer", "live",
         "--claim-idle-ms", "30000", "--claim-every", "0.5", "--publish-stats", "--idle-exit", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # the live consumer runs, and claims nothing: the entries are fresh
        assert r.xpending("md", "g")["pending"] == 50

        async def reclaim() -> int:
            b = RedisBroker(redis_server.url, None)
            try:
                return await b.reclaim("md", "g", "gone")
            finally:
                await b.close()

        marked_at = time.monotonic()
        assert asyncio.run(reclaim()) == 50
        while r.xpending("md", "g")["pending"] and time.monotonic() - marked_at < 5:
            time.sleep(0.05)
        took = time.monotonic() - marked_at
        assert r.xpending("md", "g")["pending"] == 0
        # Long before the 30 s claim idle time: the mark made them claimable, not the wait. (How
        # fast, end to end on the cluster, is benchmarks/bench_streamingjob.py's measure.)
        assert took < 10.0, f"reclaimed entries were processed {took:.2f} s after the mark"
        out, err = live.communicate(timeout=30)
    finally:
        if live.poll() is None:
            live.kill()
            live.communicate()
    report = json.loads(out)
    assert (report["processed"], report["claimed"]) == (50, 50), err
    published = json.loads(r.hget(stats_key("md", "g"), "live") or b"{}")
    assert {"t", "processed", "busy", "seconds"} <= published.keys()


def test_a_gone_consumer_with_nothing_pending_is_forgotten(
    redis_server: services.Redis, r: redis.Redis
) -> None:
    add(r, 3)
    r.xgroup_create("md", "g", id="0")
    r.xreadgroup("g", "old", {"md": ">"}, count=3)
    r.xack("md", "g", *[e[0] for e in r.xrange("md")])
    r.hset(stats_key("md", "g"), "old", "{}")

    async def forget() -> None:
        b = RedisBroker(redis_server.url, None)
        try:
            await b.forget("md", "g", "old")
        finally:
            await b.close()

    asyncio.run(forget())
    assert r.xinfo_consumers("md", "g") == []
    assert not r.hexists(stats_key("md", "g"), "old")


def test_a_gone_consumers_pending_list_is_marked_in_bounded_rounds_each_entry_once(
    redis_server: services.Redis, r: redis.Redis
) -> None:
    """25,000 pending (a consumer killed at 40K messages/s with its last second unacknowledged):
    20,000 marked at the first reading, the other 5,000 at the next, none twice."""
    pipe = r.pipeline(transaction=False)
    for i in range(25_000):
        pipe.xadd("md", {"data": json.dumps({"message_id": f"m{i}", "symbol": "A", "sequence_number": i})})
    pipe.execute()
    r.xgroup_create("md", "g", id="0")
    r.xreadgroup("g", "gone", {"md": ">"}, count=25_000)

    async def readings() -> list[int]:
        b = RedisBroker(redis_server.url, None)  # the operator's, kept from reading to reading
        try:
            return [await b.reclaim("md", "g", "gone") for _ in range(3)]
        finally:
            await b.close()

    assert asyncio.run(readings()) == [20_000, 5_000, 0]
    rows = r.xpending_range("md", "g", min="-", max="+", count=25_000)
    assert all(row["time_since_delivered"] > 2**30 for row in rows)  # every one claimable at once
