"""Benchmark: step-transition latency of the operator against this cluster's floor.

One watcher observes every Job event in a namespace. A transition's latency is
the time from the watcher seeing the upstream Job succeed to it seeing the
downstream Job appear; object timestamps (1 s resolution) are not used.

- operator: PIPELINES chain pipelines of STEPS container steps run at once.
- baseline: the same chains driven by a minimal watcher that creates the next
  Job as soon as it sees the previous one succeed (the floor of this cluster).

The two alternate for ROUNDS rounds (env BENCH_ROUNDS, default 3) on one
cluster, each round in fresh namespaces, so that both see the same machine.
Prints p50/p95/p99 of each driver over all rounds, each round's ratio of
medians, and the median of those ratios; writes
benchmarks/results/step_latency.json.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time

from lightkube import Client, codecs
from lightkube.models.batch_v1 import JobSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from rich.console import Console
from rich.table import Table

from benchmarks.harness import REPO, JobClock, cluster, namespace, operator, succeeded
from dataworks.kube import clients
from dataworks.kube.resources import Pipeline
from tests.cluster import podspecs

PIPELINES, STEPS = 10, 21  # 10 x 20 = 200 transitions
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
DURATION = "200ms"


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def transitions(clock: JobClock, pairs: list[tuple[str, str]]) -> list[float]:
    return [
        clock.added[down] - clock.done[up] for up, down in pairs if up in clock.done and down in clock.added
    ]


def run_operator(kubeconfig: str, c: Client, workdir, round_: int) -> list[float]:  # type: ignore[no-untyped-def]
    ns = namespace(c, f"latency-operator-{round_}")
    pairs = []
    with JobClock(kubeconfig, ns) as clock, operator(kubeconfig, workdir):
        for p in range(PIPELINES):
            steps = []
            for i in range(STEPS):
                s = {
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
            obj = {
                "apiVersion": "dataworks.io/v1",
                "kind": "Pipeline",
                "metadata": {"name": f"chain{p}"},
                "spec": {"steps": steps},
            }
            c.create(codecs.from_dict(obj), namespace=ns)  # a Pipeline (see the import)
            assert Pipeline is not None
        last = [f"chain{p}-s{STEPS - 1:02d}" for p in range(PIPELINES)]
        deadline = time.monotonic() + 600
        while not all(n in clock.done for n in last) and time.monotonic() < deadline:
            time.sleep(0.5)
    return transitions(clock, pairs)


def run_baseline(kubeconfig: str, c: Client, round_: int) -> list[float]:
    ns = namespace(c, f"latency-baseline-{round_}")
    pairs = [
        (f"chain{p}-s{i - 1:02d}", f"chain{p}-s{i:02d}") for p in range(PIPELINES) for i in range(1, STEPS)
    ]
    nxt = dict(pairs)

    def job(name: str) -> Job:
        return Job(
            metadata=ObjectMeta(name=name),
            spec=JobSpec(backoffLimit=0, template=podspecs.template({"duration": DURATION})),
        )

    stop = threading.Event()

    def driver() -> None:  # the minimal controller: next Job on success
        with clients.sync_client(kubeconfig) as dc:
            created: set[str] = set()
            while not stop.is_set():
                try:
                    for _, j in dc.watch(Job, namespace=ns, server_timeout=30):
                        n = nxt.get(j.metadata.name)
                        if n and n not in created and succeeded(j):
                            created.add(n)
                            dc.create(job(n), namespace=ns)
                        if stop.is_set():
                            return
                except Exception:
                    time.sleep(0.05)

    with JobClock(kubeconfig, ns) as clock:
        t = threading.Thread(target=driver, daemon=True)
        t.start()
        time.sleep(0.5)
        for p in range(PIPELINES):
            c.create(job(f"chain{p}-s00"), namespace=ns)
        last = [f"chain{p}-s{STEPS - 1:02d}" for p in range(PIPELINES)]
        deadline = time.monotonic() + 600
        while not all(n in clock.done for n in last) and time.monotonic() < deadline:
            time.sleep(0.5)
        stop.set()
    return transitions(clock, pairs)


def summary(xs: list[float]) -> dict[str, float]:
    return {
        "n": len(xs),
        "p50_ms": pct(xs, 0.5) * 1e3,
        "p95_ms": pct(xs, 0.95) * 1e3,
        "p99_ms": pct(xs, 0.99) * 1e3,
        "mean_ms": statistics.fmean(xs) * 1e3,
    }


def main() -> None:
    runs: dict[str, list[list[float]]] = {"baseline": [], "operator": []}
    with cluster() as (kubeconfig, workdir), clients.sync_client(kubeconfig) as c:
        for r in range(ROUNDS):  # alternate which goes first, so neither always meets a warmer cluster
            order = ("baseline", "operator") if r % 2 == 0 else ("operator", "baseline")
            for name in order:
                if name == "baseline":
                    runs[name].append(run_baseline(kubeconfig, c, r))
                else:
                    runs[name].append(run_operator(kubeconfig, c, workdir, r))
    rows = {name: summary([x for xs in rounds for x in xs]) for name, rounds in runs.items()}
    ratios = [pct(o, 0.5) / pct(b, 0.5) for b, o in zip(runs["baseline"], runs["operator"], strict=True)]
    ratio = statistics.median(ratios)
    table = Table(
        title=f"step-transition latency ({PIPELINES} chains x {STEPS - 1} at once, {ROUNDS} rounds)"
    )
    for col in ("driver", "n", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(col, justify="right")
    for name, r in rows.items():
        table.add_row(name, str(r["n"]), f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}", f"{r['p99_ms']:.1f}")
    Console().print(table)
    Console().print(
        "operator / baseline p50, per round: "
        + ", ".join(f"{x:.2f}x" for x in ratios)
        + f"; median {ratio:.2f}x  (targets: p50 <= 100 ms, p99 <= 1000 ms, ratio <= 2)"
    )
    out = REPO / "benchmarks" / "results" / "step_latency.json"
    result = {
        **rows,
        "round_ratios": ratios,
        "median_ratio": ratio,
        "rounds": ROUNDS,
        "pipelines": PIPELINES,
        "steps": STEPS,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
