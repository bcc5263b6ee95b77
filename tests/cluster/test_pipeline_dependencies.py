"""pipelineDependencies on the real control plane: a pipeline waits Pending, saying which
dependency and why, and starts when the dependency completes (a watch wakes it: no polling);
one whose dependency is too old starts after a new run of it; a cycle is reported on each."""

from __future__ import annotations

import time
from typing import Any

import pytest
from lightkube import Client
from lightkube.resources.core_v1 import Event

from dataworks.kube.resources import Pipeline
from tests.cluster import helpers
from tests.cluster.pipelines import create, manifest, status, step, wait_phase

pytestmark = pytest.mark.usefixtures("operator")


def dependent(name: str, *deps: dict[str, Any]) -> dict[str, Any]:
    return {
        **manifest(name, [step("report")]),
        "spec": {"pipelineDependencies": list(deps), "steps": [step("report")]},
    }


def ready_condition(st: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in st.get("conditions") or [] if c["type"] == "DependenciesReady")


def wait_reason(client: Client, namespace: str, name: str, reason: str) -> dict[str, Any]:
    got = helpers.wait_for(
        client,
        Pipeline,
        name,
        namespace,
        lambda p: any(
            c["type"] == "DependenciesReady" and c.get("reason") == reason
            for c in status(p).get("conditions") or []
        ),
        timeout=30,
        what=f"DependenciesReady reason {reason}",
    )
    return status(got)


def test_a_pipeline_waits_for_a_missing_dependency_and_starts_when_it_completes(
    client: Client, namespace: str
) -> None:
    create(client, namespace, dependent("report", {"name": "orders"}))
    st = wait_reason(client, namespace, "report", "DependencyMissing")
    assert st["phase"] == "Pending"
    assert st["message"] == "waiting for pipelineDependencies: pipeline orders does not exist"
    create(client, namespace, manifest("orders", [step("load", fate={"duration": "2s"})]))
    st = wait_reason(client, namespace, "report", "DependencyNotCompleted")
    assert ready_condition(st)["message"] in {"pipeline orders is Running", "pipeline orders is Pending"}
    orders = wait_phase(client, namespace, "orders", "Completed", timeout=60)
    st = wait_phase(client, namespace, "report", "Completed", timeout=60)
    assert st["startTime"] >= orders["completionTime"]
    assert ready_condition(st)["status"] == "True"
    waited = [
        e.message for e in client.list(Event, namespace=namespace) if e.reason == "WaitingForDependencies"
    ]
    assert "pipeline orders does not exist" in waited


def test_a_dependency_too_old_is_satisfied_by_a_new_run(client: Client, namespace: str) -> None:
    create(client, namespace, manifest("orders", [step("load")]))
    wait_phase(client, namespace, "orders", "Completed", timeout=60)
    time.sleep(2.5)  # older than the 1.8 s allowed below
    create(client, namespace, dependent("report", {"name": "orders", "max_age_hours": 0.0005}))
    st = wait_reason(client, namespace, "report", "DependencyTooOld")
    assert st["phase"] == "Pending"
    assert "more than maxAgeHours 0.0005" in st["message"], st["message"]
    client.delete(Pipeline, "orders", namespace=namespace)
    deadline = time.monotonic() + 30
    while any(p.metadata.name == "orders" for p in client.list(Pipeline, namespace=namespace)):
        assert time.monotonic() < deadline, "the old run of orders was not deleted"
        time.sleep(0.2)
    create(client, namespace, manifest("orders", [step("load")]))  # the new run
    st = wait_phase(client, namespace, "report", "Completed", timeout=60)
    assert ready_condition(st)["reason"] == "DependenciesCompleted"


def test_a_cycle_between_pipelines_is_reported_on_each(client: Client, namespace: str) -> None:
    create(client, namespace, dependent("a", {"name": "b"}))
    create(client, namespace, dependent("b", {"name": "a"}))
    for name, loop in (("a", "a -> b -> a"), ("b", "b -> a -> b")):
        st = wait_reason(client, namespace, name, "DependencyCycle")
        assert st["phase"] == "Pending"
        assert ready_condition(st)["message"].startswith(f"pipelines {loop} depend on each other")
