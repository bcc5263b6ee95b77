"""One reconcile of a labelled Job: archive, one Event, annotate, delete a successful Job."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from dataworks.api import jobhandler as names
from dataworks.core.jobhandler import archive, planning
from dataworks.core.jobhandler.capture import LogSource
from dataworks.core.jobhandler.logbuffer import LogBuffer

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SETTINGS = planning.Settings(budget=950_000)


def job(*conditions: str, annotated: str | None = None, owner: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "etl",
        "namespace": "ns",
        "uid": "uid-1",
        "labels": {names.ENABLED: "true"},
    }
    if annotated:
        meta["annotations"] = {names.STATUS: annotated}
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": owner, "kind": "X", "name": "o", "uid": "o1", "controller": True}
        ]
    conds = [{"type": c, "status": "True", "lastTransitionTime": "2026-12-01T11:59:59Z"} for c in conditions]
    return {"metadata": meta, "status": {"conditions": conds}}


def pod(phase: str) -> dict[str, Any]:
    return {"metadata": {"name": "etl-x", "uid": "p1"}, "status": {"phase": phase}}


def cm(name: str, uid: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {names.JOB_UID: uid}}}


def logs(text: bytes = b"hello\n") -> archive.Logs:
    src = LogSource("etl-x", "ns", "p1", "main", 0, False, False)
    buf = LogBuffer(1 << 20)
    buf.feed(text)
    return archive.Logs(
        sources={src.key: src}, captured={src.key: buf.captured()}, pods={"p1": pod("Succeeded")}
    )


@pytest.mark.parametrize(
    ("the_job", "archives", "pods", "create", "event", "patch", "delete"),
    [
        pytest.param(job(), [], [pod("Running")], None, None, None, False, id="running-nothing"),
        pytest.param(
            job("Complete"), [], [pod("Succeeded")], "etl-results", "Normal", "completed", True, id="complete"
        ),
        pytest.param(
            job("Failed"), [], [pod("Failed")], "etl-results", "Warning", "failed", False, id="failed-kept"
        ),
        pytest.param(
            job("SuccessCriteriaMet"),
            [],
            [pod("Running")],
            None,
            None,
            None,
            False,
            id="early-signal-waits-for-pods",
        ),
        pytest.param(
            job("FailureTarget"),
            [],
            [pod("Failed")],
            "etl-results",
            "Warning",
            "failed",
            False,
            id="early-signal-pods-done",
        ),
        pytest.param(
            job("Complete"),
            [cm("etl-results", "uid-1")],
            [],
            None,
            "Normal",
            "completed",
            True,
            id="archived-not-annotated",
        ),
        pytest.param(
            job("Complete", annotated="completed"),
            [cm("etl-results", "uid-1")],
            [],
            None,
            None,
            None,
            True,
            id="annotated-still-there-delete-again",
        ),
        pytest.param(
            job("Failed", annotated="failed"),
            [cm("etl-results", "uid-1")],
            [],
            None,
            None,
            None,
            False,
            id="failed-done",
        ),
        pytest.param(
            job("Complete"),
            [cm("etl-results", "old-uid")],
            [],
            "etl-results-uid-1",
            "Normal",
            "completed",
            True,
            id="name-taken-by-an-earlier-run",
        ),
        pytest.param(
            job("Complete", owner="dataworks.io/v1"),
            [],
            [],
            "etl-results",
            "Normal",
            "completed",
            False,
            id="a-dataworks-step-job-is-left-to-its-owner",
        ),
        pytest.param(
            job("Complete", owner="batch/v1"),
            [],
            [],
            "etl-results",
            "Normal",
            "completed",
            True,
            id="a-cronjobs-job-goes",
        ),
    ],
)
def test_plan(  # noqa: PLR0917 (one parameter per column of the table)
    the_job: dict[str, Any],
    archives: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    create: str | None,
    event: str | None,
    patch: str | None,
    delete: bool,
) -> None:
    got = planning.plan(the_job, archives, pods, logs(), settings=SETTINGS, now=NOW).actions
    assert [m["metadata"]["name"] for m in got.create] == ([create] if create else [])
    assert [e.type for e in got.events] == ([event] if event else [])
    assert all(e.once and e.reason == names.REASON for e in got.events)
    expected_patch = (
        [("Job", "etl", {"metadata": {"uid": "uid-1", "annotations": {names.STATUS: patch}}})]
        if patch
        else []
    )
    assert got.patch == expected_patch
    assert got.delete_self is delete


def test_the_archive_has_the_seeds_keys_and_result_json() -> None:
    got = planning.plan(job("Complete"), [], [], logs(b"42 rows\n"), settings=SETTINGS, now=NOW)
    (manifest,) = got.actions.create
    assert manifest["metadata"]["labels"] == {
        names.CREATED: "true",
        names.JOB_NAME: "etl",
        names.JOB_UID: "uid-1",
    }
    assert "ownerReferences" not in manifest["metadata"]
    data = manifest["data"]
    assert data[names.KEY_JOB] == "etl"
    assert data[names.KEY_STATUS] == "completed"
    assert data[names.KEY_COMPLETION] == "2026-12-01T11:59:59Z"
    assert data[names.KEY_LOGS] == "==> pod/etl-x/main <==\n42 rows\n"
    result = json.loads(data[names.KEY_RESULT])
    assert result["job"]["uid"] == "uid-1"
    assert result["logs"]["sections"][0]["bytes"] == 8
    assert got.fitted is not None


def test_no_logs_says_why() -> None:
    got = planning.plan(job("Complete"), [], [], archive.Logs(), settings=SETTINGS, now=NOW)
    data = got.actions.create[0]["data"]
    assert data[names.KEY_AVAILABLE] == "false"
    assert "deleted" in json.loads(data[names.KEY_RESULT])["logs"]["reason"]


@pytest.mark.parametrize(
    ("the_job", "expected"),
    [
        pytest.param(job(), False, id="unannotated"),
        pytest.param(job(annotated="failed"), True, id="failed"),
        pytest.param(job(annotated="completed"), False, id="completed-not-yet-deleted"),
        pytest.param(job(annotated="completed", owner="dataworks.io/v1"), True, id="completed-owned"),
    ],
)
def test_handled(the_job: dict[str, Any], expected: bool) -> None:
    assert planning.handled(the_job) is expected


@pytest.mark.parametrize(
    ("the_job", "archives", "create"),
    [
        pytest.param(job("Complete"), [], "etl-results", id="finished-not-archived"),
        pytest.param(job("Complete"), [cm("etl-results", "uid-1")], None, id="already-archived"),
        pytest.param(job(), [], None, id="deleted-while-running"),
        pytest.param(job("Failed"), [cm("etl-results", "old")], "etl-results-uid-1", id="failed-name-taken"),
    ],
)
def test_a_job_deleted_by_someone_else_is_archived_from_what_was_read(
    the_job: dict[str, Any], archives: list[dict[str, Any]], create: str | None
) -> None:
    got = planning.plan_gone(the_job, archives, logs(b"kept\n"), settings=SETTINGS, now=NOW).actions
    assert [m["metadata"]["name"] for m in got.create] == ([create] if create else [])
    assert len(got.events) == (1 if create else 0)
    assert got.patch == []
    assert not got.delete_self
    if create:
        assert "kept" in got.create[0]["data"][names.KEY_LOGS]
