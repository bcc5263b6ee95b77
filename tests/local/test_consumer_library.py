"""The container processing's consumer library (`dataworks.consumer`): a user's program that
calls `run(handle)`, against a real redis-server. Each batch reaches `handle` before it is
acknowledged; a `handle` that raises leaves its batch pending for the next consumer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import redis

from tests.local import services

CLI = [sys.executable, "-m", "dataworks.cli.main"]
PROGRAM = """
import sys
from dataworks.consumer import run

out = open(sys.argv[1], "a")


def handle(messages):
    if any(m["message_id"] == sys.argv[2] for m in messages):
        raise RuntimeError("cannot enrich " + sys.argv[2])
    out.writelines(m["message_id"] + "\\n" for m in messages)
    out.flush()


raise SystemExit(run(handle))
"""


def setup(server: services.Redis, tmp_path: Path, count: int) -> tuple[str, Path, list[str]]:
    stream = f"md-{uuid.uuid4().hex[:6]}"
    sent = tmp_path / "sent.jsonl"
    for target in (f"{server.url}?stream={stream}", str(sent)):
        done = subprocess.run([*CLI, "generate", "-q", "--seed", "4", "--count", str(count), "-o", target],
                              capture_output=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
    program = tmp_path / "enricher.py"
    program.write_text(PROGRAM)
    ids = [json.loads(line)["message_id"] for line in sent.read_text().splitlines()]
    return stream, program, ids


def start(program: Path, out: Path, poison: str, args: list[str] | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if args is not None:
        env["DATAWORKS_CONSUMER"] = json.dumps(args)  # as the operator sets it in the pod
    return subprocess.run([sys.executable, str(program), str(out), poison], capture_output=True, text=True,
                          env=env, timeout=120, check=False)  # fmt: skip


def consumer_args(server: services.Redis, stream: str) -> list[str]:
    return ["--redis", server.url, "--stream", stream, "--group", "g", "--consumer", "enricher-0",
            "--processing", "count", "--batch", "100", "--idle-exit", "2", "--block-ms", "200"]  # fmt: skip


def test_every_message_reaches_the_handler_once_before_it_is_acknowledged(
    redis_server: services.Redis, tmp_path: Path
) -> None:
    stream, program, ids = setup(redis_server, tmp_path, 10_000)
    out = tmp_path / "handled.txt"
    done = start(program, out, "none", consumer_args(redis_server, stream))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["processed"] == 10_000  # its report, as `dataworks consume` prints it
    assert out.read_text().splitlines() == ids  # one consumer: each once, in the stream's order
    r = redis.Redis(port=redis_server.port)
    assert r.xpending(stream, "g")["pending"] == 0
    r.close()


def test_a_handler_that_raises_stops_the_consumer_and_its_batch_stays_pending(
    redis_server: services.Redis, tmp_path: Path
) -> None:
    stream, program, ids = setup(redis_server, tmp_path, 2_000)
    out = tmp_path / "handled.txt"
    poison = ids[1_234]
    done = start(program, out, poison, consumer_args(redis_server, stream))
    assert done.returncode != 0
    assert f"RuntimeError: cannot enrich {poison}" in done.stderr
    handled = out.read_text().splitlines()
    assert poison not in handled
    assert handled == ids[: len(handled)]  # everything before the failing batch, in order
    r = redis.Redis(port=redis_server.port)
    info = r.xinfo_groups(stream)[0]
    acked = info["entries-read"] - info["pending"]
    assert acked <= len(handled)  # nothing acknowledged that the handler did not take
    assert info["pending"] > 0  # the failing batch (and the one read ahead) wait for a consumer
    r.close()
    # Restarted under the same name (the kubelet restarts the container), the batch comes again.
    again = start(program, tmp_path / "again.txt", "none", consumer_args(redis_server, stream))
    assert again.returncode == 0, again.stderr
    assert poison in (tmp_path / "again.txt").read_text().splitlines()


def test_outside_a_streamingjob_the_library_says_what_is_missing(tmp_path: Path) -> None:
    program = tmp_path / "enricher.py"
    program.write_text(PROGRAM)
    done = start(program, tmp_path / "out.txt", "none", None)
    assert done.returncode == 2
    assert "DATAWORKS_CONSUMER is not set" in done.stderr
