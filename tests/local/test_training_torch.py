"""Real PyTorch under a local TrainingJob: two torchrun agents train the example over gloo, one
rank is killed mid-run, the gang restarts and resumes from the last checkpoint, and the final
loss equals an uninterrupted run's, bit for bit. The torch wheel is a test-tier dependency only."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dataworks import training

torch = pytest.importorskip("torch")  # in the test extra; CI fails a skipped test

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "training" / "train.py"
CTL = str(Path(sys.executable).parent / "dataworks")
EPOCHS = 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server with a SQLite store (the test extra's `mlflow`)."""
    d = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    cmd = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{d / 'mlflow.db'}",
        "--default-artifact-root",
        str(d / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    log = (d / "server.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"mlflow server did not start:\n{(d / 'server.log').read_text()[-3000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def manifest(name: str, tracking: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "dataworks.io/v1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": "tanh-mlp",
            "dataset": "synthetic",
            "numWorkers": 2,
            "gpusPerWorker": 0,
            "backoffLimit": 2,
            "networking": {"backend": "gloo", "masterPort": free_port()},
            "command": [sys.executable, "-m", "torch.distributed.run", str(SCRIPT)],
            # About a second an epoch here: time to kill rank 1 with epochs still to run.
            "hyperparameters": {"epochs": EPOCHS, "batches": 400},
        },
    }
    if tracking:
        obj["spec"]["tracking"] = {"mlflow": {"trackingUri": tracking, "experiment": "tests"}}
    return obj


def start(tmp_path: Path, obj: dict[str, Any]) -> subprocess.Popen[str]:
    path = tmp_path / f"{obj['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(obj))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [
            CTL,
            "run",
            "--local",
            str(path),
            "--workdir",
            str(tmp_path / "wd"),
            "--name",
            obj["metadata"]["name"],
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return out


def rank_log(tmp_path: Path, name: str, attempt: int, index: int) -> Path:
    return (
        tmp_path
        / "wd"
        / "runs"
        / name
        / "logs"
        / f"{name}-a{attempt}"
        / f"attempt-{attempt}"
        / f"worker-{index}.log"
    )


def final_loss(text: str) -> str:
    found = re.search(r"final loss (\S+)", text)
    assert found is not None, text[-2000:]
    return found.group(1)


def training_process(run: str, rank: int, attempt: int) -> int | None:
    """The pid of the training process (torchrun's child) of one rank of one attempt."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = dict(
                kv.split("=", 1)
                for kv in (entry / "environ").read_bytes().decode(errors="replace").split("\0")
                if "=" in kv
            )
        except OSError:
            continue
        if (
            env.get("RANK") == str(rank)
            and env.get("LOCAL_RANK") == "0"
            and env.get("DATAWORKS_ATTEMPT") == str(attempt)
            and run in env.get("DATAWORKS_CHECKPOINT_DIR", "")
        ):
            return int(entry.name)
    return None


def test_a_killed_rank_restarts_the_gang_which_resumes_to_the_same_loss(
    tmp_path: Path, mlflow_server: str
) -> None:
    clean = finish(start(tmp_path, manifest("clean")))
    assert "Succeeded" in clean
    expected = final_loss(rank_log(tmp_path, "clean", 1, 0).read_text())

    proc = start(tmp_path, manifest("killed", tracking=mlflow_server))
    log0 = rank_log(tmp_path, "killed", 1, 0)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # rank 0 has reported epoch 3 of 6
        reported = [
            training.parse_progress(line) for line in (log0.read_text() if log0.exists() else "").splitlines()
        ]
        if any(r is not None and r["epoch"] >= 3 for r in reported):
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"rank 0 never reached epoch 3:\n{log0.read_text() if log0.exists() else '(no log)'}")
    pid = training_process("killed", rank=1, attempt=1)
    assert pid is not None, "rank 1's training process not found"
    os.kill(pid, signal.SIGKILL)
    out = finish(proc)

    status = json.loads((tmp_path / "wd" / "runs" / "killed" / "status.json").read_text())
    assert status["state"] == "Succeeded", out
    assert status["attempt"] == 2
    (restart,) = status["restarts"]
    assert restart["worker"] == 1, restart
    second = rank_log(tmp_path, "killed", 2, 0).read_text()
    resumed = re.search(r"attempt 2 starts at epoch (\d+)", second)
    assert resumed is not None, second
    assert 3 <= int(resumed.group(1)) < EPOCHS  # from attempt 1's last checkpoint, with epochs left
    assert final_loss(second) == expected  # bit for bit: repr of the same float

    # Tracked: one MLflow run for both attempts, each epoch's loss logged exactly once.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("tests")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["epochs"] == str(EPOCHS)
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
    assert sorted(steps) == list(range(1, EPOCHS + 1)), steps
    assert run.data.tags["dataworks.checkpoint"].endswith("ckpt-000005-000000000")
    last = [training.parse_progress(line) for line in second.splitlines()]
    reported = [r for r in last if r is not None and "mlflow" in r]
    assert reported[-1]["mlflow"]["runId"] == run.info.run_id
    # The local run read rank 0's log as the operator does: progress and the run are in its status.
    assert status["tracking"]["mlflowRunId"] == run.info.run_id
    assert status["currentEpoch"] >= 1
    assert status["totalEpochs"] == EPOCHS


SAVER = """
import sys, torch
from dataworks import training
directory, handled = sys.argv[1], sys.argv[2] == "handled"
small = {"w": torch.ones(10)}
training.save(directory, 1, 0, lambda f: torch.save(small, f))
if handled:  # the example's way: on SIGTERM, save the state in memory, then exit 143
    training.on_sigterm(lambda: training.save(directory, 1, 5, lambda f: torch.save(small, f)))
big = {"w": torch.randn(150_000_000)}  # 600 MB: its save takes a while
print("saving", flush=True)
training.save(directory, 2, 0, lambda f: torch.save(big, f))
print("saved", flush=True)
"""


@pytest.mark.parametrize(("handled", "epoch", "step"), [(False, 1, 0), (True, 1, 5)])
def test_a_sigterm_in_the_middle_of_a_torch_save_leaves_a_valid_checkpoint(
    tmp_path: Path, handled: bool, epoch: int, step: int
) -> None:
    # Without a handler the process dies mid-write: the previous checkpoint is the latest valid
    # one. With the helper's handler, the handler's own save lands and the interrupted one never
    # counts. Either way torch loads what `latest` returns.
    d = tmp_path / "ckpt"
    proc = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(d), "handled" if handled else "plain"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "saving"
    deadline = time.monotonic() + 30
    while not list((d / "ckpt-000002-000000000").glob(".payload.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.01)  # the big payload is being written
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=60)[0]
    assert "saved" not in out, "the save finished before the signal: make the payload bigger"
    assert proc.returncode == (143 if handled else -signal.SIGTERM), out
    found = training.latest(d)
    assert found is not None
    assert (found.epoch, found.step) == (epoch, step)
    state = torch.load(found.path / "payload", weights_only=True)
    assert torch.equal(state["w"], torch.ones(10))
    assert not list(d.glob("ckpt-000002-*/manifest*"))  # the interrupted save never became valid


def test_a_resumed_tracker_continues_the_run_and_logs_each_epoch_once(
    mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Attempt 1 logs epochs 1-3 and dies; attempt 2 resumed from the checkpoint of epoch 2 trains
    # epochs 3-5 again: the run is the same one, and epoch 3 is not logged twice.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("DATAWORKS_MLFLOW_EXPERIMENT", "resume")
    monkeypatch.setenv("DATAWORKS_RUN_KEY", "uid-1234")
    first = training.Tracker.start(0, params={"epochs": 5})
    for epoch in (1, 2, 3):
        first.log_epoch(epoch, loss=1.0 / epoch)
    second = training.Tracker.start(0, params={"epochs": 5})
    assert second.run_id == first.run_id
    for epoch in (3, 4, 5):
        second.log_epoch(epoch, loss=1.0 / epoch)
    second.finish()
    assert training.Tracker.start(1).enabled is False  # other ranks never talk to MLflow
    from mlflow.tracking import MlflowClient

    history = MlflowClient(tracking_uri=mlflow_server).get_metric_history(first.run_id, "loss")
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5]
