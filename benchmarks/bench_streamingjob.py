"""Benchmark: a StreamingJob's autoscaler on the test cluster, with consumers running for real
(issue 15).

Each round, in a fresh namespace and stream: one StreamingJob (latency strategy, 1-6
consumers), fed by `dataworks generate --realtime` at BASE messages/s for PHASE seconds, then at
10x that for PHASE seconds, then nothing. Measured:

- reaction: from the first message of the 10x step to the Deployment asking for more
  consumers, as one observer polling every 50 ms sees it (target <= 5 s, the issue's);
- status writes per minute over the steady first phase (target <= 12: one per 5 s, unless the
  state changes);
- the most consumers asked for, and the time from the step's end to the stream drained;
- loss: every message produced was delivered and acknowledged (entries-read, pending 0);
- reclaim: a consumer with no pod holding 500 entries, until the others processed them.

Medians of ROUNDS rounds (env BENCH_ROUNDS, default 3); writes benchmarks/results/streamingjob.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import redis
import yaml
from lightkube import Client, codecs
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap
from rich.console import Console
from rich.table import Table

from benchmarks.harness import REPO, cluster, drop_namespace, namespace, operator
from dataworks.api import streamingjob as api
from dataworks.api.config import OperatorConfig
from dataworks.kube import clients, resources
from tests.local import services

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BASE = int(os.environ.get("BENCH_BASE_RATE", "2000"))
PHASE = float(os.environ.get("BENCH_PHASE_SECONDS", "20"))
CLI = [sys.executable, "-m", "dataworks.cli.main"]
StreamingJob = resources.of(api.INFO)


def exec_consumers(c: Client) -> None:
    image = {
        "image": OperatorConfig().streaming_jobs.image,
        "path": [str(Path(sys.executable).parent)],
        "expose": [sys.base_prefix],
        "env": {"PYTHONUNBUFFERED": "1"},
    }
    cm = ConfigMap(
        metadata=ObjectMeta(name="testcluster-exec"),
        data={"config.yaml": yaml.safe_dump({"images": [image]})},
    )
    c.apply(cm, namespace="kube-system", field_manager="bench", force=True)


def produce(
    server: services.Redis, stream: str, rate: int, seconds: float, seed: int
) -> subprocess.Popen[str]:
    target = f"redis://127.0.0.1:{server.port}/0?stream={stream}"
    cmd = [
        *CLI,
        "generate",
        "-q",
        "--seed",
        str(seed),
        "--rate",
        str(rate),
        "--duration",
        str(seconds),
        "--realtime",
        "-o",
        target,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def measure_reclaim(r: redis.Redis, stream: str) -> float | None:
    """A consumer with no pod (as after a node vanished) holding 500 read, unacknowledged
    entries: seconds until the live consumers processed them all (the operator marks them at
    its next reading, about once a second; the consumers claim every 0.5 s)."""
    pipe = r.pipeline(transaction=True)  # MULTI: the read comes before any blocked consumer's
    for i in range(500):
        msg = {"message_id": f"held-{i}", "symbol": "HELD", "sequence_number": i, "timestamp": 0}
        pipe.xadd(stream, {"data": json.dumps(msg)})
    pipe.xreadgroup("g", "gone-consumer", {stream: ">"}, count=500)
    held = pipe.execute()[-1]
    if not held or len(held[0][1]) != 500:
        return None
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        if not any(c["name"] == b"gone-consumer" and c["pending"] for c in r.xinfo_consumers(stream, "g")):
            return round(time.monotonic() - t0, 3)
        time.sleep(0.01)
    return None


def one_round(c: Client, server: services.Redis, tag: str) -> dict[str, Any]:
    ns = namespace(c, f"stj-{tag}")
    r = redis.Redis(port=server.port)
    body = {
        "apiVersion": "dataworks.io/v1",
        "kind": "StreamingJob",
        "metadata": {"name": "bench"},
        "spec": {
            "source": {
                "redis": {"address": f"redis://127.0.0.1:{server.port}/0", "stream": ns, "group": "g"}
            },
            "strategy": {"default": "latency"},
            "scaling": {"minReplicas": 1, "maxReplicas": 6, "scaleDownWindowSeconds": 30},
        },
    }
    c.create(codecs.from_dict(body), namespace=ns)
    writes: list[float] = []
    replicas: list[tuple[float, int]] = []
    stop = threading.Event()

    def observe() -> None:
        version = None
        while not stop.is_set():
            try:
                obj = c.get(StreamingJob, "bench", namespace=ns).to_dict()
                dep = c.get(Deployment, "bench", namespace=ns)
            except Exception:  # not created yet
                time.sleep(0.05)
                continue
            rv = (
                (obj.get("status") or {}).get("lastReconcileTime"),
                json.dumps(obj.get("status"), sort_keys=True),
            )
            if rv != version:
                writes.append(time.monotonic())
                version = rv
            replicas.append((time.monotonic(), dep.spec.replicas or 0))
            time.sleep(0.05)

    watcher = threading.Thread(target=observe, daemon=True)
    watcher.start()
    while not replicas or not (c.get(Deployment, "bench", namespace=ns).status.readyReplicas or 0):
        time.sleep(0.2)
    base = produce(server, ns, BASE, PHASE, 1)
    base_started = time.monotonic()
    base.communicate(timeout=PHASE * 3)
    step = produce(server, ns, BASE * 10, PHASE, 2)
    step_at = time.monotonic()
    step.communicate(timeout=PHASE * 3)
    step_end = time.monotonic()
    produced = int(r.xinfo_stream(ns)["entries-added"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        g = next(iter(r.xinfo_groups(ns)))
        if g["entries-read"] == produced and g["pending"] == 0:
            break
        time.sleep(0.1)
    drained = time.monotonic() - step_end
    g = next(iter(r.xinfo_groups(ns)))
    lost = produced - int(g["entries-read"]) + int(g["pending"])
    reclaim = measure_reclaim(r, ns)
    stop.set()
    watcher.join()
    before = max((n for t, n in replicas if t <= step_at), default=1)
    scaled = next((t for t, n in replicas if t > step_at and n > before), None)
    steady = [t for t in writes if base_started + 5 <= t < base_started + PHASE]
    drop_namespace(c, ns)
    return {
        "reaction_seconds": None if scaled is None else round(scaled - step_at, 2),
        "status_writes_per_minute": round(len(steady) * 60 / (PHASE - 5), 1),
        "most_replicas": max(n for _, n in replicas),
        "drained_after_step_seconds": round(drained, 1),
        "produced": produced,
        "lost": lost,
        "reclaim_seconds": reclaim,
    }


def main() -> None:
    rounds = []
    with (
        cluster() as (kubeconfig, workdir),
        services.redis(workdir) as server,
        clients.sync_client(kubeconfig) as c,
        operator(kubeconfig, workdir),
    ):
        exec_consumers(c)
        for i in range(ROUNDS):
            rounds.append(one_round(c, server, str(i)))
            print(rounds[-1])
    reactions = [x["reaction_seconds"] for x in rounds if x["reaction_seconds"] is not None]
    result = {
        "rounds": rounds,
        "base_rate": BASE,
        "step_rate": BASE * 10,
        "phase_seconds": PHASE,
        "reaction_seconds_median": statistics.median(reactions) if reactions else None,
        "status_writes_per_minute_median": statistics.median(x["status_writes_per_minute"] for x in rounds),
        "most_replicas_median": statistics.median(x["most_replicas"] for x in rounds),
        "drained_after_step_seconds_median": statistics.median(
            x["drained_after_step_seconds"] for x in rounds
        ),
        "lost_total": sum(x["lost"] for x in rounds),
        "reclaim_seconds_median": statistics.median(
            [x["reclaim_seconds"] for x in rounds if x["reclaim_seconds"] is not None] or [float("nan")]
        ),
    }
    out = REPO / "benchmarks" / "results" / "streamingjob.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    table = Table(title=f"StreamingJob autoscaler on the test cluster, median of {ROUNDS} rounds")
    for col in ("measure", "result", "target"):
        table.add_column(col)
    table.add_row(
        f"10x step ({BASE}/s -> {BASE * 10}/s) to more consumers asked",
        f"{result['reaction_seconds_median']} s",
        "<= 5 s",
    )
    table.add_row("status writes per minute, steady", f"{result['status_writes_per_minute_median']}", "<= 12")
    table.add_row("most consumers asked", f"{result['most_replicas_median']}", "")
    table.add_row("step's end to drained", f"{result['drained_after_step_seconds_median']} s", "")
    table.add_row("messages lost, all rounds", f"{result['lost_total']}", "0")
    table.add_row(
        "a podless consumer's 500 entries processed by others",
        f"{result['reclaim_seconds_median']} s",
        "<= 1 s after the operator sees it gone",
    )
    Console().print(table)


if __name__ == "__main__":
    main()
