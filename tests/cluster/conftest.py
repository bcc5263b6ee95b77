"""Fixtures for tests against a real Kubernetes control plane.

By default the session starts the in-process control plane from test/cluster
(building it with `make testcluster` when it is missing or stale). Setting
DATAWORKS_TEST_KUBECONFIG runs the same tests against that cluster instead,
for example kind. Tests reach the cluster only through the Kubernetes API.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Namespace, ServiceAccount

from dataworks.kube import clients
from tests.cluster import helpers
from tests.local import services

REPO = Path(__file__).resolve().parents[2]
REDIS_PASSWORD = "s3cret-for-tests"  # the StreamingJob tests' redis-server asks for it
BINARY = REPO / "bin" / "testcluster"
SOURCES = REPO / "test" / "cluster"


def _stale() -> bool:
    if not BINARY.exists():
        return True
    built = BINARY.stat().st_mtime
    return any(
        p.stat().st_mtime > built
        for p in SOURCES.rglob("*")
        if p.is_file() and p.suffix in {".go", ".mod", ".sum", ".yaml"}
    )


def terminate(proc: subprocess.Popen[Any], kill: bool = False) -> None:
    """SIGTERM (or SIGKILL) and wait; SIGKILL if it is still there after 30 s."""
    if kill:
        proc.kill()
    else:
        proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Cluster:
    """A running cluster: its kubeconfig and an admin client."""

    def __init__(
        self, kubeconfig: str, proc: subprocess.Popen[str] | None = None, log: IO[str] | None = None
    ) -> None:
        self.kubeconfig = kubeconfig
        self.proc = proc
        self.log = log
        self.client = clients.sync_client(kubeconfig)

    def stop(self) -> None:
        self.client.close()
        if self.proc is not None:
            terminate(self.proc)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        if self.log is not None:
            self.log.close()

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        kubectl = REPO / "bin" / "kubectl"
        cmd = [str(kubectl) if kubectl.exists() else "kubectl", "--kubeconfig", self.kubeconfig, *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=60, input=input)


def _start(tmp: Path, *flags: str) -> Cluster:
    if _stale():
        subprocess.run(["make", "-C", str(REPO), "testcluster"], check=True)
    kubeconfig = tmp / "kubeconfig"
    log = (tmp / "testcluster.out").open("w")
    proc = subprocess.Popen(
        [str(BINARY), "--data-dir", str(tmp / "data"), "--kubeconfig", str(kubeconfig), *flags],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 180
    ready = False
    for line in proc.stdout:
        if line.startswith("ready") or time.monotonic() > deadline:
            ready = line.startswith("ready")
            break
    if not ready or proc.poll() is not None:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        log.close()
        raise RuntimeError(
            f"test cluster did not become ready; see {tmp}/testcluster.out and {tmp}/data/cluster.log"
        )
    return Cluster(str(kubeconfig), proc, log)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    external = os.environ.get("DATAWORKS_TEST_KUBECONFIG")
    c = Cluster(external, None) if external else _start(tmp_path_factory.mktemp("testcluster"))
    os.environ["KUBECONFIG"] = c.kubeconfig
    try:
        helpers.install_crds(c.client, REPO / "deploy" / "crds")
        yield c
    finally:
        c.stop()


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace enforcing the restricted Pod Security Standard."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.client.create(
        Namespace(
            metadata=ObjectMeta(
                name=name,
                labels={
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                    "dataworks.io/test": "true",
                },
            )
        )
    )
    # Pods are refused until the ServiceAccount controller creates "default".
    helpers.wait_for(cluster.client, ServiceAccount, "default", name, lambda sa: True, timeout=30)
    try:
        yield name
    finally:
        cluster.client.delete(Namespace, name)


@pytest.fixture
def client(cluster: Cluster) -> Client:
    return cluster.client


class InPod:
    """What a pod gives a process: the ServiceAccount files at their fixed path and the
    KUBERNETES_SERVICE_HOST/PORT environment. The files are bind-mounted over
    /var/run/secrets/kubernetes.io/serviceaccount in a private mount namespace
    (`unshare`), so the code path is the one a real pod takes; no kubeconfig is visible."""

    MOUNT = "/run/secrets/kubernetes.io/serviceaccount"  # /var/run is a link to /run

    def __init__(self, sa_dir: Path, server: str) -> None:
        self.sa_dir, self.server = sa_dir, server

    def command(self, argv: list[str]) -> list[str]:
        script = f'mount -t tmpfs tmpfs /run && mkdir -p {self.MOUNT} && mount --bind "$0" {self.MOUNT}'
        script += ' && exec "$@"'
        return ["unshare", "--mount", "--map-root-user", "--", "sh", "-c", script, str(self.sa_dir), *argv]

    def env(self) -> dict[str, str]:
        url = urllib.parse.urlsplit(self.server)
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        env["HOME"] = str(self.sa_dir.parent)  # no ~/.kube/config either
        env["KUBERNETES_SERVICE_HOST"] = url.hostname or ""
        env["KUBERNETES_SERVICE_PORT"] = str(url.port or 443)
        return env


class Operator:
    """The dataworks-operator process, run out of cluster with the test kubeconfig, or, given
    `pod` (a ServiceAccount directory: token, ca.crt, namespace), as it runs in a pod."""

    def __init__(
        self,
        kubeconfig: str | None,
        log_path: Path,
        *extra: str,
        pod: InPod | None = None,
        program: list[str] | None = None,
    ) -> None:
        """`extra` flags follow the defaults, so they win (e.g. --health-port 8089, --config F);
        `program` replaces the dataworks-operator command (e.g. one with a test kind added)."""
        self.kubeconfig, self.log_path, self.extra, self.pod = kubeconfig, log_path, extra, pod
        self.program = program
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None

    def start(self) -> None:
        self.log = self.log_path.open("ab")
        exe = Path(sys.executable).parent / "dataworks-operator"
        program = self.program or [str(exe)]
        flags = ["--health-port", "0", "--log-format", "json", *self.extra]
        if self.pod is None:
            assert self.kubeconfig is not None
            cmd, env = [*program, "--kubeconfig", self.kubeconfig, *flags], None
        else:
            cmd, env = self.pod.command([*program, *flags]), self.pod.env()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=REPO)

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None:
            terminate(self.proc, kill=kill)
            self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None


@pytest.fixture(scope="session")
def operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    op = Operator(cluster.kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log")
    op.start()
    try:
        yield op
    finally:
        op.stop()


@contextlib.contextmanager
def _exec_consumers(client: Client, *, path: list[str], expose: list[str]) -> Iterator[None]:
    from dataworks.api.config import OperatorConfig

    consumer = {
        "image": OperatorConfig().streaming_jobs.image,
        "path": [*path, str(Path(sys.executable).parent)],
        "expose": [sys.base_prefix, *expose],
        "env": {"PYTHONUNBUFFERED": "1"},
    }
    cm = ConfigMap(
        metadata=ObjectMeta(name="testcluster-exec"),
        data={"config.yaml": yaml.safe_dump({"images": [consumer]})},
    )
    client.apply(cm, namespace="kube-system", field_manager="dataworks-tests", force=True)
    try:
        yield
    finally:
        client.delete(ConfigMap, "testcluster-exec", namespace="kube-system")


@pytest.fixture
def consumers_run_for_real(client: Client) -> Iterator[None]:
    """Pods of the consumer image run `dataworks consume` from this checkout's virtualenv (the
    test control plane's exec configuration): StreamingJob consumers that really consume."""
    with _exec_consumers(client, path=[], expose=[]):
        yield


@pytest.fixture
def consumer_reports(client: Client) -> Iterator[Path]:
    """As consumers_run_for_real, and each consumer process also commits its report (what it
    processed, by sequence number) into the directory this yields, before it acknowledges:
    a `dataworks` first on the image's PATH adds `--report` to the operator's command, as
    the benchmark's controller does locally. The operator's manifests are unchanged. Both
    directories sit directly under /tmp, open to the consumers' non-root user (a path the
    harness exposes from under a private directory is read-only)."""
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="dataworks-reports-", dir="/tmp"))
    reports, wrapper = top / "reports", top / "bin"
    top.chmod(0o755)
    reports.mkdir()
    reports.chmod(0o777)  # the consumers run as a non-root user
    wrapper.mkdir()
    script = wrapper / "dataworks"
    real = Path(sys.executable).parent / "dataworks"
    script.write_text(f'#!/bin/sh\nexec {real} "$@" --report "{reports}/${{POD_NAME}}-{{pid}}.json"\n')
    script.chmod(0o755)
    try:
        with _exec_consumers(client, path=[str(wrapper)], expose=[]):
            yield reports
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Kafka]:
    """An Apache Kafka broker on loopback, where exec pods reach it."""
    with services.kafka(tmp_path_factory.mktemp("kafka")) as server:
        yield server


@pytest.fixture(scope="session")
def stream_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Redis]:
    """A redis-server with a password (REDIS_PASSWORD), on loopback, where exec pods reach it."""
    with services.redis(tmp_path_factory.mktemp("redis"), password=REDIS_PASSWORD) as server:
        yield server
