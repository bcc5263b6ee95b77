"""Which container instances' logs are due: each once, as soon as it has terminated."""

from __future__ import annotations

from typing import Any

import pytest

from dataworks.core.jobhandler.capture import SourceKey, due, running


def pod(
    *containers: dict[str, Any],
    init: tuple[dict[str, Any], ...] = (),
    phase: str = "Running",
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p", "namespace": "ns", "uid": "u1"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "status": {
            "phase": phase,
            "containerStatuses": list(containers),
            "initContainerStatuses": list(init),
        },
    }


def cs(name: str, state: str, restarts: int = 0, last: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "restartCount": restarts, "state": {state: {}}}
    if state == "terminated":
        out["state"] = {"terminated": {"exitCode": 0}}
    if last:
        out["lastState"] = {"terminated": {"exitCode": 1}}
    return out


@pytest.mark.parametrize(
    ("pods", "done", "expected"),
    [
        pytest.param([pod(cs("main", "running"))], set(), [], id="running-is-not-due"),
        pytest.param([pod(cs("main", "waiting"))], set(), [], id="waiting-is-not-due"),
        pytest.param([pod(cs("main", "terminated"))], set(), [("main", 0, False, False)], id="terminated"),
        pytest.param([pod(cs("main", "terminated"))], {("u1", "main", 0)}, [], id="read-once"),
        pytest.param(
            [pod(cs("main", "running", restarts=1, last=True))],
            set(),
            [("main", 0, True, False)],
            id="restarted-previous-run",
        ),
        pytest.param(
            [pod(cs("main", "terminated", restarts=2, last=True))],
            set(),
            [("main", 2, False, False), ("main", 1, True, False)],
            id="ended-after-restarts-current-and-previous",
        ),
        pytest.param(
            [pod(cs("main", "running"), init=(cs("prep", "terminated"),))],
            set(),
            [("prep", 0, False, True)],
            id="init-container-read-as-it-ends",
        ),
        pytest.param(
            [pod(cs("a", "terminated"), cs("b", "running"))],
            set(),
            [("a", 0, False, False)],
            id="one-of-two-containers",
        ),
    ],
)
def test_due(
    pods: list[dict[str, Any]], done: set[SourceKey], expected: list[tuple[str, int, bool, bool]]
) -> None:
    got = [(s.container, s.instance, s.previous, s.init) for s in due(pods, done)]
    assert got == expected


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        pytest.param([], False, id="no-pods"),
        pytest.param([pod(phase="Succeeded")], False, id="succeeded"),
        pytest.param([pod(phase="Failed"), pod(phase="Running")], True, id="one-still-running"),
        pytest.param([pod(phase="Running", deleting=True)], False, id="being-deleted"),
        pytest.param([pod(phase="Pending")], True, id="pending"),
    ],
)
def test_running(pods: list[dict[str, Any]], expected: bool) -> None:
    assert running(pods) is expected
