"""Failure notifications reach real HTTP receivers on loopback: once per failure, with a cooldown,
and a failing receiver slows neither pipelines nor the other receivers."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Secret

from tests.cluster.conftest import Cluster, Operator
from tests.cluster.pipelines import create, manifest, patch_spec, step, wait_phase
from tests.cluster.webhooks import Receiver, configured


@pytest.fixture
def receivers(
    operator: Operator, cluster: Cluster, namespace: str, tmp_path: Path
) -> Iterator[dict[str, Receiver]]:
    """Three receivers, their URLs in a Secret, and an operator configured to notify them."""
    got = {"team": Receiver(), "pager": Receiver(), "broken": Receiver(broken=True)}
    data = {f"{name}-url": base64.b64encode(r.url.encode()).decode() for name, r in got.items()}
    cluster.client.create(
        Secret(metadata=ObjectMeta(name="dataworks-notifications"), data=data), namespace=namespace
    )
    config = {
        "notificationsNamespace": namespace,
        "notifications": [
            {
                "name": "team",
                "urlSecret": {"name": "dataworks-notifications", "key": "team-url"},
                "cooldownSeconds": 600,
            },
            {
                "name": "pager",
                "format": "slack",
                "minSeverity": "critical",
                "cooldownSeconds": 0,
                "urlSecret": {"name": "dataworks-notifications", "key": "pager-url"},
            },
            {"name": "broken", "urlSecret": {"name": "dataworks-notifications", "key": "broken-url"}},
        ],
    }
    try:
        with configured(operator, cluster, config, tmp_path):
            yield got
    finally:
        for r in got.values():
            r.close()


def wait_until(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_one_notification_per_failure_with_a_cooldown(
    receivers: dict[str, Receiver], cluster: Cluster, namespace: str
) -> None:
    team, pager = receivers["team"], receivers["pager"]
    oom = {
        "outcome": "fail",
        "exit-code": "137",
        "reason": "OOMKilled",
        "message": "error: step 'big': out of memory reading events",
    }
    started = time.monotonic()
    create(cluster.client, namespace, manifest("nightly", [step("big", fate=oom, retry={"limit": 0})]))
    # while the broken receiver keeps failing (500 after 1 s, retried), other pipelines run as usual
    create(cluster.client, namespace, manifest("healthy", [step("a"), step("b", ["a"]), step("c", ["b"])]))
    wait_phase(cluster.client, namespace, "nightly", "Failed")
    wait_until(lambda: team.bodies and pager.bodies)
    assert len(team.bodies) == 1
    (body,) = team.bodies
    assert {k: body[k] for k in ("severity", "namespace", "pipeline", "step", "reason")} == {
        "severity": "critical",
        "namespace": namespace,
        "pipeline": "nightly",
        "step": "big",
        "reason": "OOMKilled",
    }
    assert "step 'big': out of memory reading events" in body["logExcerpt"]
    assert (
        body["hint"] == f"dataworks describe nightly -n {namespace}; "
        f"dataworks logs nightly -n {namespace} --step big"
    )
    assert pager.bodies[0]["text"].startswith(
        f":red_circle: *{namespace}/nightly*: step big failed (OOMKilled)"
    )
    wait_phase(cluster.client, namespace, "healthy", "Completed")
    assert time.monotonic() - started < 20  # three 300 ms steps; the broken receiver's retries did not matter
    # the same pipeline fails again within the cooldown: the team hears nothing more
    patch_spec(cluster.client, namespace, "nightly", {"retry": {"id": "again"}})
    wait_until(lambda: len(pager.bodies) == 2)
    assert len(pager.bodies) == 2  # the pager has no cooldown
    time.sleep(1)
    assert len(team.bodies) == 1
    # a step that fails on its own while its pipeline goes on is a warning: the team hears, the pager does not
    warn = {"outcome": "fail"}
    create(
        cluster.client,
        namespace,
        manifest(
            "partial", [step("x", fate=warn, retry={"limit": 0}, onFailure="continue"), step("y", ["x"])]
        ),
    )
    wait_phase(cluster.client, namespace, "partial", "Completed")
    wait_until(lambda: len(team.bodies) == 2)
    assert [(b["pipeline"], b["severity"]) for b in team.bodies] == [
        ("nightly", "critical"),
        ("partial", "warning"),
    ]
    assert len(pager.bodies) == 2
