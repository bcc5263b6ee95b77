"""Benchmark: a TrainingJob operator's reaction times on the test cluster (issue 14).

Three measures, each in its own namespace, for ROUNDS rounds (env BENCH_ROUNDS, default 3):

- children: COUNT TrainingJobs (default 50, env BENCH_TRAININGJOBS) are created at once, as
  fast as one client can. A TrainingJob's latency is from its create call returning to one
  observer seeing its Job, the last child (after the ConfigMap, the Service and the claim).
  Target p99 <= 1 s. With BENCH_BASELINE_SRC (another checkout's src/), that code's operator
  takes its turn in each round, and the table gives the ratio of the two in the same rounds.
- restart: RESTARTS TrainingJobs (default 20) whose worker 1 fails in attempt 1. Measured
  from the observer seeing attempt 1's Job fail to it seeing attempt 2's Job (target p99 <= 1 s),
  and from it seeing the worker's pod fail to it seeing every pod of attempt 2 running.
- status writes: RUNNING TrainingJobs (default 10) whose rank 0 prints a progress line every
  second; the TrainingJobs' status writes are counted over one minute once all run.

Medians of the rounds' figures; writes benchmarks/results/trainingjob.json.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lightkube import Client, codecs
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod
from rich.console import Console
from rich.table import Table

from benchmarks.harness import REPO, cluster, drop_namespace, namespace, operator
from dataworks.api import trainingjob as api
from dataworks.kube import clients, resources

COUNT = int(os.environ.get("BENCH_TRAININGJOBS", "50"))
RESTARTS = int(os.environ.get("BENCH_RESTARTS", "20"))
RUNNING = int(os.environ.get("BENCH_RUNNING", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BASELINE = os.environ.get("BENCH_BASELINE_SRC")
WINDOW = float(os.environ.get("BENCH_WINDOW", "60"))  # seconds of status writes counted
FATE = "fate.testcluster.dataworks.io/"
TrainingJob = resources.of(api.INFO)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def manifest(name: str, fate: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "dataworks.io/v1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": "m",
            "dataset": "d",
            "numWorkers": 2,
            "gpusPerWorker": 0,
            "image": "busybox:1.36",
            "checkpoint": {"enabled": False},
            "podAnnotations": {FATE + k: v for k, v in fate.items()},
        },
    }


def _failed(obj: Any) -> bool:
    conditions = (obj.status.conditions if obj.status else None) or []
    return any(c.type in ("Failed", "FailureTarget") and c.status == "True" for c in conditions)


class Observer:
    """One watcher of a namespace's Jobs, Pods or TrainingJobs; `mark` decides what to record."""

    def __init__(self, kubeconfig: str, ns: str, kind: Any, mark: Callable[[str, Any, float], None]) -> None:
        self.client, self.ns, self.kind, self.mark = clients.sync_client(kubeconfig), ns, kind, mark
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                for event, obj in self.client.watch(self.kind, namespace=self.ns, server_timeout=30):
                    self.mark(event, obj, time.monotonic())
                    if self.stop.is_set():
                        return
            except Exception:
                time.sleep(0.05)


@contextmanager
def observing(kubeconfig: str, ns: str, kind: Any, mark: Callable[[str, Any, float], None]) -> Iterator[None]:
    clients.prime_decoders(kind)
    o = Observer(kubeconfig, ns, kind, mark)
    threading.Thread(target=o.run, daemon=True).start()
    time.sleep(0.5)
    try:
        yield
    finally:
        o.stop.set()


def wait(done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def children(kubeconfig: str, workdir: Path, c: Client, tag: str, source: Path | None) -> list[float]:
    """Seconds from each create call to its Job being seen."""
    ns = namespace(c, f"children-{tag}")
    seen: dict[str, float] = {}

    def mark(_: str, job: Any, now: float) -> None:
        seen.setdefault(job.metadata.name.rsplit("-a", 1)[0], now)

    with (
        operator(kubeconfig, workdir, None, "--controllers", "trainingjobs", source=source),
        observing(kubeconfig, ns, Job, mark),
    ):
        created: dict[str, float] = {}
        for i in range(COUNT):
            obj = manifest(f"tj-{i:03d}", {"outcome": "run"})
            c.create(codecs.from_dict(obj), namespace=ns)
            created[obj["metadata"]["name"]] = time.monotonic()
        wait(lambda: len(seen) >= COUNT, 120)
    drop_namespace(c, ns)
    return [seen[n] - t for n, t in created.items() if n in seen]


def restarts(kubeconfig: str, workdir: Path, c: Client, tag: str) -> tuple[list[float], list[float]]:
    """Per TrainingJob: attempt 1's Job failed -> attempt 2's Job seen; worker pod failed -> all
    of attempt 2's pods running."""
    ns = namespace(c, f"restart-{tag}")
    job_failed: dict[str, float] = {}
    next_job: dict[str, float] = {}
    pod_failed: dict[str, float] = {}
    running: dict[str, dict[str, float]] = {}

    def mark_job(_: str, job: Any, now: float) -> None:
        tj, attempt = job.metadata.name.rsplit("-a", 1)
        if attempt == "1" and _failed(job):
            job_failed.setdefault(tj, now)
        elif attempt == "2":
            next_job.setdefault(tj, now)

    def mark_pod(_: str, pod: Any, now: float) -> None:
        tj, attempt = (pod.metadata.labels or {}).get("batch.kubernetes.io/job-name", "-a0").rsplit("-a", 1)
        phase = pod.status.phase if pod.status else None
        if attempt == "1" and phase == "Failed":
            pod_failed.setdefault(tj, now)
        elif attempt == "2" and phase == "Running":
            running.setdefault(tj, {}).setdefault(pod.metadata.name, now)

    fate = {
        "fail-if-label": "dataworks.io/attempt=1",
        "fail-indexes": "1",
        "duration": "3s",
        "exit-code": "3",
    }
    with (
        operator(kubeconfig, workdir, None, "--controllers", "trainingjobs"),
        observing(kubeconfig, ns, Job, mark_job),
        observing(kubeconfig, ns, Pod, mark_pod),
    ):
        for i in range(RESTARTS):
            c.create(codecs.from_dict(manifest(f"flaky-{i:03d}", fate)), namespace=ns)
        wait(lambda: sum(len(p) >= 2 for p in running.values()) >= RESTARTS, 120)
    drop_namespace(c, ns)
    to_job = [next_job[n] - t for n, t in job_failed.items() if n in next_job]
    to_running = [max(running[n].values()) - t for n, t in pod_failed.items() if len(running.get(n, {})) >= 2]
    return to_job, to_running


def progress_lines(epochs: int) -> str:
    body = {"epoch": 0, "totalEpochs": epochs, "metrics": {"loss": 1.0}}
    lines = []
    for e in range(1, epochs + 1):
        body.update(epoch=e, metrics={"loss": round(1.0 / e, 4)})
        lines.append("DATAWORKS_PROGRESS " + json.dumps(body, separators=(",", ":")))
    return "\n".join(lines)


def status_writes(kubeconfig: str, workdir: Path, c: Client, tag: str) -> float:
    """Status writes per TrainingJob per minute, all running and reporting progress every second."""
    ns = namespace(c, f"writes-{tag}")
    state: dict[str, str] = {}
    writes: list[float] = []
    versions: dict[str, str] = {}

    def mark(_: str, tj: Any, now: float) -> None:
        body = tj.to_dict()
        name, st = body["metadata"]["name"], body.get("status") or {}
        state[name] = st.get("state", "")
        key = json.dumps(st, sort_keys=True)
        if versions.get(name) not in (None, key):
            writes.append(now)
        versions[name] = key

    fate = {"duration": "600s", "logs": progress_lines(300), "log-interval": "1s"}
    with (
        operator(kubeconfig, workdir, None, "--controllers", "trainingjobs"),
        observing(kubeconfig, ns, TrainingJob, mark),
    ):
        for i in range(RUNNING):
            c.create(codecs.from_dict(manifest(f"busy-{i:03d}", fate)), namespace=ns)
        wait(lambda: sum(s == "Running" for s in state.values()) >= RUNNING, 120)
        start = time.monotonic()
        time.sleep(WINDOW)
    drop_namespace(c, ns)
    counted = [t for t in writes if start <= t < start + WINDOW]
    return len(counted) / RUNNING / (WINDOW / 60)


def main() -> None:
    rounds: list[dict[str, Any]] = []
    with cluster() as (kubeconfig, workdir), clients.sync_client(kubeconfig) as c:
        for r in range(ROUNDS):
            got: dict[str, Any] = {}
            turns = (
                [("children", None), ("children_baseline", Path(BASELINE))]
                if BASELINE
                else [("children", None)]
            )
            for key, source in turns if r % 2 == 0 else reversed(turns):  # each goes first in turn
                got[key] = children(kubeconfig, workdir, c, f"{r}-{key}".replace("_", "-"), source)
            got["restart_job"], got["restart_running"] = restarts(kubeconfig, workdir, c, f"{r}")
            got["writes_per_minute"] = status_writes(kubeconfig, workdir, c, f"{r}")
            rounds.append(got)

    def med(key: str, q: float) -> float:
        return statistics.median(pct(g[key], q) for g in rounds)

    result: dict[str, Any] = {
        "rounds": ROUNDS,
        "children": {"count": COUNT, "p50_s": med("children", 0.5), "p99_s": med("children", 0.99)},
        "restart": {
            "count": RESTARTS,
            "job_to_next_job_p50_s": med("restart_job", 0.5),
            "job_to_next_job_p99_s": med("restart_job", 0.99),
            "pod_failed_to_all_running_p50_s": med("restart_running", 0.5),
            "pod_failed_to_all_running_p99_s": med("restart_running", 0.99),
        },
        "status_writes_per_trainingjob_per_minute": statistics.median(g["writes_per_minute"] for g in rounds),
        "targets": {"children_p99_s": 1.0, "restart_p99_s": 1.0},
        "per_round": [
            {k: (round(pct(v, 0.99), 4) if isinstance(v, list) else v) for k, v in g.items()} for g in rounds
        ],
    }
    table = Table(title=f"TrainingJob reaction times, median of {ROUNDS} rounds")
    for col in ("measure", "p50", "p99", "target"):
        table.add_column(col)
    table.add_row(
        f"create -> all children ({COUNT} at once)", *_ps(result["children"], "p50_s", "p99_s"), "p99 <= 1 s"
    )
    if BASELINE:
        result["children_baseline"] = {
            "p50_s": med("children_baseline", 0.5),
            "p99_s": med("children_baseline", 0.99),
        }
        ratio = statistics.median(
            pct(g["children"], 0.99) / pct(g["children_baseline"], 0.99) for g in rounds
        )
        result["children_p99_ratio_to_baseline"] = ratio
        table.add_row(
            "  the baseline source, same rounds", *_ps(result["children_baseline"], "p50_s", "p99_s"), ""
        )
        table.add_row("  p99 ratio to the baseline", "", f"{ratio:.2f}x", "")
    rs = result["restart"]
    table.add_row(
        f"Job failed -> next attempt's Job ({RESTARTS})",
        *_ps(rs, "job_to_next_job_p50_s", "job_to_next_job_p99_s"),
        "p99 <= 1 s",
    )
    table.add_row(
        "worker failed -> all workers running again",
        *_ps(rs, "pod_failed_to_all_running_p50_s", "pod_failed_to_all_running_p99_s"),
        "",
    )
    table.add_row(
        f"status writes per TrainingJob per minute ({RUNNING}, progress every 1 s)",
        f"{result['status_writes_per_trainingjob_per_minute']:.1f}",
        "",
        "<= 12 (one per 5 s)",
    )
    Console().print(table)
    out = REPO / "benchmarks" / "results" / "trainingjob.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


def _ps(d: dict[str, float], p50: str, p99: str) -> tuple[str, str]:
    return f"{d[p50]:.3f} s", f"{d[p99]:.3f} s"


if __name__ == "__main__":
    main()
