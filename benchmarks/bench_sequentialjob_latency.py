"""Benchmark: SequentialJob step-transition latency against this cluster's floor (issue 13).

Measured as benchmarks/bench_step_latency.py measures pipelines: one watcher
sees every Job event of a namespace, and a transition's latency is the time
from it seeing a step's Job succeed to it seeing the next step's Job appear.

- operator: SEQUENCES SequentialJobs of STEPS containers, run at once; each
  transition includes the pod read the controller makes for the step's output.
- baseline: the same chains driven by a minimal watcher that creates the next
  Job as soon as it sees the previous one succeed (bench_step_latency's).
- pipeline: the same chains as Pipelines (bench_step_latency's operator run), for
  reference: what the other kind of the same operator does on the same machine.

The three take turns for ROUNDS rounds (env BENCH_ROUNDS, default 3) on one
cluster, each round in fresh namespaces. Prints p50/p95/p99 of each and the
median of the per-round ratios of medians to the baseline (target for the
SequentialJob: <= 2); writes benchmarks/results/sequentialjob_latency.json.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

from lightkube import Client, codecs
from rich.console import Console
from rich.table import Table

from benchmarks import bench_step_latency as pipelines
from benchmarks.bench_step_latency import DURATION, PIPELINES, STEPS, pct, run_baseline, summary, transitions
from benchmarks.harness import REPO, JobClock, cluster, namespace, operator
from dataworks.api import sequentialjob as api
from dataworks.kube import clients, resources
from tests.cluster import podspecs

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def run_operator(kubeconfig: str, c: Client, workdir: Path, round_: int) -> list[float]:
    ns = namespace(c, f"sequence-operator-{round_}")
    resources.of(api.INFO)  # registers the kind with codecs.from_dict
    pairs = [
        (f"chain{p}-s{i - 1:02d}", f"chain{p}-s{i:02d}") for p in range(PIPELINES) for i in range(1, STEPS)
    ]
    with JobClock(kubeconfig, ns) as clock, operator(kubeconfig, workdir):
        for p in range(PIPELINES):
            obj = {
                "apiVersion": "dataworks.io/v1",
                "kind": "SequentialJob",
                "metadata": {"name": f"chain{p}"},
                "spec": {
                    "containers": [
                        {"name": f"s{i:02d}", "image": "busybox", "command": ["true"]} for i in range(STEPS)
                    ],
                    "template": {"metadata": {"annotations": {podspecs.FATE + "duration": DURATION}}},
                },
            }
            c.create(codecs.from_dict(obj), namespace=ns)
        last = [f"chain{p}-s{STEPS - 1:02d}" for p in range(PIPELINES)]
        deadline = time.monotonic() + 600
        while not all(n in clock.done for n in last) and time.monotonic() < deadline:
            time.sleep(0.5)
    return transitions(clock, pairs)


def main() -> None:
    runs: dict[str, list[list[float]]] = {"baseline": [], "operator": [], "pipeline": []}
    order = list(runs)
    with cluster() as (kubeconfig, workdir), clients.sync_client(kubeconfig) as c:
        for r in range(ROUNDS):  # rotate who goes first, so none always meets a warmer cluster
            for name in order[r % 3 :] + order[: r % 3]:
                if name == "baseline":
                    runs[name].append(run_baseline(kubeconfig, c, r))
                elif name == "operator":
                    runs[name].append(run_operator(kubeconfig, c, workdir, r))
                else:
                    runs[name].append(pipelines.run_operator(kubeconfig, c, workdir, r))
    rows = {name: summary([x for xs in rounds for x in xs]) for name, rounds in runs.items()}
    ratios = [pct(o, 0.5) / pct(b, 0.5) for b, o in zip(runs["baseline"], runs["operator"], strict=True)]
    ratio = statistics.median(ratios)
    reference = statistics.median(
        pct(o, 0.5) / pct(b, 0.5) for b, o in zip(runs["baseline"], runs["pipeline"], strict=True)
    )
    table = Table(
        title=f"SequentialJob step transitions ({PIPELINES} x {STEPS - 1} at once, {ROUNDS} rounds)"
    )
    for col in ("driver", "n", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(col, justify="right")
    for name, r in rows.items():
        table.add_row(name, str(r["n"]), f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}", f"{r['p99_ms']:.1f}")
    Console().print(table)
    Console().print(
        "operator / baseline p50, per round: "
        + ", ".join(f"{x:.2f}x" for x in ratios)
        + f"; median {ratio:.2f}x  (target: ratio <= 2; Pipelines on the same rounds: {reference:.2f}x)"
    )
    out = REPO / "benchmarks" / "results" / "sequentialjob_latency.json"
    result = {
        **rows,
        "round_ratios": ratios,
        "median_ratio": ratio,
        "rounds": ROUNDS,
        "sequences": PIPELINES,
        "steps": STEPS,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
