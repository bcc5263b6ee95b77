"""Pins a step's outputs (core/pipelines/outputs.py and kit.jobs.pod_success_messages): the
succeeded pods' termination messages by completion index; a JSON object is the outputs, other
text is kept as `message`; a fan-out sums its workers' counts, keeps the longest duration and
worker 0's other values."""

from __future__ import annotations

from typing import Any

import pytest

from dataworks.core.kit.jobs import pod_success_messages
from dataworks.core.pipelines import outputs


def pod(index: int, phase: str, code: int, message: str | None) -> dict[str, Any]:
    term: dict[str, Any] = {"exitCode": code}
    if message is not None:
        term["message"] = message
    return {
        "metadata": {"annotations": {"batch.kubernetes.io/job-completion-index": str(index)}},
        "status": {"phase": phase, "containerStatuses": [{"name": "step", "state": {"terminated": term}}]},
    }


def test_the_succeeded_pods_speak_in_index_order() -> None:
    pods = [
        pod(2, "Succeeded", 0, "c"),
        pod(0, "Succeeded", 0, "a"),
        pod(1, "Failed", 1, "boom"),
        pod(1, "Succeeded", 0, None),
    ]
    assert pod_success_messages(pods) == ("a", "", "c")


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        pytest.param((), {}, id="no-pod"),
        pytest.param(("",), {}, id="no-message"),
        pytest.param(('{"result": "passed", "rows": 3}',), {"result": "passed", "rows": 3}, id="json"),
        pytest.param(("done: 3 rows\n",), {"message": "done: 3 rows"}, id="text"),
        pytest.param(("[1, 2]",), {"message": "[1, 2]"}, id="json-but-not-an-object"),
        pytest.param(
            (
                '{"rows": 10, "rowsIn": 10, "bytes": 100, "files": 1, "durationSeconds": 1.5, "result": "a"}',
                '{"rows": 5, "rowsIn": 6, "bytes": 50, "files": 2, "durationSeconds": 2.5, "result": "b"}',
            ),
            {"rows": 15, "rowsIn": 16, "bytes": 150, "files": 3, "durationSeconds": 2.5, "result": "a"},
            id="fan-out",
        ),
        pytest.param(
            ('{"rows": 10}', "not json"),
            {"rows": 10},
            id="fan-out-sums-only-what-every-worker-reported",
        ),
    ],
)
def test_combine(messages: tuple[str, ...], expected: dict[str, Any]) -> None:
    assert outputs.combine(messages) == expected
