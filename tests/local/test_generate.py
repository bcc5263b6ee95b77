"""`dataworks generate` as a user runs it, against a real redis-server the test starts."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import redis
import yaml

from tests.local import services

CLI = [sys.executable, "-m", "dataworks.cli.main"]


def generate(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "generate", "-q", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_a_file_and_stdout_get_the_same_bytes_for_the_same_seed(tmp_path: Path) -> None:
    out = tmp_path / "day.jsonl"
    assert generate("--seed", "9", "--count", "5000", "-o", str(out)).returncode == 0
    piped = subprocess.run(
        [*CLI, "generate", "-q", "--seed", "9", "--count", "5000", "-o", "-"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(piped.stdout).digest()
    assert len(out.read_bytes().splitlines()) == 5000
    assert not list(tmp_path.glob("*.part"))


def test_a_device_or_a_pipe_is_written_in_place_never_replaced(tmp_path: Path) -> None:
    # Writing to /dev/null once replaced it with a regular file (the .part rename), as root.
    assert generate("--count", "2000", "-o", "/dev/null").returncode == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received = tmp_path / "received.jsonl"
    with received.open("wb") as sink:
        reader = subprocess.Popen(["cat", str(fifo)], stdout=sink)
        assert generate("--count", "2000", "-o", str(fifo)).returncode == 0
        assert reader.wait(timeout=30) == 0
    assert len(received.read_bytes().splitlines()) == 2000
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    done = generate("--count", "5", "-o", str(tmp_path))
    assert done.returncode == 2
    assert "is a directory" in done.stderr


def test_four_processes_fill_one_stream_with_every_symbol_in_order(redis_server: services.Redis) -> None:
    url = f"{redis_server.url}?stream=quad"
    done = generate("--seed", "3", "--count", "40000", "--rate", "20000", "-p", "4", "-o", url)
    assert done.returncode == 0, done.stderr
    r = redis.Redis.from_url(redis_server.url)
    entries = r.xrange("quad")
    assert len(entries) == 40000
    per: dict[str, list[int]] = defaultdict(list)
    for _, fields in entries:
        m = json.loads(fields[b"data"])
        per[m["symbol"]].append(m["sequence_number"])
    assert len(per) == 20
    for seqs in per.values():  # each symbol from one process: no gap, no swap
        assert seqs == list(range(1, len(seqs) + 1))
    # The same messages as one process would send.
    single = generate(
        "--seed", "3", "--count", "40000", "--rate", "20000", "-o", f"{redis_server.url}?stream=one"
    )
    assert single.returncode == 0, single.stderr
    assert sorted(f[b"data"] for _, f in r.xrange("one")) == sorted(f[b"data"] for _, f in entries)


def test_a_config_file_with_flags_over_it(tmp_path: Path, redis_server: services.Redis) -> None:
    config = tmp_path / "gen.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "seed": 1,
                "count": 100,
                "rate": 1000,
                "schemaVersions": [{"version": 2, "at": 0, "change": "addField"}],
            }
        )
    )
    url = f"{redis_server.url}?stream=cfg&maxlen=1000"
    done = generate("--config", str(config), "--count", "300", "-o", url)
    assert done.returncode == 0, done.stderr
    entries = redis.Redis.from_url(redis_server.url).xrange("cfg")
    assert len(entries) == 300
    assert all(json.loads(f[b"data"])["currency"] == "USD" for _, f in entries)


def test_bad_input_names_the_field_or_the_target_and_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"count": 10, "patterns": {"diurnal": {"timezone": "Mars/Olympus"}}}))
    out = tmp_path / "out.jsonl"
    cases = [
        (["--config", str(config)], "field patterns.diurnal.timezone: unknown time zone 'Mars/Olympus'"),
        (["--rate", "100"], "give count or durationSeconds"),
        (["--count", "5", "--rate", "-1"], "field rate: Input should be greater than or equal to 0"),
        (["--count", "5", "-p", "2"], "--processes > 1 needs a broker output"),
    ]
    for args, message in cases:
        done = generate(*args, "-o", str(out))
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, done.stderr
    port = services.free_port()  # nothing listens there
    done = generate("--count", "5", "-o", f"redis://127.0.0.1:{port}/0?stream=x")
    assert done.returncode == 2
    assert "cannot reach Redis" in done.stderr
    for target, message in [
        ("kafka://127.0.0.1:9?topic=t", "cannot reach Kafka at 127.0.0.1:9"),
        ("kafka://127.0.0.1:9/t", "name the topic with ?topic=NAME"),
        ("redis://127.0.0.1:1/market", "the path is the database number"),
        (str(tmp_path / "no" / "such" / "dir.jsonl"), "does not exist"),
    ]:
        done = generate("--count", "5", "-o", target)
        assert done.returncode == 2, (target, done.stderr)
        assert message in done.stderr, done.stderr
    assert not out.exists()
    assert not list(tmp_path.glob("*.part"))


def test_the_market_day_example_peaks_in_market_hours_changes_schema_at_noon_and_falls_silent(
    tmp_path: Path,
) -> None:
    from datetime import datetime, timedelta, timezone

    out = tmp_path / "day.jsonl"
    example = Path(__file__).resolve().parents[2] / "examples" / "streams" / "market-day.yaml"
    done = generate("--config", str(example), "-o", str(out), timeout=600)
    assert done.returncode == 0, done.stderr
    new_york = timezone(timedelta(hours=-5))
    per_hour = [0] * 24
    silent = 0
    versions: dict[int, list[int]] = defaultdict(list)
    malformed = 0
    for raw in out.read_bytes().splitlines():
        try:
            m = json.loads(raw)
        except json.JSONDecodeError:
            malformed += 1
            continue
        at = datetime.fromtimestamp(m["timestamp"] / 1e6, new_york)
        per_hour[at.hour] += 1
        versions[m["v"]].append(at.hour)
        silent += at.hour == 14 and at.minute < 2
    assert max(range(24), key=per_hour.__getitem__) == 10  # the peak at 10:30
    assert per_hour[10] > 5 * per_hour[2]  # peakMultiplier 8 against the night
    assert (max(versions[1]), min(versions[2])) == (11, 12)  # the schema changes at noon
    assert silent == 0  # the outage at 14:00
    assert 0 < malformed < 0.001 * sum(per_hour)
