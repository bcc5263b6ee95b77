"""`dataworks run --local` of the Kafka StreamingJob example against a real Kafka broker: the
operator's own controller reads the exact lag from the group's offsets, scales the consumer
processes up to the topic's partition count and no further (saying so in the status), drains
the topic with none lost, and stops them all on Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

from tests.local import services

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "dataworks.cli.main"]
EXAMPLE = ROOT / "examples" / "streams" / "kafka-streamingjob.yaml"


def consumers(topic: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        args = p.info["cmdline"] or []
        if "consume" in args and "--topic" in args and args[args.index("--topic") + 1] == topic:
            found.append(p)
    return found


def saved_status(workdir: Path) -> dict[str, Any]:
    found = list((workdir / "runs").glob("*/status.json"))
    return dict(json.loads(found[0].read_text())) if found else {}


def test_the_kafka_example_scales_to_the_partition_cap_and_drains_the_topic(
    tmp_path: Path, kafka_server: services.Kafka
) -> None:
    topic = yaml.safe_load(EXAMPLE.read_text())["spec"]["source"]["kafka"]["topic"]
    kafka_server.create_topic(topic, 3)
    cmd = [
        *CLI,
        "run",
        "--local",
        str(EXAMPLE),
        "--kafka",
        kafka_server.bootstrap,
        "--workdir",
        str(tmp_path),
    ]
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    counts: list[int] = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            counts.append(len(consumers(topic)))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not consumers(topic):
            time.sleep(0.1)
        assert consumers(topic), "no consumer started"
        watcher.start()
        target = f"kafka://{kafka_server.bootstrap}?topic={topic}"
        gen = subprocess.run(
            [*CLI, "generate", "-q", "--seed", "8", "--count", "200000", "-o", target],
            capture_output=True,
            text=True,
            check=False,
        )
        assert gen.returncode == 0, gen.stderr
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            st = saved_status(tmp_path)
            if st.get("lag") == 0 and st.get("arrivalRate") == 0:
                break
            time.sleep(0.3)
        st = saved_status(tmp_path)
        assert st.get("lag") == 0, st  # every offset committed, and a consumer commits only what it processed
        assert st["partitions"] == 3
        watching.set()
        watcher.join()
        assert max(counts) == 3, f"consumer counts seen: {sorted(set(counts))}"  # up to the cap, no further
        decisions = st["lastDecision"]
    finally:
        watching.set()
        run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=60)
    assert run.returncode == 130, out
    assert "ScaleUp" in out, out
    assert "capped at the topic's 3 partitions (6 asked)" in out, (out, decisions)
    time.sleep(0.5)
    assert not consumers(topic), "Ctrl-C left consumers running"
