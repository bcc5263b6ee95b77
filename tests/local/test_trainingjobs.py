"""A TrainingJob runs on this machine with `dataworks run --local`: its workers are processes with
torchrun's PET_* environment (worker 0's Service name is 127.0.0.1), the checkpoint claim is a
folder every attempt shares, and when a worker dies the gang restarts and resumes from the latest
checkpoint to the same result as an uninterrupted run. The script uses dataworks.training."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from dataworks.manifests import trainingjobs as manifests

CTL = str(Path(sys.executable).parent / "dataworks")
EPOCHS = 6

SCRIPT = """
import json, os, sys, time
from dataworks import training

rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
epochs = int(os.environ["HYPERPARAM_EPOCHS"])
directory, attempt = training.checkpoint_dir(), training.attempt()
ck = training.latest(directory)
state = json.loads(ck.read()) if ck else {"epoch": -1, "w": 1.0}
master = os.environ["PET_MASTER_ADDR"] + ":" + os.environ["PET_MASTER_PORT"]
epoch0 = state["epoch"]
print(f"rank {rank}/{world} attempt {attempt} master {master} resumes after epoch {epoch0}", flush=True)
for epoch in range(state["epoch"] + 1, epochs):
    state = {"epoch": epoch, "w": state["w"] * 0.5 + epoch}
    time.sleep(0.25)
    if rank == 0:
        training.save(directory, epoch, 0, json.dumps(state).encode(), metadata={"w": state["w"]})
        training.report(epoch + 1, epochs, loss=state["w"])
    if rank == 1 and attempt == 1 and epoch == 2:
        print("rank 1 dies", flush=True)
        sys.exit(7)
print(f"final w {state['w']}", flush=True)
"""


def expected_w() -> float:
    w = 1.0
    for epoch in range(EPOCHS):
        w = w * 0.5 + epoch
    return w


def manifest(script: Path) -> dict[str, Any]:
    return {
        "apiVersion": "dataworks.io/v1",
        "kind": "TrainingJob",
        "metadata": {"name": "local-train"},
        "spec": {
            "model": "toy",
            "dataset": "synthetic",
            "numWorkers": 2,
            "gpusPerWorker": 0,
            "backoffLimit": 2,
            "command": [sys.executable, str(script)],
            "hyperparameters": {"epochs": EPOCHS},
        },
    }


def run(tmp_path: Path, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "tj.yaml"
    path.write_text(yaml.safe_dump(obj))
    return subprocess.run(  # noqa: PLW1510 (callers check, with the output in the message)
        [CTL, "run", "--local", str(path), "--workdir", str(tmp_path / "wd")],
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_dead_worker_restarts_the_gang_which_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = run(tmp_path, manifest(script))
    assert out.returncode == 0, out.stdout + out.stderr
    run_dir = next((tmp_path / "wd" / "runs").iterdir())
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "Succeeded", status
    assert status["attempt"] == 2
    (restart,) = status["restarts"]
    assert (restart["worker"], restart["exitCode"], restart["cause"]) == (1, 7, "ExitCode")
    assert "Restarting" in out.stdout
    first = (run_dir / "logs" / f"{run_dir.name}-a1" / "attempt-1" / "worker-1.log").read_text()
    assert "rank 1 dies" in first
    assert "master 127.0.0.1:29500" in first  # worker 0's Service name, on this machine
    second = (run_dir / "logs" / f"{run_dir.name}-a2" / "attempt-2" / "worker-0.log").read_text()
    resumed = re.search(r"attempt 2 master \S+ resumes after epoch (-?\d+)", second)
    assert resumed is not None, second
    assert int(resumed.group(1)) >= 0, second  # from a checkpoint attempt 1 wrote
    assert f"final w {expected_w()}" in second  # the same result as an uninterrupted run
    claims = list((run_dir / "claims").iterdir())
    assert [c.name for c in claims] == [f"{run_dir.name}-checkpoints"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"numWorkers": 40}, "spec.numWorkers", id="too-many-workers"),
        pytest.param(
            {"networking": {"rendezvousTimeoutSeconds": 5}},
            "spec.networking.rendezvousTimeoutSeconds",
            id="rendezvous-timeout-too-short",
        ),
        pytest.param(
            {"tracking": {"mlflow": {"trackingUri": "mlflow:5000"}}},
            "spec.tracking.mlflow.trackingUri",
            id="tracking-uri-not-http",
        ),
    ],
)
def test_bad_input_names_the_field_before_anything_runs(
    tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    obj = manifest(tmp_path / "none.py")
    obj["spec"].update(change)
    out = run(tmp_path, obj)
    assert out.returncode == 2
    assert field in out.stderr
    assert not (tmp_path / "wd" / "runs").exists()


def _wait(index: int, port: int, timeout: int, tmp_path: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "JOB_COMPLETION_INDEX": str(index),
        "PET_MASTER_ADDR": "127.0.0.1",
        "PET_MASTER_PORT": str(port),
        "DATAWORKS_RENDEZVOUS_TIMEOUT": str(timeout),
        "DATAWORKS_TERMINATION_LOG": str(tmp_path / "termination-log"),
    }
    cmd = [sys.executable, "-c", manifests.WAIT_FOR_WORKER_0]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)


def test_the_rendezvous_wait_passes_once_worker_0_listens_and_fails_naming_it_after_the_timeout(
    tmp_path: Path,
) -> None:
    # The init container's script, run for real: a port nobody listens on yet, then a listener.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert _wait(0, port, 10, tmp_path).wait(timeout=10) == 0  # worker 0 never waits
    waiting = _wait(1, port, 30, tmp_path)
    time.sleep(1.5)
    assert waiting.poll() is None  # still waiting: nothing accepts connections
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        assert waiting.wait(timeout=10) == 0
    late = _wait(1, port, 1, tmp_path)
    assert late.wait(timeout=15) == 1
    message = (tmp_path / "termination-log").read_text()
    assert message.startswith(f"worker 0 at 127.0.0.1:{port} did not accept a connection within 1s")
