"""`dataworks run --local` of a StreamingJob against a real redis-server with a password: the
operator's own controller hosts the consumers as processes of this machine (the local kubelet
runs the Deployment the cluster would get), scales them by the same planner, hands a killed
consumer's entries to the others, and stops them all on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
import yaml

from tests.local import services

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "dataworks.cli.main"]
PASSWORD = "local-secret"
EXAMPLE = ROOT / "examples" / "streams" / "streamingjob.yaml"


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Redis]:
    with services.redis(tmp_path_factory.mktemp("redis"), password=PASSWORD) as server:
        yield server


def url(server: services.Redis) -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"


def consumers(stream: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        args = p.info["cmdline"] or []
        if "consume" in args and "--stream" in args and args[args.index("--stream") + 1] == stream:
            found.append(p)
    return found


def drained(r: redis.Redis, stream: str, count: int) -> bool:
    if not r.exists(stream):
        return False
    g = next((g for g in r.xinfo_groups(stream) if g["name"] == b"processors"), None)
    return g is not None and g["entries-read"] == count and g["pending"] == 0


def saved_status(workdir: Path) -> dict[str, Any]:
    found = list((workdir / "runs").glob("*/status.json"))
    return dict(json.loads(found[0].read_text())) if found else {}


def start(tmp_path: Path, manifest: Path, server: services.Redis, *extra: str) -> subprocess.Popen[str]:
    cmd = [*CLI, "run", "--local", str(manifest), "--redis", url(server), "--workdir", str(tmp_path), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(run: subprocess.Popen[str]) -> str:
    run.send_signal(signal.SIGINT)
    out, _ = run.communicate(timeout=60)
    return out


def test_the_example_runs_locally_drains_the_stream_and_stops_on_ctrl_c(
    tmp_path: Path, locked: services.Redis
) -> None:
    r = redis.Redis(port=locked.port, password=PASSWORD)
    stream = yaml.safe_load(EXAMPLE.read_text())["spec"]["source"]["redis"]["stream"]
    r.delete(stream)
    gen = subprocess.run(
        [*CLI, "generate", "-q", "--count", "30000", "-o", f"{url(locked)}?stream={stream}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert gen.returncode == 0, gen.stderr
    run = start(tmp_path, EXAMPLE, locked)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not drained(r, stream, 30_000):
            time.sleep(0.2)
        assert drained(r, stream, 30_000), r.xinfo_groups(stream) if r.exists(stream) else "no stream"
        assert consumers(stream), "no consumer process runs"
        # The status follows within its 5 s write bound.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and saved_status(tmp_path).get("lag") != 0:
            time.sleep(0.2)
        assert saved_status(tmp_path).get("lag") == 0
        # The password reached the consumers from the environment, never the saved spec.
        [saved] = list((tmp_path / "runs").glob("*/pipeline.json"))
        assert f"127.0.0.1:{locked.port}" in saved.read_text()
        assert PASSWORD not in saved.read_text()
    finally:
        out = stop(run)
    assert run.returncode == 130, out
    assert "consumers, lag 0" in out, out
    time.sleep(0.5)
    assert not consumers(stream), "Ctrl-C left consumers running"


def test_a_burst_scales_the_local_consumers_up_and_a_killed_ones_entries_are_reclaimed(
    tmp_path: Path, locked: services.Redis
) -> None:
    r = redis.Redis(port=locked.port, password=PASSWORD)
    stream = f"local-{os.getpid()}"
    spec: dict[str, Any] = {
        "source": {
            "redis": {"address": "redis://placeholder:6379/0", "stream": stream, "group": "processors"}
        },
        "strategy": {"default": "latency"},
        "batchSize": 10,  # one consumer cannot keep up with the burst alone: the autoscaler must act
        "scaling": {
            "minReplicas": 1,
            "maxReplicas": 3,
            "catchUpSeconds": 1,
            "scaleDownWindowSeconds": 5,
            "consumerRate": 5000,
        },
    }
    manifest = tmp_path / "stj.yaml"
    body = {
        "apiVersion": "dataworks.io/v1",
        "kind": "StreamingJob",
        "metadata": {"name": "burst"},
        "spec": spec,
    }
    manifest.write_text(yaml.safe_dump(body))
    run = start(tmp_path, manifest, locked)
    first: psutil.Process | None = None
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not consumers(stream):
            time.sleep(0.1)
        [first] = consumers(stream)
        # The first consumer hangs holding a batch read in its name, then dies: its entries must
        # reach the others (the local kubelet restarts it under the same name, which re-reads its
        # own pending entries too; whichever comes first, none is lost).
        counts: list[int] = []
        watching = threading.Event()

        def watch() -> None:
            while not watching.is_set():
                counts.append(len(consumers(stream)))
                time.sleep(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        first.suspend()
        gen = subprocess.run(
            [*CLI, "generate", "-q", "--count", "200000", "-o", f"{url(locked)}?stream={stream}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert gen.returncode == 0, gen.stderr
        first.kill()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not drained(r, stream, 200_000):
            time.sleep(0.1)
        watching.set()
        watcher.join()
        assert drained(r, stream, 200_000), r.xinfo_groups(stream)
        assert max(counts) > 1, "the burst never scaled the local consumers up"
    finally:
        if first is not None and first.is_running():
            first.kill()
        out = stop(run)
    assert run.returncode == 130, out
    assert "ScaleUp" in out, out


def test_a_password_secret_without_a_password_names_both_ways_to_give_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_PASSWORD"}
    done = subprocess.run(
        [*CLI, "run", "--local", str(EXAMPLE), "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert done.returncode == 2
    assert "spec.source.redis.passwordSecret names Secret redis; locally, give --redis " in done.stderr
    assert "$REDIS_PASSWORD" in done.stderr


def test_a_bad_streamingjob_is_refused_before_anything_starts(tmp_path: Path) -> None:
    body = yaml.safe_load(EXAMPLE.read_text())
    body["spec"]["scaling"] = {"minReplicas": 9, "maxReplicas": 2}
    body["spec"]["source"]["redis"]["address"] = "redis://:pw@redis:6379"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(body))
    done = subprocess.run(
        [*CLI, "run", "--local", str(bad), "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "streamingjob market-data-processor is invalid" in done.stderr
    assert "spec.source.redis.address" in done.stderr
    assert "minReplicas (9) must not exceed maxReplicas (2)" in done.stderr
    assert not (tmp_path / "runs").exists()
