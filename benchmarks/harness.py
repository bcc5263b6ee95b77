"""Shared benchmark plumbing: a fresh test cluster with the CRDs, the operator,
and a watcher that timestamps Job events as one observer sees them."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Namespace, Pod, ServiceAccount

from dataworks.kube import clients
from tests.cluster import helpers

REPO = Path(__file__).resolve().parents[1]


def start_testcluster(tmp: Path) -> tuple[subprocess.Popen[str], float, str]:
    """Start bin/testcluster in tmp; returns the process, seconds to "ready", and the kubeconfig."""
    t0 = time.monotonic()
    kubeconfig = str(tmp / "kubeconfig")
    proc = subprocess.Popen(
        [str(REPO / "bin" / "testcluster"), "--data-dir", str(tmp / "data"), "--kubeconfig", kubeconfig],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ready"):
            return proc, time.monotonic() - t0, kubeconfig
    raise RuntimeError("testcluster exited before it was ready")


@contextmanager
def cluster() -> Iterator[tuple[str, Path]]:
    """A fresh test cluster with the dataworks CRDs; yields (kubeconfig, workdir)."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proc, _, kubeconfig = start_testcluster(tmp)
        assert proc.stdout is not None
        try:
            with clients.sync_client(kubeconfig) as c:
                helpers.install_crds(c, REPO / "deploy" / "crds")
            yield kubeconfig, tmp
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            proc.stdout.close()


@contextmanager
def operator(
    kubeconfig: str,
    workdir: Path,
    stats: Path | None = None,
    *extra: str,
    source: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """The operator of this checkout, or (`source`: a checkout's src/) of another commit's code,
    run with this venv's Python and dependencies."""
    program = [str(Path(sys.executable).parent / "dataworks-operator")]
    env = None
    if source is not None:
        program = [sys.executable, "-m", "dataworks.operator.main"]
        env = {**os.environ, "PYTHONPATH": str(source)}
    cmd = [
        *program,
        "--kubeconfig",
        kubeconfig,
        "--health-port",
        "0",
        "--log-format",
        "json",
    ]
    if stats is not None:
        cmd += ["--request-stats", str(stats)]
    cmd += extra
    with (workdir / "operator.log").open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        time.sleep(3)  # kopf start-up: login, CRD discovery, watches
        try:
            yield proc
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def namespace(c: Client, name: str) -> str:
    c.create(Namespace(metadata=ObjectMeta(name=name)))
    helpers.wait_for(c, ServiceAccount, "default", name, lambda sa: True, timeout=30)
    return name


def drop_namespace(c: Client, name: str, timeout: float = 120) -> None:
    """Delete a namespace and wait until its pods are gone, so the next measure has the nodes."""
    c.delete(Namespace, name)
    deadline = time.monotonic() + timeout
    while any(True for _ in c.list(Pod, namespace=name)) and time.monotonic() < deadline:
        time.sleep(0.5)


def succeeded(job: Job) -> bool:
    """The Job controller marks success with SuccessCriteriaMet, then Complete."""
    return helpers.has_condition("SuccessCriteriaMet")(job) or helpers.has_condition("Complete")(job)


class JobClock:
    """One observer's clock: when it first saw each Job, and first saw it succeed."""

    def __init__(self, kubeconfig: str, namespace: str) -> None:
        self.client = clients.sync_client(kubeconfig)
        self.namespace = namespace
        self.added: dict[str, float] = {}
        self.done: dict[str, float] = {}
        self.labels: dict[str, dict[str, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> JobClock:
        clients.prime_decoders(Job)
        self._thread.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for _, job in self.client.watch(Job, namespace=self.namespace, server_timeout=30):
                    now = time.monotonic()
                    name = job.metadata.name
                    self.added.setdefault(name, now)
                    self.labels.setdefault(name, dict(job.metadata.labels or {}))
                    if succeeded(job):
                        self.done.setdefault(name, now)
                    if self._stop.is_set():
                        return
            except Exception:
                time.sleep(0.05)
