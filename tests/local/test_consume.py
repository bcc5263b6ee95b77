"""`dataworks consume` against a real redis-server: at least once, with a consumer killed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from dataworks.core.streams.sequences import check
from tests.local import services
from tests.local.processes import STARTED

CLI = [sys.executable, "-m", "dataworks.cli.main"]


@pytest.fixture
def r(redis_server: services.Redis) -> Iterator[redis.Redis]:
    client = redis.Redis(port=redis_server.port)
    client.flushall()
    yield client
    client.close()


def generate(target: str, *args: str) -> None:
    done = subprocess.run([*CLI, "generate", "-q", *args, "-o", target], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr


def produce(server: services.Redis, tmp_path: Path, *args: str) -> list[bytes]:
    """The same messages into the stream and into a file, whose lines the test reads."""
    out = tmp_path / "sent.jsonl"
    generate(f"{server.url}?stream=md", *args)
    generate(str(out), *args)
    return out.read_bytes().splitlines()


def consumer(server: services.Redis, name: str, *args: str) -> subprocess.Popen[str]:
    cmd = [*CLI, "consume", "--redis", server.url, "--stream", "md", "--group", "g", "--consumer", name]
    p = subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    STARTED.append(p)
    return p


def _consumers(r: redis.Redis) -> list[dict[str, Any]]:
    try:
        return list(r.xinfo_consumers("md", "g"))
    except redis.ResponseError:  # no group yet
        return []


def holding(r: redis.Redis, name: str) -> int:
    """How many entries consumer `name` has read and not acknowledged (0 before the group exists)."""
    try:
        consumers = r.xinfo_consumers("md", "g")
    except redis.ResponseError:  # NOGROUP: no consumer has created it yet
        return 0
    return next((int(c["pending"]) for c in consumers if c["name"] == name.encode()), 0)


def wait_holding(r: redis.Redis, name: str) -> int:
    deadline = time.monotonic() + 30
    while not (n := holding(r, name)):
        assert time.monotonic() < deadline, f"consumer {name} never read"
        time.sleep(0.01)
    return n


def last_sequences(lines: list[bytes]) -> dict[str, int]:
    last: dict[str, int] = {}
    for line in lines:
        m = json.loads(line)
        last[m["symbol"]] = max(last.get(m["symbol"], 0), m["sequence_number"])
    return last


def report_of(p: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    return dict(json.loads(out))


def parses(line: bytes) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def test_two_consumers_share_the_stream_drop_duplicates_and_count_malformed_lines(
    redis_server: services.Redis, r: redis.Redis, tmp_path: Path
) -> None:
    # The consumers wait on the group first, so the messages are shared out as they arrive.
    ps = [consumer(redis_server, n, "--idle-exit", "1.5", "--block-ms", "200") for n in ("c1", "c2")]
    deadline = time.monotonic() + 30
    while len(_consumers(r)) < 2:
        assert time.monotonic() < deadline, "the consumers never joined the group"
        time.sleep(0.02)
    faults = tmp_path / "faults.yaml"
    faults.write_text("rate: 20000\nfailures: {duplicates: 0.01, malformed: 0.002}\n")
    sent = produce(redis_server, tmp_path, "--seed", "4", "--count", "30000", "--config", str(faults))
    # The same seed without cut-short lines gives the same messages (every draw is made either way).
    faults.write_text("rate: 20000\nfailures: {duplicates: 0.01, malformed: 0}\n")
    generate(str(tmp_path / "clean.jsonl"), "--seed", "4", "--count", "30000", "--config", str(faults))
    clean = (tmp_path / "clean.jsonl").read_bytes().splitlines()
    assert all(parses(line) for line in clean)
    bad = [line for line in sent if not parses(line)]
    reports = [report_of(p) for p in ps]
    result = check(reports, last_sequences(clean))
    assert result["lost"] == len(set(bad))  # a cut-short message cannot be read back; nothing else is lost
    assert sum(rep["errors"] for rep in reports) == len(bad)
    dropped = sum(rep["duplicates"] for rep in reports) + result["duplicated"]
    readable = [line for line in sent if parses(line)]
    assert dropped == len(readable) - len(set(readable))  # each message sent twice is processed once
    assert all(rep["processed"] > 0 for rep in reports)  # both had a share
    assert r.xpending("md", "g")["pending"] == 0


def test_a_killed_consumers_pending_messages_are_claimed_and_none_is_lost(
    redis_server: services.Redis, r: redis.Redis, tmp_path: Path
) -> None:
    sent = produce(redis_server, tmp_path, "--seed", "5", "--count", "100000", "--rate", "50000")
    # It commits its report every 0.2 s and acknowledges only what a written report counts.
    committed = tmp_path / "doomed.json"
    doomed = consumer(
        redis_server, "doomed", "--batch", "200", "--report", str(committed), "--commit-every", "0.2"
    )
    deadline = time.monotonic() + 30
    while (
        not committed.exists()
        or json.loads(committed.read_text())["processed"] < 1000
        or not holding(r, "doomed")
    ):
        assert time.monotonic() < deadline, "the consumer never committed"
        time.sleep(0.01)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    left = holding(r, "doomed")
    assert left > 0  # it died holding messages it had read and not acknowledged
    args = ("--idle-exit", "2", "--claim-idle-ms", "500", "--block-ms", "200")
    reports = [report_of(p) for p in [consumer(redis_server, n, *args) for n in ("a", "b")]]
    assert sum(rep["claimed"] for rep in reports) >= left
    doomed_report = json.loads(committed.read_text())  # its last commit, written before its XACKs
    result = check([doomed_report, *reports], last_sequences(sent))
    assert result["lost"] == 0
    assert result["duplicated"] >= 0  # what it processed after its last commit, processed again
    assert r.xpending("md", "g")["pending"] == 0


def test_sigterm_acknowledges_the_batch_in_hand_and_a_restart_resumes(
    redis_server: services.Redis, r: redis.Redis, tmp_path: Path
) -> None:
    produce(redis_server, tmp_path, "--seed", "6", "--count", "50000", "--rate", "50000")
    p = consumer(redis_server, "steady", "--batch", "50")
    wait_holding(r, "steady")
    p.send_signal(signal.SIGTERM)
    first = report_of(p)
    assert r.xpending("md", "g")["pending"] == 0  # what it read, it acknowledged
    again = report_of(consumer(redis_server, "steady", "--idle-exit", "1", "--block-ms", "200"))
    assert first["processed"] + again["processed"] == 50_000
