"""What the StreamingJob cluster tests share: waiting on a status, and reading the Events."""

from __future__ import annotations

from typing import Any

from lightkube import Client
from lightkube.resources.core_v1 import Event

from dataworks.api import streamingjob
from dataworks.kube import resources
from tests.cluster.helpers import wait_for

StreamingJob = resources.of(streamingjob.INFO)


def until(
    client: Client, name: str, namespace: str, ok: Any, what: str, *, timeout: float = 30
) -> dict[str, Any]:
    """Wait until `ok(status)` holds; the status."""
    got = wait_for(
        client,
        StreamingJob,
        name,
        namespace,
        lambda o: bool(ok(o.to_dict().get("status") or {})),
        timeout=timeout,
        what=what,
    )
    return dict(got.to_dict()["status"])


def reasons(client: Client, namespace: str, name: str) -> list[str]:
    return [e.reason for e in client.list(Event, namespace=namespace) if e.involvedObject.name == name]
