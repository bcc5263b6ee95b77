"""Benchmark: the operator before and after the kind-neutral restructuring, alternating.

The commit before the restructuring (BENCH_OLD_COMMIT, default cbe43d2) is checked out
into a temporary folder with `git worktree`, and its operator runs with this venv's
Python and dependencies. Old and new operators then take turns on one test cluster,
for ROUNDS rounds (env BENCH_ROUNDS, default 3), each round in fresh namespaces and
in alternating order, so both see the same machine:

- step-transition latency: PIPELINES chains of STEPS container steps at once; a
  transition is the time from one watcher seeing a Job succeed to it seeing the next
  Job appear (as bench_step_latency measures it);
- operator CPU per step: user+system seconds of the operator process (from /proc)
  over the run, divided by the steps it ran.

Prints both per round, each round's new/old ratio and the median ratio; writes
benchmarks/results/restructure.json. Target (issue "One operator, five kinds"):
p50 latency and CPU per step each within 10% of the old commit's (ratio <= 1.10).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from lightkube import Client, codecs
from rich.console import Console
from rich.table import Table

from benchmarks.harness import REPO, JobClock, cluster, namespace, operator
from dataworks.kube import clients
from dataworks.kube.resources import Pipeline
from tests.cluster import podspecs

OLD = os.environ.get("BENCH_OLD_COMMIT", "cbe43d2")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PIPELINES, STEPS = 10, 21  # 200 transitions per run, as bench_step_latency
DURATION = "200ms"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def chains(c: Client, ns: str) -> list[tuple[str, str]]:
    pairs = []
    for p in range(PIPELINES):
        steps: list[dict[str, Any]] = []
        for i in range(STEPS):
            s: dict[str, Any] = {
                "name": f"s{i:02d}",
                "type": "container",
                "image": "busybox",
                "command": ["true"],
                "annotations": {podspecs.FATE + "duration": DURATION},
            }
            if i:
                s["dependsOn"] = [f"s{i - 1:02d}"]
                pairs.append((f"chain{p}-s{i - 1:02d}", f"chain{p}-s{i:02d}"))
            steps.append(s)
        obj = {"apiVersion": "dataworks.io/v1", "kind": "Pipeline", "metadata": {"name": f"chain{p}"}}
        c.create(codecs.from_dict({**obj, "spec": {"steps": steps}}), namespace=ns)
    assert Pipeline is not None  # imported so that codecs knows the kind
    return pairs


def run(
    kubeconfig: str, c: Client, workdir: Path, name: str, *, source: Path | None, round_: int
) -> dict[str, Any]:
    ns = namespace(c, f"restructure-{name}-{round_}")
    with JobClock(kubeconfig, ns) as clock, operator(kubeconfig, workdir, None, source=source) as proc:
        before = cpu_seconds(proc.pid)  # after kopf's start-up (the harness waits 3 s)
        pairs = chains(c, ns)
        last = [f"chain{p}-s{STEPS - 1:02d}" for p in range(PIPELINES)]
        deadline = time.monotonic() + 600
        while not all(n in clock.done for n in last) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1.0)  # the last status writes and Events
        cpu = cpu_seconds(proc.pid) - before
    lat = [clock.added[d] - clock.done[u] for u, d in pairs if u in clock.done and d in clock.added]
    return {
        "transitions": len(lat),
        "p50_ms": pct(lat, 0.5) * 1e3,
        "p99_ms": pct(lat, 0.99) * 1e3,
        "cpu_ms_per_step": cpu / (PIPELINES * STEPS) * 1e3,
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        old = Path(d) / "old"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old), OLD], check=True)
        try:
            rows: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
            with cluster() as (kubeconfig, workdir), clients.sync_client(kubeconfig) as c:
                for r in range(ROUNDS):
                    order = ("old", "new") if r % 2 == 0 else ("new", "old")
                    for name in order:
                        source = old / "src" if name == "old" else None
                        rows[name].append(run(kubeconfig, c, workdir, name, source=source, round_=r))
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)], check=False)
    lat_ratios = [n["p50_ms"] / o["p50_ms"] for o, n in zip(rows["old"], rows["new"], strict=True)]
    cpu_ratios = [
        n["cpu_ms_per_step"] / o["cpu_ms_per_step"] for o, n in zip(rows["old"], rows["new"], strict=True)
    ]
    table = Table(
        title=f"old ({OLD}) vs new operator, {PIPELINES} chains x {STEPS - 1} transitions, {ROUNDS} rounds"
    )
    for col in ("round", "operator", "transitions", "p50 ms", "p99 ms", "CPU ms/step"):
        table.add_column(col, justify="right")
    for r in range(ROUNDS):
        for name in ("old", "new"):
            x = rows[name][r]
            table.add_row(
                str(r),
                name,
                str(x["transitions"]),
                f"{x['p50_ms']:.1f}",
                f"{x['p99_ms']:.1f}",
                f"{x['cpu_ms_per_step']:.1f}",
            )
    Console().print(table)
    lat, cpu = statistics.median(lat_ratios), statistics.median(cpu_ratios)
    Console().print(
        "new / old, per round: p50 latency "
        + ", ".join(f"{x:.2f}x" for x in lat_ratios)
        + f" (median {lat:.2f}x); CPU per step "
        + ", ".join(f"{x:.2f}x" for x in cpu_ratios)
        + f" (median {cpu:.2f}x)  (target: each <= 1.10x)"
    )
    result = {
        "old_commit": OLD,
        "rounds": rows,
        "latency_ratios": lat_ratios,
        "cpu_ratios": cpu_ratios,
        "median_latency_ratio": lat,
        "median_cpu_ratio": cpu,
        "pipelines": PIPELINES,
        "steps": STEPS,
    }
    (REPO / "benchmarks" / "results" / "restructure.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
