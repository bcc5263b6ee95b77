"""A local pod's `resources.limits` are enforced by this machine's kernel, as a kubelet's are:
a process over its CPU limit is throttled, and one over its memory limit is OOM-killed and
reported `OOMKilled`. Real cgroups (the tests run as root, as CI does)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from dataworks.local import cgroups, kubelet
from dataworks.local.deployments import LocalDeployment
from dataworks.streams.processing import Throttling

SPIN = "import time\nwhile True: pass"
HOG = "import time\nx = bytearray(400 * 2**20)\nfor i in range(0, len(x), 4096): x[i] = 1\ntime.sleep(60)"
HERE = cgroups.Hierarchy.detect()
pytestmark = pytest.mark.skipif(
    HERE is None and os.environ.get("CI") != "true", reason="needs a writable cgroup hierarchy (root)"
)


def deployment(tmp_path: Path, program: str, limits: dict[str, str]) -> LocalDeployment:
    manifest: dict[str, Any] = {
        "metadata": {"name": "limited"},
        "spec": {
            "replicas": 1,
            "template": {
                "metadata": {"labels": {"app": "limited"}},
                "spec": {"containers": [{"name": "consumer", "resources": {"limits": limits}}]},
            },
        },
    }

    def runner(_: dict[str, Any], pod: str) -> kubelet.Container:
        return kubelet.Container(
            argv=lambda i: [sys.executable, "-c", program],
            env=lambda i: dict(os.environ),
            mounts={},
            termination=lambda i: tmp_path / f"termination-{i}",
        )

    return LocalDeployment(manifest, runner=runner, logs=tmp_path / "logs", wake=threading.Event())


def test_a_pod_over_its_cpu_limit_is_throttled_to_it(tmp_path: Path) -> None:
    assert HERE is not None, "CI runs as root: the cgroup hierarchy must be writable"
    d = deployment(tmp_path, SPIN, {"cpu": "200m"})
    d.reconcile()
    try:
        (pod,) = d.pods
        assert pod.proc is not None
        assert pod.group is not None
        stat = str(pod.group.cpu / "cpu.stat")
        throttling = Throttling(stat)
        proc = psutil.Process(pod.proc.pid)
        time.sleep(0.5)  # past the interpreter's start
        before, t0 = sum(proc.cpu_times()[:2]), time.monotonic()
        time.sleep(3)
        used = (sum(proc.cpu_times()[:2]) - before) / (time.monotonic() - t0)
        assert 0.1 < used < 0.3, used  # a fifth of a core, where it would take a whole one
        share = throttling.share()
        assert share is not None
        assert share > 0.5  # nearly every period ends throttled
    finally:
        d.terminate()
    time.sleep(0.2)
    assert not (HERE.cpu / f"{pod.name}-{pod.proc.pid}").exists()  # the group went with it


def test_a_pod_over_its_memory_limit_is_oom_killed_and_reported_as_a_kubelet_does(tmp_path: Path) -> None:
    assert HERE is not None, "CI runs as root: the cgroup hierarchy must be writable"
    d = deployment(tmp_path, HOG, {"memory": "128Mi"})
    d.reconcile()
    try:
        (pod,) = d.pods
        assert pod.proc is not None
        assert pod.proc.wait(timeout=30) == -9  # SIGKILL, from the kernel
        deadline = time.monotonic() + 5
        while pod.last_end is None and time.monotonic() < deadline:
            time.sleep(0.05)
        (status,) = d.pod_objects()[0]["status"]["containerStatuses"]
        assert status["lastState"]["terminated"] == {"exitCode": 137, "reason": "OOMKilled"}
        assert status["name"] == "consumer"
    finally:
        d.terminate()


def test_a_pod_without_limits_gets_no_group(tmp_path: Path) -> None:
    d = deployment(tmp_path, "import time; time.sleep(30)", {})
    d.reconcile()
    try:
        (pod,) = d.pods
        assert pod.proc is not None
        assert pod.group is None
        with open(f"/proc/{pod.proc.pid}/cgroup") as f:
            assert cgroups.PARENT not in f.read()
    finally:
        d.terminate()


def test_a_job_pod_over_its_memory_limit_fails_as_oom_killed(tmp_path: Path) -> None:
    """A Job's try under `resources.limits.memory` is ended by the kernel; the Job fails (no
    retries) and its pod says OOMKilled with exit code 137, as on a node."""
    from datetime import UTC, datetime

    from dataworks.local.jobs import Launcher, LocalJob

    assert HERE is not None, "CI runs as root: the cgroup hierarchy must be writable"
    container = {"name": "step", "resources": {"limits": {"memory": "128Mi"}}}
    manifest = {
        "metadata": {"name": "p-hog", "labels": {"dataworks.io/step": "hog", "dataworks.io/attempt": "1"}},
        "spec": {"backoffLimit": 0, "template": {"spec": {"containers": [container]}}},
    }
    launcher = Launcher(
        argv=lambda i: [sys.executable, "-c", HOG],
        env=lambda i, t: dict(os.environ),
        cwd=tmp_path,
        log=lambda i, t: tmp_path / f"w{i}.log",
        limits=cgroups.Limits.of(container),
    )
    job = LocalJob(manifest, launcher=launcher, wake=threading.Event())
    job.start(datetime.now(UTC))
    deadline = time.monotonic() + 30
    while job.view().state == "Active" and time.monotonic() < deadline:
        time.sleep(0.05)
        job.poll(datetime.now(UTC))
    assert job.view().state == "Failed"
    (pod,) = job.pods()
    (status,) = pod["status"]["containerStatuses"]
    assert status["state"]["terminated"]["exitCode"] == 137
    assert status["state"]["terminated"]["reason"] == "OOMKilled"
