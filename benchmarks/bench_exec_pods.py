"""Benchmark: exec pods of the test control plane (pods whose command runs as a real process).

1. Start-up: SAMPLES pods created one at a time, each running `true`. For each, the harness's
   own measure, from seeing the pod bound to a node to its process running (the annotation
   fate.testcluster.dataworks.io/exec-startup), and the end-to-end time from the client's create
   call to the process's first instruction (the process prints its clock; same machine, same
   clock), which adds admission and scheduling.
2. Concurrency: pods running `sleep` are added in batches of STEP, all kept running, until
   MAX_PODS run, a batch does not all reach Running within a minute, or the machine's
   available memory falls under FLOOR_MIB. Records how many ran at once, the harness's
   resident memory, and the resident memory of the pods' processes (init + command).

Prints a table and writes JSON to benchmarks/results/exec_pods.json. Quote medians: these
machines are shared. BENCH_EXEC_MAX and BENCH_EXEC_STEP override MAX_PODS and STEP;
BENCH_EXEC_RESULT names the result file.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Pod, ServiceAccount
from rich.console import Console
from rich.table import Table

from dataworks.kube import clients
from tests.cluster import helpers, podspecs

REPO = Path(__file__).resolve().parents[1]
SAMPLES = 20
MAX_PODS = int(os.environ.get("BENCH_EXEC_MAX", "600"))
STEP = int(os.environ.get("BENCH_EXEC_STEP", "50"))
FLOOR_MIB = 6144  # stop well before the machine runs short: it is shared
NODES = MAX_PODS // 100 + 3  # 110 pods per node, and the last node is tainted: room for MAX_PODS
EXEC = {podspecs.FATE + "exec": "true"}


def start(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    kubeconfig = str(tmp / "kubeconfig")
    flags = ["--nodes", str(NODES), "--exec-max-pods", str(MAX_PODS + STEP)]
    proc = subprocess.Popen(
        [
            str(REPO / "bin" / "testcluster"),
            "--data-dir",
            str(tmp / "data"),
            "--kubeconfig",
            kubeconfig,
            *flags,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ready"):
            return proc, kubeconfig
    raise RuntimeError("testcluster exited before it was ready")


def pod(name: str, command: list[str]) -> Pod:
    c = podspecs.restricted_container()
    c.command = command
    return Pod(
        metadata=ObjectMeta(name=name, annotations=dict(EXEC)), spec=podspecs.restricted_spec(containers=[c])
    )


def duration_seconds(text: str) -> float:
    """A Go duration as the harness writes it: 12.3ms, 1.2s, 850µs."""
    for unit, scale in (("ms", 1e-3), ("µs", 1e-6), ("us", 1e-6), ("ns", 1e-9), ("s", 1.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    raise ValueError(text)


def startup(c: Client, ns: str) -> tuple[list[float], list[float]]:
    harness, end_to_end = [], []
    for i in range(SAMPLES):
        name = f"s{i}"
        t0 = time.time()
        c.create(pod(name, ["date", "+%s.%N"]), namespace=ns)
        done = helpers.wait_for(
            c, Pod, name, ns, lambda p: p.status.phase in ("Succeeded", "Failed"), timeout=60
        )
        assert done.status.phase == "Succeeded", done.status
        annotations = done.metadata.annotations or {}
        harness.append(duration_seconds(annotations[podspecs.FATE + "exec-startup"]))
        (line,) = [ln for ln in c.log(name, namespace=ns) if ln.strip()]
        end_to_end.append(float(line) - t0)
    return harness, end_to_end


def available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def pod_processes(harness: int) -> list[int]:
    """Every descendant of the harness: the pods' init processes and their commands."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], list(children.get(harness, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def stuck(c: Client, ns: str, batch: int) -> dict[str, object]:
    """A batch did not all run: how many run, and why one pod does not."""
    pods = list(c.list(Pod, namespace=ns))
    running = sum(1 for p in pods if p.status.phase == "Running")
    why = ""
    for p in pods:
        if p.status.phase == "Pending":
            waiting = [s.state.waiting for s in p.status.containerStatuses or [] if s.state.waiting]
            conditions = [
                f"{x.reason}: {x.message}" for x in p.status.conditions or [] if x.status == "False"
            ]
            why = waiting[0].message if waiting else "; ".join(conditions)
            break
    return {"running": running, "stopped_by": f"batch {batch // STEP + 1} not all Running in 60s: {why}"}


def concurrency(c: Client, ns: str, harness: int) -> dict[str, object]:
    running, stopped_by = 0, f"reached {MAX_PODS}"
    for batch in range(0, MAX_PODS, STEP):
        names = [f"c{i}" for i in range(batch, batch + STEP)]
        for n in names:
            c.create(pod(n, ["sleep", "3600"]), namespace=ns)
        deadline = time.monotonic() + 60
        while True:
            phases = {
                p.metadata.name: p.status.phase for p in c.list(Pod, namespace=ns) if p.metadata.name in names
            }
            if all(ph == "Running" for ph in phases.values()) and len(phases) == len(names):
                break
            if time.monotonic() > deadline:
                return stuck(c, ns, batch)
            time.sleep(0.5)
        running += STEP
        if available_mib() < FLOOR_MIB:
            stopped_by = f"available memory under {FLOOR_MIB} MiB"
            break
    procs = pod_processes(harness)
    return {
        "running": running,
        "stopped_by": stopped_by,
        "pod_processes": len(procs),
        "pod_processes_rss_mib": rss_mib(procs),
        "harness_rss_mib": rss_mib([harness]),
        "available_mib_after": available_mib(),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        proc, kubeconfig = start(Path(d))
        try:
            with clients.sync_client(kubeconfig) as c:
                c.create(Namespace(metadata=ObjectMeta(name="bench")))
                helpers.wait_for(c, ServiceAccount, "default", "bench", lambda sa: True, timeout=30)
                harness, end_to_end = startup(c, "bench")
                conc = concurrency(c, "bench", proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=120)
            if proc.stdout:
                proc.stdout.close()
    result = {
        "samples": SAMPLES,
        "bound_to_process_start_ms": {
            "median": 1000 * statistics.median(harness),
            "min": 1000 * min(harness),
            "max": 1000 * max(harness),
        },
        "create_to_process_start_ms": {
            "median": 1000 * statistics.median(end_to_end),
            "min": 1000 * min(end_to_end),
            "max": 1000 * max(end_to_end),
        },
        "concurrency": conc,
        "cpus": os.cpu_count(),
    }
    table = Table(title="exec pods")
    table.add_column("measure")
    table.add_column("value", justify="right")
    b, e = result["bound_to_process_start_ms"], result["create_to_process_start_ms"]
    table.add_row(
        f"bound -> process start, median of {SAMPLES}",
        f"{b['median']:.0f} ms ({b['min']:.0f}-{b['max']:.0f})",
    )
    table.add_row(
        f"create -> process start, median of {SAMPLES}",
        f"{e['median']:.0f} ms ({e['min']:.0f}-{e['max']:.0f})",
    )
    table.add_row("exec pods running at once", f"{conc['running']} ({conc['stopped_by']})")
    if "pod_processes" in conc:
        per_pod = conc["pod_processes_rss_mib"] / max(conc["running"], 1)
        table.add_row(
            "RSS of the pods' processes", f"{conc['pod_processes_rss_mib']:.0f} MiB ({per_pod:.1f} per pod)"
        )
        table.add_row("harness RSS with them running", f"{conc['harness_rss_mib']:.0f} MiB")
    Console().print(table)
    out = REPO / "benchmarks" / "results" / os.environ.get("BENCH_EXEC_RESULT", "exec_pods.json")
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
