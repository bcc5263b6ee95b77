"""Benchmark: operator throughput and cost.

Runs PIPELINES pipelines of STEPS chained container steps at once and reports
the wall time, the operator's CPU seconds per step (from /proc), and its API
write requests per step by verb and resource (from its counting transport,
--request-stats). Then adds suspended pipelines until TOTAL exist and reports
the operator's resident memory. The same run is repeated (in its own namespace,
with its own operator) with `stepEvents: false`, to show what the per-step
Events cost. Writes benchmarks/results/throughput.json.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

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


def run(
    kubeconfig: str, workdir: Path, c: Any, ns: str, *, step_events: bool, rss_total: int = 0
) -> dict[str, Any]:
    """PIPELINES pipelines at once under an operator watching only `ns`; then, if rss_total,
    suspended pipelines up to that many and the operator's RSS."""
    stats, config = workdir / f"requests-{ns}.json", workdir / f"config-{ns}.yaml"
    config.write_text(json.dumps({"pipelines": {"stepEvents": step_events}}))
    with operator(kubeconfig, workdir, stats, "--namespace", ns, "--config", str(config)) as op:
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
        rss = None
        if rss_total:
            for i in range(PIPELINES, rss_total):
                c.create(codecs.from_dict(chain(f"p{i:04d}", suspend=True)), namespace=ns)
            time.sleep(10)
            rss = rss_mib(op.pid)
    rows = json.loads(stats.read_text())
    writes = {
        f"{r['verb']} {r['resource']}": r["count"]
        for r in rows
        if r["verb"] in {"POST", "PATCH", "PUT", "DELETE"}
    }
    # the suspended pipelines' writes (one status patch each) are not step work
    if rss_total:
        writes["PATCH pipelines/status"] = writes.get("PATCH pipelines/status", 0) - (rss_total - PIPELINES)
    steps = PIPELINES * STEPS
    return {
        "step_events": step_events,
        "completed": done,
        "wall_seconds": wall,
        "operator_cpu_seconds_per_step": cpu / steps,
        "writes_per_step": sum(writes.values()) / steps,
        "writes_per_step_by_kind": {k: v / steps for k, v in sorted(writes.items())},
        "rss_mib": rss,
    }


def main() -> None:
    assert Pipeline is not None  # registers the generic resource used by codecs.from_dict
    with cluster() as (kubeconfig, workdir), clients.sync_client(kubeconfig) as c:
        loud = run(kubeconfig, workdir, c, namespace(c, "throughput"), step_events=True, rss_total=TOTAL)
        quiet = run(kubeconfig, workdir, c, namespace(c, "throughput-quiet"), step_events=False)
    result = {
        "pipelines": PIPELINES,
        "steps_per_pipeline": STEPS,
        "completed": loud["completed"],
        "wall_seconds": loud["wall_seconds"],
        "operator_cpu_seconds_per_step": loud["operator_cpu_seconds_per_step"],
        "writes_per_step": loud["writes_per_step"],
        "writes_per_step_by_kind": loud["writes_per_step_by_kind"],
        "operator_rss_mib_with_pipelines": {"pipelines": TOTAL, "rss_mib": loud["rss_mib"]},
        "without_step_events": {k: v for k, v in quiet.items() if k not in {"step_events", "rss_mib"}},
    }
    table = Table(title=f"operator throughput: {PIPELINES} pipelines x {STEPS} chained steps at once")
    table.add_column("measure")
    table.add_column("stepEvents: true (default)", justify="right")
    table.add_column("stepEvents: false", justify="right")
    done = (f"{r['completed']} / {PIPELINES}" for r in (loud, quiet))
    table.add_row("pipelines completed", *done)
    table.add_row("wall time", f"{loud['wall_seconds']:.1f} s", f"{quiet['wall_seconds']:.1f} s")
    table.add_row(
        "operator CPU per step",
        f"{1e3 * loud['operator_cpu_seconds_per_step']:.1f} ms",
        f"{1e3 * quiet['operator_cpu_seconds_per_step']:.1f} ms",
    )
    writes = (f"{r['writes_per_step']:.2f}" for r in (loud, quiet))
    table.add_row("operator writes per step (target <= 4)", *writes)
    kinds = sorted(set(loud["writes_per_step_by_kind"]) | set(quiet["writes_per_step_by_kind"]))
    for k in kinds:
        a, b = loud["writes_per_step_by_kind"].get(k, 0), quiet["writes_per_step_by_kind"].get(k, 0)
        table.add_row(f"  {k}", f"{a:.2f}", f"{b:.2f}")
    table.add_row(f"operator RSS with {TOTAL} pipelines", f"{loud['rss_mib']:.0f} MiB", "")
    Console().print(table)
    out = REPO / "benchmarks" / "results" / "throughput.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
