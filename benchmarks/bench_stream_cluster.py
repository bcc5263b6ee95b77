"""Benchmark: a shipped stream scenario on the test cluster against the same scenario here
(issue 16).

Each round runs `benchmarks/scenarios/stress-10x-autoscaled.yaml` twice on one redis-server:
with `dataworks bench stream --cluster` (the StreamingJob created in a fresh namespace of the
test cluster, its consumer pods run for real by the cluster's exec runtime, scaled by the
operator), and without it (the same controller in the local runtime, its consumers processes
of this machine). The two differ only in where the consumers run and how the benchmark reaches
them. Medians of ROUNDS rounds (env BENCH_ROUNDS, default 3) of throughput, end-to-end latency,
the most consumers, loss and duplicates, and the cluster's figures as a ratio of the local
run's of the same round. Writes benchmarks/results/stream_cluster.json; each run's own result
and HTML report go under benchmarks/results/stream-cluster/.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.bench_streamingjob import exec_consumers
from benchmarks.harness import REPO, cluster, drop_namespace, namespace, operator
from dataworks.kube import clients
from tests.local import services

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SCENARIO = REPO / "benchmarks" / "scenarios" / "stress-10x-autoscaled.yaml"
OUT = REPO / "benchmarks" / "results"
CLI = [sys.executable, "-m", "dataworks.cli.main"]


def run(where: str, i: int, url: str, env: dict[str, str], ns: str | None) -> dict[str, Any]:
    dest = OUT / "stream-cluster" / f"{where}-{i}.json"
    dest.parent.mkdir(exist_ok=True)
    page = Path(tempfile.gettempdir()) / f"stream-cluster-{where}-{i}.html"  # kept out of the repository
    cmd = [*CLI, "bench", "stream", str(SCENARIO), "--redis", url, "--json", str(dest), "--html", str(page)]
    if ns is not None:
        cmd += ["--cluster", "-n", ns]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{where} round {i} failed:\n{done.stdout}\n{done.stderr}")
    result = json.loads(dest.read_text())
    s, samples = result["summary"], result["samples"]
    return {
        "throughput": s["throughput"],
        "p50_ms": s["latencyMs"]["p50"],
        "p99_ms": s["latencyMs"]["p99"],
        "p999_ms": s["latencyMs"]["p999"],
        "produced": s["producedMessages"],
        "lost": s["lost"],
        "duplicated": s["duplicated"],
        "most_consumers": max(x["consumers"] for x in samples),
        "most_desired": max(x.get("desiredReplicas") or 0 for x in samples),
        "wall_seconds": s["wallSeconds"],
    }


def main() -> None:
    rounds: list[dict[str, Any]] = []
    with (
        cluster() as (kubeconfig, workdir),
        services.redis(workdir) as server,
        clients.sync_client(kubeconfig) as c,
        operator(kubeconfig, workdir),
    ):
        exec_consumers(c)
        env = {**os.environ, "KUBECONFIG": kubeconfig}
        for i in range(ROUNDS):
            url = f"redis://127.0.0.1:{server.port}/0"
            ns = namespace(c, f"bench-stream-{i}")
            try:
                on_cluster = run("cluster", i, url, env, ns)
            finally:
                drop_namespace(c, ns)
            here = run("local", i, url, env, None)
            rounds.append({"cluster": on_cluster, "local": here})
            print(rounds[-1])

    def med(where: str, key: str) -> float:
        return float(statistics.median(r[where][key] for r in rounds))

    def ratio(key: str) -> float:
        return round(statistics.median(r["cluster"][key] / r["local"][key] for r in rounds), 2)

    keys = ("throughput", "p50_ms", "p99_ms", "p999_ms", "most_consumers", "most_desired", "duplicated")
    result = {
        "scenario": SCENARIO.name,
        "rounds": rounds,
        "median": {where: {k: med(where, k) for k in keys} for where in ("cluster", "local")},
        "cluster_over_local": {k: ratio(k) for k in ("throughput", "p50_ms", "p99_ms")},
        "lost_total": sum(r[w]["lost"] for r in rounds for w in ("cluster", "local")),
    }
    (OUT / "stream_cluster.json").write_text(json.dumps(result, indent=1) + "\n")
    table = Table(title=f"{SCENARIO.stem}: on the test cluster and here, median of {ROUNDS} rounds")
    for col in ("measure", "cluster", "here", "cluster / here"):
        table.add_column(col)
    for key, label in (
        ("throughput", "messages/s over the run"),
        ("p50_ms", "end-to-end p50, ms"),
        ("p99_ms", "end-to-end p99, ms"),
        ("p999_ms", "end-to-end p99.9, ms"),
        ("most_consumers", "most consumers running"),
        ("most_desired", "most consumers asked"),
        ("duplicated", "duplicates"),
    ):
        cl, lo = result["median"]["cluster"][key], result["median"]["local"][key]
        table.add_row(label, f"{cl:,.1f}", f"{lo:,.1f}", f"{cl / lo:.2f}" if lo else "")
    table.add_row("lost, all rounds", str(result["lost_total"]), "", "target 0")
    Console().print(table)


if __name__ == "__main__":
    main()
