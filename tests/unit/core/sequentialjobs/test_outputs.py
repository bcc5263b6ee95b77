"""Pins step outputs (core/sequentialjobs/outputs.py): the termination message of the pod that ended
last speaks for the step (the succeeded pod of a completed step, the last failed one of a failed
step), kept to 4 KiB without cutting a character; a failed step also gets its pods' reason."""

from __future__ import annotations

import pytest

from dataworks.core.sequentialjobs import outputs
from dataworks.core.sequentialjobs.work import PodFacts
from tests.builders.jobs import PodBuilder, make_pod

EARLY, LATE = "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"


@pytest.mark.parametrize(
    ("pods", "succeeded", "facts"),
    [
        pytest.param([], True, PodFacts(), id="no-pods"),
        pytest.param(
            [make_pod().exited(0, "Completed", message="rows=3")],
            True,
            PodFacts(output="rows=3"),
            id="succeeded",
        ),
        pytest.param([make_pod().exited(0, "Completed")], True, PodFacts(), id="no-message"),
        pytest.param(
            [
                make_pod("p1").exited(1, message="boom", at=EARLY),
                make_pod("p2").exited(0, "Completed", message="rows=3", at=LATE),
            ],
            True,
            PodFacts(output="rows=3"),
            id="retried-then-succeeded",
        ),
        pytest.param(
            [
                make_pod("p1").exited(1, message="first", at=EARLY),
                make_pod("p2").exited(137, "OOMKilled", message="second", at=LATE),
            ],
            False,
            PodFacts(output="second", reason="OOMKilled", message="second"),
            id="failed-twice",
        ),
        pytest.param(
            [make_pod().exited(2, message="load\nerror: duplicate key")],
            False,
            PodFacts(output="load\nerror: duplicate key", message="duplicate key"),
            id="failed-with-error-line",
        ),
    ],
)
def test_facts_of(pods: list[PodBuilder], succeeded: bool, facts: PodFacts) -> None:
    assert outputs.facts_of([p.build() for p in pods], succeeded=succeeded) == facts


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 4096, "short"),
        ("x" * 5000, 4096, "x" * 4096),
        ("é" * 3, 5, "éé"),  # two bytes each: the third would be cut in two
        ("", 10, ""),
    ],
)
def test_cap(text: str, limit: int, expected: str) -> None:
    assert outputs.cap(text, limit) == expected
    assert len(outputs.cap(text, limit).encode()) <= limit
