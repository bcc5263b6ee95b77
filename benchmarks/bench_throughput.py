"""Benchmark: operator throughput and cost.

Runs PIPELINES pipelines of STEPS chained container steps at once and reports
the wall time, the operator's CPU seconds per step (from /proc), and its API
write requests per step by verb and resource (from its counting transport,
--request-stats). Then adds suspended pipelines until TOTAL exist and reports
the operator's resident memory. Writes benchmarks/results/throughput.json.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from lightkube import codecs
from rich.console import Console
from rich.table import Table

from benchmarks.harness import REPO, cluster, namespace, operator
from dataworks.kube import clients
from dataworks.kube.resources import Pipeline
from tests.cluster import podspecs

PIPELINES, STEPS, TOTAL = 200, 5, 1000
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def chain(name: str, suspend: bool = False) -> dict[str, object]:
    steps = []
    for i in range(STEPS):
        s: dict[str, object] = {
            "name": f"s{i}",
            "type": "container",
            "image": "busybox",
            "command": ["true"],
            "annotations": {podspecs.FATE + "duration": "200ms"},
        }
        if i:
            s["dependsOn"] = [f"s{i - 1}"]
        steps.append(s)
    return {
        "apiVersion": "dataworks.io/v1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"steps": steps, "suspend": suspend},
    }


def main() -> None:
    assert Pipeline is not None  # registers the generic resource used by codecs.from_dict
    with cluster() as (kubeconfig, workdir), clients.sync_client(kubeconfig) as c:
        ns = namespace(c, "throughput")
        stats = workdir / "requests.json"
        with operator(kubeconfig, workdir, stats=stats) as op:
            cpu0 = cpu_seconds(op.pid)
            t0 = time.monotonic()
            for i in range(PIPELINES):
                c.create(codecs.from_dict(chain(f"p{i:04d}")), namespace=ns)
            while True:
                done = sum(
                    1
                    for p in c.list(Pipeline, namespace=ns)
                    if ((p.to_dict().get("status") or {}).get("phase")) in {"Completed", "Failed"}
                )
                if done == PIPELINES or time.monotonic() - t0 > 900:
                    break
                time.sleep(1)
            wall = time.monotonic() - t0
            cpu = cpu_seconds(op.pid) - cpu0
            for i in range(PIPELINES, TOTAL):
                c.create(codecs.from_dict(chain(f"p{i:04d}", suspend=True)), namespace=ns)
            time.sleep(10)
            rss = rss_mib(op.pid)
        rows = json.loads(stats.read_text())
    steps = PIPELINES * STEPS
    writes = {
        f"{r['verb']} {r['resource']}": r["count"]
        for r in rows
        if r["verb"] in {"POST", "PATCH", "PUT", "DELETE"}
    }
    # writes for the 800 suspended pipelines (one status patch each) are not step work
    step_writes = {k: v for k, v in writes.items()}
    step_writes["PATCH pipelines/status"] = step_writes.get("PATCH pipelines/status", 0) - (TOTAL - PIPELINES)
    per_step = sum(step_writes.values()) / steps
    result = {
        "pipelines": PIPELINES,
        "steps_per_pipeline": STEPS,
        "completed": done,
        "wall_seconds": wall,
        "operator_cpu_seconds_per_step": cpu / steps,
        "writes_per_step": per_step,
        "writes_per_step_by_kind": {k: v / steps for k, v in sorted(step_writes.items())},
        "operator_rss_mib_with_pipelines": {"pipelines": TOTAL, "rss_mib": rss},
    }
    table = Table(title=f"operator throughput: {PIPELINES} pipelines x {STEPS} chained steps at once")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("pipelines completed", f"{done} / {PIPELINES}")
    table.add_row("wall time", f"{wall:.1f} s")
    table.add_row("operator CPU per step", f"{1e3 * cpu / steps:.1f} ms")
    table.add_row("operator writes per step (target <= 4)", f"{per_step:.2f}")
    for k, v in sorted(step_writes.items()):
        table.add_row(f"  {k}", f"{v / steps:.2f}")
    table.add_row(f"operator RSS with {TOTAL} pipelines", f"{rss:.0f} MiB")
    Console().print(table)
    out = REPO / "benchmarks" / "results" / "throughput.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
