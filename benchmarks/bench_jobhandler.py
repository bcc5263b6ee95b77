"""Benchmark: the job-completion handler (issue 13).

One observer watches Jobs and archive ConfigMaps. The capture latency of a Job
is the time from the observer seeing it succeed to the observer seeing its
archive appear. The operator runs only the handler (`--controllers jobhandler`)
and counts its API requests (`--request-stats`).

- steady: COUNT labelled Jobs created at RATE per second (default 500 at 50/s);
  their pods print a few lines. p50 and p99 capture latency (target: p99 <= 2 s).
- burst: COUNT labelled Jobs created at once, half of them with
  `ttlSecondsAfterFinished: 0`; the time until every one is archived, and how many
  of the TTL-0 Jobs still had their logs kept (the race of a pod deleted before its
  log is read).
- API writes per Job, by verb and resource, over both runs (target <= 6).
- memory: one Job whose container really prints LOG_MIB MiB (default 1024; an exec
  pod); the operator's peak RSS while it archives it, minus its RSS before
  (target < 100 MiB).

Writes benchmarks/results/jobhandler.json.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from lightkube import Client, codecs
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap
from rich.console import Console
from rich.table import Table

from benchmarks.harness import REPO, cluster, namespace, operator, succeeded
from dataworks.api import jobhandler as names
from dataworks.kube import clients
from tests.cluster import jobhandler as jh

COUNT = int(os.environ.get("BENCH_JOBS", "500"))
RATE = float(os.environ.get("BENCH_RATE", "50"))
LOG_MIB = int(os.environ.get("BENCH_LOG_MIB", "1024"))
PAINTED = {"duration": "300ms", "logs": "job {pod} starting\nread 100 rows\nwrote 100 rows\ndone"}


class Observer:
    """When one client first saw each Job succeed, and each Job's archive appear."""

    def __init__(self, kubeconfig: str, ns: str) -> None:
        self.kubeconfig, self.ns = kubeconfig, ns
        self.done: dict[str, float] = {}
        self.archived: dict[str, float] = {}
        self.available: dict[str, bool] = {}
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch, args=(k,), daemon=True) for k in (Job, ConfigMap)
        ]

    def __enter__(self) -> Observer:
        clients.prime_decoders(Job)
        clients.prime_decoders(ConfigMap)
        for t in self._threads:
            t.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    def _watch(self, kind: Any) -> None:
        client = clients.sync_client(self.kubeconfig)
        labels = {names.CREATED: "true"} if kind is ConfigMap else None
        while not self._stop.is_set():
            try:
                for _, obj in client.watch(kind, namespace=self.ns, labels=labels, server_timeout=30):
                    now = time.monotonic()
                    if kind is Job and succeeded(obj):
                        self.done.setdefault(obj.metadata.name, now)
                    elif kind is ConfigMap:
                        job = obj.metadata.labels[names.JOB_NAME]
                        self.archived.setdefault(job, now)
                        self.available[job] = (obj.data or {}).get(names.KEY_AVAILABLE) == "true"
                    if self._stop.is_set():
                        return
            except Exception:
                time.sleep(0.05)

    def wait(self, jobs: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(j in self.archived for j in jobs) and time.monotonic() < deadline:
            time.sleep(0.2)
        missing = [j for j in jobs if j not in self.archived]
        if missing:
            raise RuntimeError(f"{len(missing)} Jobs not archived after {timeout:.0f}s, e.g. {missing[:3]}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def steady(kubeconfig: str, c: Client) -> dict[str, Any]:
    ns = namespace(c, "handler-steady")
    names_ = [f"steady-{i:04d}" for i in range(COUNT)]
    with Observer(kubeconfig, ns) as seen:
        t0 = time.monotonic()
        for i, name in enumerate(names_):
            time.sleep(max(0.0, t0 + i / RATE - time.monotonic()))
            c.create(codecs.from_dict(jh.job(name, "true", exec_pod=False, fate=PAINTED)), namespace=ns)
        created_in = time.monotonic() - t0
        seen.wait(names_, 300)
    latency = [seen.archived[n] - seen.done[n] for n in names_ if n in seen.done]
    return {
        "jobs": COUNT,
        "rate_asked": RATE,
        "rate_created": COUNT / created_in,
        "latency_p50_s": pct(latency, 0.5),
        "latency_p99_s": pct(latency, 0.99),
        "latency_max_s": max(latency),
        "logs_kept": sum(seen.available.get(n, False) for n in names_),
    }


def burst(kubeconfig: str, c: Client) -> dict[str, Any]:
    ns = namespace(c, "handler-burst")
    names_ = [f"burst-{i:04d}" for i in range(COUNT)]
    ttl0 = set(names_[::2])
    with Observer(kubeconfig, ns) as seen:
        t0 = time.monotonic()
        for name in names_:
            spec = {"ttlSecondsAfterFinished": 0} if name in ttl0 else {}
            c.create(
                codecs.from_dict(jh.job(name, "true", exec_pod=False, fate=PAINTED, **spec)), namespace=ns
            )
        created = time.monotonic()
        seen.wait(names_, 600)
        took = max(seen.archived.values()) - t0
    latency = [seen.archived[n] - seen.done[n] for n in names_ if n in seen.done]
    return {
        "jobs": COUNT,
        "created_in_s": created - t0,
        "all_archived_in_s": took,
        "jobs_per_s": COUNT / took,
        "latency_p50_s": pct(latency, 0.5),
        "latency_p99_s": pct(latency, 0.99),
        "ttl0_jobs": len(ttl0),
        "ttl0_logs_kept": sum(seen.available.get(n, False) for n in ttl0),
    }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def memory(kubeconfig: str, c: Client, pid: int) -> dict[str, Any]:
    ns = namespace(c, "handler-memory")
    line = "0123456789" * 9 + "abcdefghi"  # 100 bytes with its newline
    script = f"yes {line} | head -c {LOG_MIB << 20}"
    before = rss_kib(pid)
    peak = before
    with Observer(kubeconfig, ns) as seen:
        t0 = time.monotonic()
        c.create(codecs.from_dict(jh.job("loud", script)), namespace=ns)
        deadline = time.monotonic() + 900
        while "loud" not in seen.archived and time.monotonic() < deadline:
            peak = max(peak, rss_kib(pid))
            time.sleep(0.05)
        took = time.monotonic() - t0
    cm = c.get(ConfigMap, "loud-results", namespace=ns)
    (section,) = jh.result_of(cm)["logs"]["sections"]
    return {
        "log_bytes": section["bytes"],
        "rss_before_mib": before / 1024,
        "rss_peak_mib": peak / 1024,
        "added_mib": (peak - before) / 1024,
        "archived_in_s": took,
        "stored_bytes": jh.result_of(cm)["logs"]["storedBytes"],
    }


def main() -> None:
    with cluster() as (kubeconfig, workdir), clients.sync_client(kubeconfig) as c:
        stats = workdir / "requests.json"
        with operator(kubeconfig, workdir, stats, "--controllers", "jobhandler") as proc:
            s = steady(kubeconfig, c)
            b = burst(kubeconfig, c)
            m = memory(kubeconfig, c, proc.pid)
        rows = json.loads(stats.read_text())
        jobs = 2 * COUNT + 1
        writes = {
            f"{r['verb']} {r['resource']}": r["count"] / jobs
            for r in rows
            if r["verb"] in {"POST", "PUT", "PATCH", "DELETE"}
        }
    result = {
        "steady": s,
        "burst": b,
        "memory": m,
        "writes_per_job": writes,
        "writes_per_job_total": sum(writes.values()),
        "targets": {"latency_p99_s": 2.0, "writes_per_job": 6, "added_rss_mib": 100},
    }
    table = Table(title=f"job-completion handler ({COUNT} Jobs per run; latency percentiles over them)")
    for col in ("measure", "value", "target"):
        table.add_column(col)
    table.add_row(f"steady {RATE:.0f}/s: capture latency p50", f"{s['latency_p50_s']:.2f} s", "")
    table.add_row(f"steady {RATE:.0f}/s: capture latency p99", f"{s['latency_p99_s']:.2f} s", "<= 2 s")
    table.add_row(
        "burst: all archived in", f"{b['all_archived_in_s']:.1f} s ({b['jobs_per_s']:.0f} Jobs/s)", ""
    )
    table.add_row(
        "burst: capture latency p50 / p99", f"{b['latency_p50_s']:.2f} / {b['latency_p99_s']:.2f} s", ""
    )
    table.add_row(
        "burst: TTL-0 Jobs whose logs were kept", f"{b['ttl0_logs_kept']} of {b['ttl0_jobs']}", "all"
    )
    table.add_row("API writes per Job", f"{result['writes_per_job_total']:.2f}", "<= 6")
    for k, v in sorted(writes.items()):
        table.add_row(f"  {k}", f"{v:.2f}", "")
    table.add_row(
        f"memory: {m['log_bytes'] / 2**30:.2f} GiB log, added RSS", f"{m['added_mib']:.1f} MiB", "< 100 MiB"
    )
    table.add_row("memory: archived in", f"{m['archived_in_s']:.1f} s", "")
    Console().print(table)
    out = REPO / "benchmarks" / "results" / "jobhandler.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
