"""Benchmark: start-up time and memory of the test control plane.

Starts bin/testcluster RUNS times and records the wall time until its "ready"
line, then, on one run, creates JOBS Jobs of PODS pods each, waits for them
all to complete, and records the process's peak resident memory (VmHWM) and
the wall time of that workload. Prints a table and writes JSON to
benchmarks/results/testcluster.json. Quote medians: these machines are shared.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from lightkube.models.batch_v1 import JobSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Namespace
from rich.console import Console
from rich.table import Table

from benchmarks.harness import start_testcluster
from dataworks.kube import clients
from tests.cluster import podspecs

REPO = Path(__file__).resolve().parents[1]

RUNS = 5
JOBS, PODS = 50, 4


def stop(proc: subprocess.Popen[str]) -> float:
    t0 = time.monotonic()
    proc.terminate()
    proc.wait(timeout=60)
    if proc.stdout:
        proc.stdout.close()
    return time.monotonic() - t0


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def workload(kubeconfig: str) -> float:
    with clients.sync_client(kubeconfig) as c:
        c.create(Namespace(metadata=ObjectMeta(name="bench")))
        t0 = time.monotonic()
        for i in range(JOBS):
            spec = JobSpec(
                completions=PODS,
                parallelism=PODS,
                completionMode="Indexed",
                template=podspecs.template({"duration": "200ms"}),
            )
            c.create(Job(metadata=ObjectMeta(name=f"j{i}"), spec=spec), namespace="bench")
        while True:
            done = sum(1 for j in c.list(Job, namespace="bench") if (j.status and j.status.succeeded) == PODS)
            if done == JOBS:
                return time.monotonic() - t0
            time.sleep(0.2)


def main() -> None:
    starts, stops = [], []
    peak, work = float("nan"), float("nan")
    for run in range(RUNS):
        with tempfile.TemporaryDirectory() as d:
            proc, ready, kubeconfig = start_testcluster(Path(d))
            starts.append(ready)
            if run == RUNS - 1:
                work = workload(kubeconfig)
                peak = peak_rss_mib(proc.pid)
            stops.append(stop(proc))
    binary = REPO / "bin" / "testcluster"
    result = {
        "runs": RUNS,
        "startup_seconds": {"median": statistics.median(starts), "min": min(starts), "max": max(starts)},
        "shutdown_seconds_median": statistics.median(stops),
        "workload": {"jobs": JOBS, "pods_per_job": PODS, "seconds": work},
        "peak_rss_mib_after_workload": peak,
        "binary_mib": binary.stat().st_size / 2**20,
    }
    table = Table(title="test control plane")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row(f"start-up to ready, median of {RUNS}", f"{result['startup_seconds']['median']:.2f} s")
    table.add_row("start-up min / max", f"{min(starts):.2f} / {max(starts):.2f} s")
    table.add_row("shutdown on SIGTERM, median", f"{result['shutdown_seconds_median']:.2f} s")
    table.add_row(f"{JOBS} Indexed Jobs x {PODS} pods to Complete", f"{work:.1f} s")
    table.add_row("peak RSS after that workload", f"{peak:.0f} MiB")
    table.add_row("binary size", f"{result['binary_mib']:.0f} MiB")
    Console().print(table)
    out = REPO / "benchmarks" / "results" / "testcluster.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
