"""The connections Secret check of `pipeline-ctl run`, as a pure function of what the cluster holds."""

from __future__ import annotations

from typing import Any

from dataworks.cli import preflight
from dataworks.core.pipelines import validation


def validated(**spec: Any) -> Any:
    steps = [
        {"name": "pull", "type": "fetch", "config": {"source": "orders-db", "query": "SELECT 1"}},
        {
            "name": "shape",
            "type": "transform",
            "config": {"sql": "SELECT 1", "engine": "postgres", "source": "orders-db"},
        },
        {"name": "run", "type": "container", "image": "busybox", "config": {"source": "not-a-connection"}},
    ]
    result, errors = validation.validate_raw({"steps": steps, **spec})
    assert errors == []
    return result


def test_each_connection_is_looked_for_under_both_spellings() -> None:
    v = validated(connectionsSecret="conns")
    assert preflight.needed(v) == {"orders-db": ["pull", "shape"]}  # a container step resolves nothing
    assert preflight.check_connections("p", "ns", v, {"orders-db"}).errors == []
    assert preflight.check_connections("p", "ns", v, {"DATAWORKS_CONN_ORDERS_DB"}).errors == []
    (error,) = preflight.check_connections("p", "ns", v, {"other"}).errors
    assert (
        "step pull, shape: connection 'orders-db' is not a key of Secret 'conns' (its keys: other)" in error
    )


def test_a_missing_secret_is_an_error_and_an_unreadable_one_a_warning() -> None:
    v = validated(connectionsSecret="conns")
    (error,) = preflight.check_connections("p", "ns", v, None).errors
    assert "Secret 'conns' not found in namespace ns" in error
    unreadable = preflight.check_connections("p", "ns", v, None, readable=False)
    assert unreadable.errors == []
    assert unreadable.warnings == [
        "pipeline p: cannot check spec.connectionsSecret 'conns': you may not read Secrets in namespace ns"
    ]


def test_no_secret_at_all_warns_that_a_cluster_will_not_find_them() -> None:
    found = preflight.check_connections("p", "ns", validated(), None)
    assert found.errors == []
    assert "spec.connectionsSecret is not set" in found.warnings[0]


def test_a_secret_no_step_names_must_still_exist_for_built_in_steps() -> None:
    steps = [{"name": "t", "type": "transform", "config": {"sql": "SELECT 1"}}]
    built_in, errors = validation.validate_raw({"steps": steps, "connectionsSecret": "conns"})
    assert errors == []
    (error,) = preflight.check_connections("p", "ns", built_in, None).errors
    assert "Secret 'conns' not found" in error
    assert "--from-literal=NAME=URI" in error
    only_containers, _ = validation.validate_raw(
        {"steps": [{"name": "c", "type": "container", "image": "busybox"}], "connectionsSecret": "conns"}
    )
    assert preflight.check_connections("p", "ns", only_containers, None).errors == []  # never mounted
