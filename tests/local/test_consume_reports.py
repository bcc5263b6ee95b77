"""`dataworks consume --report broker`: each consumer process commits its report to the broker
it reads, before it acknowledges, against a real redis-server and a real Kafka broker.

This is what `dataworks bench stream --cluster` reads for its loss check (a pod's files are
out of its reach): a consumer killed mid-run and restarted under the same name leaves two
reports, and the two together account for every sequence number.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis

from dataworks.core.streams.sequences import check
from dataworks.streams import sinks
from dataworks.streams.reportstore import read_kafka, read_redis, reports_key, reports_topic
from tests.local import services
from tests.local.processes import STARTED

CLI = [sys.executable, "-m", "dataworks.cli.main"]


def start(*args: str) -> subprocess.Popen[str]:
    p = subprocess.Popen([*CLI, "consume", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    STARTED.append(p)
    return p


def sent(tmp_path: Path, target: str, *args: str) -> dict[str, int]:
    """Generate into `target` and, identically, into a file; each symbol's last sequence number."""
    out = tmp_path / "sent.jsonl"
    for where in (target, str(out)):
        done = subprocess.run([*CLI, "generate", "-q", *args, "-o", where], capture_output=True, check=False)
        assert done.returncode == 0, done.stderr
    last: dict[str, int] = {}
    for line in out.read_bytes().splitlines():
        m = json.loads(line)
        last[m["symbol"]] = max(last.get(m["symbol"], 0), m["sequence_number"])
    return last


def test_a_consumer_killed_and_restarted_under_its_name_leaves_two_reports_that_lose_nothing(
    redis_server: services.Redis, tmp_path: Path
) -> None:
    r = redis.Redis(port=redis_server.port)
    stream = f"rep-{uuid.uuid4().hex[:6]}"
    expected = sent(tmp_path, f"redis://127.0.0.1:{redis_server.port}/0?stream={stream}", "--seed", "3",
                    "--count", "60000", "--rate", "60000")  # fmt: skip
    where = ["--redis", f"redis://127.0.0.1:{redis_server.port}/0", "--stream", stream, "--group", "g"]
    common = [*where, "--consumer", "c", "--report", "broker", "--commit-every", "0.2", "--batch", "50"]
    doomed = start(*common)
    deadline = time.monotonic() + 30
    while not (got := read_redis(r, stream, "g")) or got[0]["processed"] < 5000:
        assert time.monotonic() < deadline, "no report reached Redis"
        time.sleep(0.02)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    acked = r.xinfo_groups(stream)[0]["entries-read"] - r.xinfo_groups(stream)[0]["pending"]
    [before] = read_redis(r, stream, "g")
    assert before["processed"] >= acked  # what was acknowledged was in a report first
    again = start(*common, "--idle-exit", "2", "--block-ms", "200")  # the pod restarted in place
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    reports = read_redis(r, stream, "g")
    assert len(reports) == 2  # beside its predecessor's, not over it
    assert r.hlen(reports_key(stream, "g")) == 2
    assert 0 < r.ttl(reports_key(stream, "g")) <= 86_400
    assert json.loads(out)["processed"] in {rep["processed"] for rep in reports}  # the last commit
    result = check(reports, expected)
    assert result["lost"] == 0
    assert r.xinfo_groups(stream)[0]["pending"] == 0
    r.close()


def test_a_kafka_consumer_commits_its_report_to_the_reports_topic(
    kafka_server: services.Kafka, tmp_path: Path
) -> None:
    topic = f"rep-{uuid.uuid4().hex[:6]}"
    expected = sent(tmp_path, f"kafka://{kafka_server.bootstrap}?topic={topic}&partitions=2", "--seed", "4",
                    "--count", "20000", "--rate", "40000")  # fmt: skip
    sinks.create_topic(kafka_server.bootstrap, reports_topic(topic), 1)
    p = start("--kafka", kafka_server.bootstrap, "--topic", topic, "--group", "g", "--consumer", "k",
              "--report", "broker", "--idle-exit", "3", "--block-ms", "200")  # fmt: skip
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    [report] = read_kafka(kafka_server.bootstrap, topic)
    assert report["consumer"] == "k"
    assert report["processed"] == json.loads(out)["processed"] == 20_000
    assert check([report], expected)["lost"] == 0


def test_no_reports_topic_reads_as_no_reports(kafka_server: services.Kafka) -> None:
    assert read_kafka(kafka_server.bootstrap, f"none-{uuid.uuid4().hex[:6]}") == []
