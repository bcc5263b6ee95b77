"""Benchmark: time from creating a TrainingJob to all of its children existing (issue 14).

COUNT TrainingJobs (default 50, env BENCH_TRAININGJOBS) are created at once, as fast as one
client can; one observer watches the namespace's Jobs, the last child the operator creates
(after the ConfigMap, the Service and the claim). A TrainingJob's latency is the time from its
create call returning to the observer seeing its Job. Prints p50/p99 against the target
(p99 <= 1 s) and the operator's API writes per TrainingJob; writes
benchmarks/results/trainingjob_children.json.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from lightkube import codecs
from lightkube.resources.batch_v1 import Job
from rich.console import Console
from rich.table import Table

from benchmarks.harness import REPO, cluster, namespace, operator
from dataworks.api import trainingjob as api
from dataworks.kube import clients, resources

COUNT = int(os.environ.get("BENCH_TRAININGJOBS", "50"))
FATE = "fate.testcluster.dataworks.io/"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def manifest(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "dataworks.io/v1",
        "kind": "TrainingJob",
        "metadata": {"name": f"tj-{i:03d}"},
        "spec": {
            "model": "m",
            "dataset": "d",
            "numWorkers": 2,
            "gpusPerWorker": 0,
            "image": "busybox:1.36",
            "podAnnotations": {FATE + "outcome": "run"},
        },
    }


def main() -> None:
    resources.of(api.INFO)
    with cluster() as (kubeconfig, workdir), clients.sync_client(kubeconfig) as c:
        ns = namespace(c, "training-bench")
        seen: dict[str, float] = {}
        stop = threading.Event()

        def watch() -> None:
            w = clients.sync_client(kubeconfig)
            clients.prime_decoders(Job)
            while not stop.is_set():
                try:
                    for _, job in w.watch(Job, namespace=ns, server_timeout=30):
                        seen.setdefault(job.metadata.name.rsplit("-a", 1)[0], time.monotonic())
                        if stop.is_set():
                            return
                except Exception:
                    time.sleep(0.05)

        stats = workdir / "requests.json"
        with operator(kubeconfig, workdir, stats, "--controllers", "trainingjobs"):
            threading.Thread(target=watch, daemon=True).start()
            time.sleep(0.5)
            created: dict[str, float] = {}
            t0 = time.monotonic()
            for i in range(COUNT):
                obj = manifest(i)
                c.create(codecs.from_dict(obj), namespace=ns)
                created[obj["metadata"]["name"]] = time.monotonic()
            deadline = time.monotonic() + 120
            while len(seen) < COUNT and time.monotonic() < deadline:
                time.sleep(0.05)
            stop.set()
            took = max(seen.values()) - t0 if seen else float("nan")
        rows = json.loads(stats.read_text())
        writes = sum(r["count"] for r in rows if r["verb"] in {"POST", "PUT", "PATCH", "DELETE"}) / COUNT
    latency = [seen[n] - t for n, t in created.items() if n in seen]
    result = {
        "trainingjobs": COUNT,
        "children_seen": len(latency),
        "p50_s": pct(latency, 0.5),
        "p99_s": pct(latency, 0.99),
        "max_s": max(latency),
        "all_in_s": took,
        "writes_per_trainingjob": writes,
        "target_p99_s": 1.0,
    }
    table = Table(title=f"TrainingJob: create to all children ({COUNT} at once)")
    for col in ("measure", "value", "target"):
        table.add_column(col)
    table.add_row("p50", f"{result['p50_s']:.3f} s", "")
    table.add_row("p99", f"{result['p99_s']:.3f} s", "<= 1 s")
    table.add_row("all children of all", f"{took:.2f} s", "")
    table.add_row("API writes per TrainingJob", f"{writes:.1f}", "")
    Console().print(table)
    out = REPO / "benchmarks" / "results" / "trainingjob_children.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
