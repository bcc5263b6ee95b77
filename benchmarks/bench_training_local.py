"""Benchmark: a TrainingJob under `dataworks run --local` against the same script under plain
torchrun (issue 14: target <= 1.1x wall time).

Both run examples/training/train.py as two ranks over gloo on this machine, with the same
hyperparameters (HYPERPARAM_EPOCHS, HYPERPARAM_BATCHES), a checkpoint every epoch into a fresh
directory, and OMP_NUM_THREADS=1. "plain" is what a user types by hand: two
`python -m torch.distributed.run` agents configured by PET_* variables, as the TrainingJob's
workers are. After one untimed run that brings torch into the page cache, the two take turns
for ROUNDS rounds (env BENCH_ROUNDS, default 3; each goes first in turn). The table gives
medians and the median of the rounds' ratios; benchmarks/results/training_local.json is
written. Needs the test extra's torch.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "training" / "train.py"
CTL = str(Path(sys.executable).parent / "dataworks")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
EPOCHS, BATCHES = 4, 400
TARGET = 1.1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env() -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HYPERPARAM_EPOCHS": str(EPOCHS),
        "HYPERPARAM_BATCHES": str(BATCHES),
    }


def run_local(tmp: Path, round_: int) -> float:
    name = f"bench-{round_}"
    obj = {
        "apiVersion": "dataworks.io/v1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": "tanh-mlp",
            "dataset": "synthetic",
            "numWorkers": 2,
            "gpusPerWorker": 0,
            "networking": {"backend": "gloo", "masterPort": free_port()},
            "command": [sys.executable, "-m", "torch.distributed.run", str(SCRIPT)],
            "hyperparameters": {"epochs": EPOCHS, "batches": BATCHES},
        },
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(obj))
    cmd = [CTL, "run", "--local", str(path), "--workdir", str(tmp / f"wd-{round_}"), "--name", name]
    t0 = time.monotonic()
    done = subprocess.run(
        cmd, check=False, cwd=tmp, env=base_env(), capture_output=True, text=True, timeout=600
    )
    took = time.monotonic() - t0
    if done.returncode != 0 or "Succeeded" not in done.stdout + done.stderr:
        raise RuntimeError(f"the local TrainingJob failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return took


def run_plain(tmp: Path, round_: int) -> float:
    port, ckpt = free_port(), tmp / f"plain-{round_}"
    common = {
        **base_env(),
        "PET_NNODES": "2",
        "PET_NPROC_PER_NODE": "1",
        "PET_MASTER_ADDR": "127.0.0.1",
        "PET_MASTER_PORT": str(port),
        "DATAWORKS_BACKEND": "gloo",
        "DATAWORKS_CHECKPOINT_DIR": str(ckpt),
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", str(SCRIPT)]
    t0 = time.monotonic()
    procs = [
        subprocess.Popen(
            cmd,
            cwd=tmp,
            env={**common, "PET_NODE_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    took = time.monotonic() - t0
    if any(p.returncode != 0 for p in procs):
        raise RuntimeError("plain torchrun failed:\n" + "\n".join(o[-3000:] for o in outs))
    return took


def main() -> None:
    runs: dict[str, list[float]] = {"local": [], "plain": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        run_plain(tmp, -1)  # untimed: torch's files into the page cache, so neither pays it
        for r in range(ROUNDS):
            order = ["local", "plain"] if r % 2 == 0 else ["plain", "local"]
            for who in order:
                runs[who].append(run_local(tmp, r) if who == "local" else run_plain(tmp, r))
    ratios = [loc / plain for loc, plain in zip(runs["local"], runs["plain"], strict=True)]
    result = {
        "rounds": ROUNDS,
        "epochs": EPOCHS,
        "batches": BATCHES,
        "local_s": runs["local"],
        "plain_s": runs["plain"],
        "local_median_s": statistics.median(runs["local"]),
        "plain_median_s": statistics.median(runs["plain"]),
        "round_ratios": ratios,
        "median_ratio": statistics.median(ratios),
        "target_ratio": TARGET,
    }
    table = Table(title=f"2-rank training, {EPOCHS} epochs x {BATCHES} batches, {ROUNDS} rounds")
    for col in ("run", "median wall time", "rounds"):
        table.add_column(col)
    table.add_row(
        "dataworks run --local",
        f"{result['local_median_s']:.2f} s",
        ", ".join(f"{x:.2f}" for x in runs["local"]),
    )
    table.add_row(
        "plain torchrun", f"{result['plain_median_s']:.2f} s", ", ".join(f"{x:.2f}" for x in runs["plain"])
    )
    table.add_row("ratio (median of rounds)", f"{result['median_ratio']:.3f}x", f"target <= {TARGET}x")
    Console().print(table)
    out = REPO / "benchmarks" / "results" / "training_local.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
