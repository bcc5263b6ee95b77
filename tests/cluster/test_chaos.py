"""The operator behind a proxy that cuts its API connections at random (issue 12, item 7).

20 five-step pipelines run while every connection between the operator and
the API server (its own client's and kopf's watches) is cut 1 to 4 s after it
opened. Every pipeline must complete with exactly one Job per step, every
Event the pipelines call for must exist exactly once, the operator's
dataworks_events_total must count each of them once, and no retried transport
error may be logged at error level with a traceback.
"""

from __future__ import annotations

import collections
import contextlib
import json
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event
from prometheus_client.parser import text_string_to_metric_families

from dataworks.kube import clients
from tests.cluster.conftest import Cluster, Operator
from tests.cluster.pipelines import create, eventually, manifest, step, wait_phase
from tests.cluster.proxying import CuttingProxy

PIPELINES, STEPS = 20, 5
SEED = 12
LIFETIME = (1.0, 4.0)  # seconds each connection lives before the proxy cuts it


@dataclass
class Chaos:
    proxy: CuttingProxy
    log: Path
    metrics_url: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server(kubeconfig: str) -> tuple[str, int]:
    """The API server's host and port in `kubeconfig`."""
    (entry,) = yaml.safe_load(Path(kubeconfig).read_text())["clusters"]
    url = urllib.parse.urlsplit(entry["cluster"]["server"])
    if url.hostname not in {"127.0.0.1", "localhost"}:
        pytest.skip(
            f"the proxy listens on 127.0.0.1, which {url.hostname}'s serving certificate may not name"
        )
    return url.hostname, url.port or 443


def _through(kubeconfig: str, port: int, out: Path) -> None:
    """Write `out`: `kubeconfig` with its server at 127.0.0.1:`port` (the same credentials)."""
    config = yaml.safe_load(Path(kubeconfig).read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    out.write_text(yaml.safe_dump(config))


@pytest.fixture
def chaos(operator: Operator, cluster: Cluster, tmp_path: Path) -> Iterator[Chaos]:
    """The session's operator paused, and one whose every API connection goes through the proxy."""
    upstream = _server(cluster.kubeconfig)
    operator.stop()
    with CuttingProxy(upstream, seed=SEED, lifetime=LIFETIME) as proxy:
        kubeconfig = tmp_path / "kubeconfig"
        _through(cluster.kubeconfig, proxy.port, kubeconfig)
        port = _free_port()
        own = Operator(str(kubeconfig), tmp_path / "operator.log", "--health-port", str(port))
        own.start()
        try:
            yield Chaos(proxy, tmp_path / "operator.log", f"http://127.0.0.1:{port}/metrics")
        finally:
            own.stop()
            operator.start()


class JobUids:
    """Every uid each Job name had, from a watch: a Job deleted and created again shows two."""

    def __init__(self, kubeconfig: str, namespace: str) -> None:
        self.client = clients.sync_client(kubeconfig)
        self.namespace = namespace
        self.uids: dict[str, set[str]] = collections.defaultdict(set)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> JobUids:
        clients.prime_decoders(Job)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # a dropped watch starts again
                for _, job in self.client.watch(Job, namespace=self.namespace, server_timeout=2):
                    self.uids[job.metadata.name].add(job.metadata.uid)
                    if self._stop.is_set():
                        return


def chain(n: int) -> list[dict[str, Any]]:
    return [step(f"s{i}", [f"s{i - 1}"] if i > 1 else None) for i in range(1, n + 1)]


def expected_events(pipeline: str) -> list[tuple[str, str, str]]:
    out = []
    for i in range(1, STEPS + 1):
        out.append((pipeline, "StepStarted", f"step s{i} started (attempt 1, job {pipeline}-s{i})"))
        out.append((pipeline, "StepCompleted", f"step s{i} completed"))
    out.append((pipeline, "PipelineCompleted", f"{STEPS} of {STEPS} steps completed"))
    return out


def pipeline_events(client: Client, namespace: str) -> list[tuple[str, str, str]]:
    return [
        (e.involvedObject.name, e.reason or "", e.message or "")
        for e in client.list(Event, namespace=namespace)
        if e.involvedObject.kind == "Pipeline"
    ]


def events_total(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    return {
        s.labels["result"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "dataworks_events_total"
    }


def test_cut_connections_lose_no_event_and_duplicate_no_job(
    chaos: Chaos, cluster: Cluster, client: Client, namespace: str
) -> None:
    started = time.monotonic()
    names = [f"c{i:02d}" for i in range(PIPELINES)]
    with JobUids(cluster.kubeconfig, namespace) as jobs:
        for name in names:
            create(client, namespace, manifest(name, chain(STEPS)))
        for name in names:
            wait_phase(client, namespace, name, "Completed", timeout=100)
        ran = time.monotonic() - started
        eventually(lambda: len(jobs.uids) >= PIPELINES * STEPS, timeout=10, what="the watch to see every Job")

    # Wait for the Event senders to flush (or the Events to be lost for good).
    want = sorted(e for n in names for e in expected_events(n))
    deadline = time.monotonic() + 45
    got = pipeline_events(client, namespace)
    while sorted(got) != want and time.monotonic() < deadline:
        time.sleep(0.5)
        got = pipeline_events(client, namespace)
    counted = collections.Counter(got)
    lost, twice = sorted(set(want) - set(got)), {e: c for e, c in counted.items() if c > 1}
    recreated = {name: len(uids) for name, uids in jobs.uids.items() if len(uids) != 1}

    records = [json.loads(line) for line in chaos.log.read_text().splitlines() if line.startswith("{")]
    retries = [r for r in records if r["logger"] == "dataworks.kube" and "; try " in r["message"]]
    landed = [r for r in records if "had landed before a retry" in r["message"]]
    tracebacks = [r for r in records if r["level"] in {"error", "critical"} and "error" in r]
    kopf_errors = [r for r in records if r["level"] == "error" and r["logger"].startswith("kopf")]
    why = collections.Counter(r["message"].split(" failed (")[1].split(")")[0].split(":")[0] for r in retries)
    print(  # the numbers behind the verdict, with -s
        f"\nchaos: {ran:.1f}s to complete {PIPELINES} pipelines; proxy {chaos.proxy.counts};"
        f" {len(retries)} retries {dict(why)}; {len(landed)} Events had landed before their retry;"
        f" {len(lost)} Events lost, {len(twice)} twice; {len(recreated)} Jobs created again;"
        f" {len(tracebacks)} tracebacks at error level; {len(kopf_errors)} kopf error lines"
    )

    # No duplicate Job: exactly the five of each pipeline, each created once.
    assert sorted(jobs.uids) == sorted(f"{n}-s{i}" for n in names for i in range(1, STEPS + 1))
    assert recreated == {}
    # No Event lost, none twice, and the operator counted each once, however many tries it took.
    assert lost == [], "Events lost"
    assert twice == {}, "Events posted twice"
    assert sorted(got) == want
    assert events_total(chaos.metrics_url) == {"posted": len(want), "failed": 0}
    # The cuts hit the operator's requests, and each retry was one warning, never a traceback.
    assert chaos.proxy.counts.cut >= 10, "the proxy cut too few connections to prove anything"
    assert retries, "no request was retried: the connections were not cut where it matters"
    assert all(r["level"] == "warning" and "error" not in r for r in retries)
    assert [(r["logger"], r["message"]) for r in tracebacks] == []
