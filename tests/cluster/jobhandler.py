"""Helpers for job-completion handler tests on the cluster: labelled Jobs whose pods run real
shell commands (exec pods, test/cluster/README.md), and reading their archives back."""

from __future__ import annotations

import base64
import gzip
import json
import time
from typing import Any

from lightkube import ApiError, Client, codecs
from lightkube.resources.batch_v1 import Job

__all__ = ["Job"]
from lightkube.resources.core_v1 import ConfigMap, Event

from dataworks.api import jobhandler as names

FATE = "fate.testcluster.dataworks.io/"
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def job(
    name: str,
    script: str,
    *,
    label: str | None = "true",
    exec_pod: bool = True,
    fate: dict[str, str] | None = None,
    restart: str = "Never",
    init: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Job whose one container runs `sh -c script` for real (or plays `fate` when not exec)."""
    annotations = {FATE + "exec": "true"} if exec_pod else {FATE + k: v for k, v in (fate or {}).items()}
    pod: dict[str, Any] = {
        "restartPolicy": restart,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "main",
                "image": "busybox:1.36",
                "command": ["sh", "-c", script],
                "securityContext": RESTRICTED,
            }
        ],
    }
    if init is not None:
        pod["initContainers"] = [
            {
                "name": "prepare",
                "image": "busybox:1.36",
                "command": ["sh", "-c", init],
                "securityContext": RESTRICTED,
            }
        ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {names.ENABLED: label} if label is not None else {}},
        "spec": {
            "backoffLimit": 0,
            "template": {"metadata": {"annotations": annotations}, "spec": pod},
            **spec,
        },
    }


def create(client: Client, namespace: str, obj: dict[str, Any]) -> Any:
    return client.create(codecs.from_dict(obj), namespace=namespace)


def archives(client: Client, namespace: str, job_name: str) -> list[ConfigMap]:
    return list(
        client.list(ConfigMap, namespace=namespace, labels={names.CREATED: "true", names.JOB_NAME: job_name})
    )


def wait_archive(
    client: Client, namespace: str, job_name: str, count: int = 1, timeout: float = 60
) -> list[ConfigMap]:
    deadline = time.monotonic() + timeout
    found: list[ConfigMap] = []
    while time.monotonic() < deadline:
        found = archives(client, namespace, job_name)
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(
        f"no archive of Job {namespace}/{job_name} after {timeout:.0f}s (found {len(found)})"
    )


def logs_of(cm: ConfigMap) -> str:
    """The archived logs as text, decompressing binaryData when they were compressed."""
    if cm.binaryData and names.KEY_LOGS_GZ in cm.binaryData:
        return gzip.decompress(base64.b64decode(cm.binaryData[names.KEY_LOGS_GZ])).decode()
    return str((cm.data or {}).get(names.KEY_LOGS, ""))


def result_of(cm: ConfigMap) -> dict[str, Any]:
    return dict(json.loads((cm.data or {})[names.KEY_RESULT]))


def processing_events(client: Client, namespace: str, job_name: str) -> list[Event]:
    return [
        e
        for e in client.list(Event, namespace=namespace)
        if e.reason == names.REASON and e.involvedObject.name == job_name and e.involvedObject.kind == "Job"
    ]


def job_or_none(client: Client, namespace: str, name: str) -> Job | None:
    try:
        return client.get(Job, name, namespace=namespace)
    except ApiError as e:
        if e.status.code == 404:
            return None
        raise


def wait_gone(client: Client, namespace: str, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = job_or_none(client, namespace, name)
        if found is None or found.metadata.deletionTimestamp:
            return
        time.sleep(0.2)
    raise AssertionError(f"Job {namespace}/{name} still there after {timeout:.0f}s")
