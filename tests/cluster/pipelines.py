"""Helpers for Pipeline tests: build, create, wait, and record Job events in order."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from lightkube import Client, codecs
from lightkube.resources.batch_v1 import Job
from lightkube.types import PatchType

from dataworks.kube import clients
from dataworks.kube.resources import Pipeline
from tests.builders.pipelines import FATE, manifest, step
from tests.cluster import helpers

__all__ = ["FATE", "manifest", "step"]


def create(client: Client, namespace: str, obj: dict[str, Any]) -> Any:
    return client.create(codecs.from_dict(obj), namespace=namespace)


def patch_spec(client: Client, namespace: str, name: str, spec: dict[str, Any]) -> None:
    """Merge-patch a Pipeline's spec, as `kubectl patch --type merge` does."""
    client.patch(Pipeline, name, {"spec": spec}, namespace=namespace, patch_type=PatchType.MERGE)


def status(p: Any) -> dict[str, Any]:
    return (p.to_dict().get("status") or {}) if p is not None else {}


def wait_phase(
    client: Client, namespace: str, name: str, *phases: str, timeout: float = 90
) -> dict[str, Any]:
    got = helpers.wait_for(
        client,
        Pipeline,
        name,
        namespace,
        lambda p: status(p).get("phase") in phases,
        timeout=timeout,
        what=f"phase in {phases}",
    )
    return status(got)


def step_phases(st: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["phase"] for s in st.get("stepStatuses", [])}


def jobs(client: Client, namespace: str, pipeline: str) -> list[Job]:
    return list(client.list(Job, namespace=namespace, labels={"dataworks.io/pipeline": pipeline}))


class JobRecorder:
    """Watches Jobs in a namespace and records, in observed order, when each Job
    first appears and when it is first seen succeeded."""

    def __init__(self, kubeconfig: str, namespace: str) -> None:
        self.client = clients.sync_client(kubeconfig)
        self.namespace = namespace
        self.events: list[tuple[str, str]] = []  # (kind, job name): kind is "created" or "complete"
        self._seen: set[tuple[str, str]] = set()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stop = threading.Event()
        self.error: Exception | None = None

    def __enter__(self) -> JobRecorder:
        clients.prime_decoders(Job)
        self._thread.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for _, job in self.client.watch(Job, namespace=self.namespace, server_timeout=2):
                    self._record("created", job.metadata.name)
                    # The Job controller marks success with SuccessCriteriaMet before
                    # Complete (Kubernetes >= 1.31); either means the Job succeeded.
                    if helpers.has_condition("SuccessCriteriaMet")(job) or helpers.has_condition("Complete")(
                        job
                    ):
                        self._record("complete", job.metadata.name)
                    if self._stop.is_set():
                        return
            except Exception as e:  # a dropped watch is retried; the last error is kept for failures
                self.error = e
                if self._stop.is_set():
                    return
                time.sleep(0.1)

    def _record(self, kind: str, name: str) -> None:
        if (kind, name) not in self._seen:
            self._seen.add((kind, name))
            self.events.append((kind, name))

    def index(self, kind: str, name: str) -> int:
        return self.events.index((kind, name))


def eventually(check: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
