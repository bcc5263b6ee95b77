"""Rank 0's progress lines in the status, and Stalled after a silence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dataworks.api import trainingjob as api
from dataworks.core.kit import conditions
from dataworks.core.trainingjobs.progress import apply, last_progress
from dataworks.training.progress import Progress

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def line(epoch: int, loss: float) -> Progress:
    return {"epoch": epoch, "totalEpochs": 4, "metrics": {"loss": loss}}


@pytest.mark.parametrize(
    ("tail", "epoch"),
    [
        pytest.param("", None, id="empty"),
        pytest.param("hello\nworld\n", None, id="no-progress-lines"),
        pytest.param(
            'DATAWORKS_PROGRESS {"epoch":1,"metrics":{},"totalEpochs":4}\n'
            'DATAWORKS_PROGRESS {"epoch":2,"metrics":{},"totalEpochs":4}\nnoise\n',
            2,
            id="the-last-one-wins",
        ),
        pytest.param(
            'DATAWORKS_PROGRESS {"epoch":1,"metrics":{},"totalEpochs":4}\nDATAWORKS_PROGRESS {bad\n',
            1,
            id="a-torn-line-is-skipped",
        ),
    ],
)
def test_last_progress(tail: str, epoch: int | None) -> None:
    found = last_progress(tail)
    assert (found["epoch"] if found else None) == epoch


@pytest.mark.parametrize(
    ("steps", "progress", "stalled"),
    [
        pytest.param([(0, line(1, 0.9))], "25%", None, id="first-report"),
        pytest.param([(0, line(1, 0.9)), (5, line(2, 0.7))], "50%", None, id="moving"),
        pytest.param([(0, line(1, 0.9)), (700, line(1, 0.9))], "25%", "True", id="same-line-for-too-long"),
        pytest.param([(0, line(1, 0.9)), (700, None)], "25%", "True", id="silence-for-too-long"),
        pytest.param([(0, line(1, 0.9)), (700, None), (705, line(2, 0.8))], "50%", "False", id="moves-again"),
        pytest.param([(0, line(4, 0.1))], "100%", None, id="done"),
    ],
)
def test_apply(steps: list[tuple[int, Progress | None]], progress: str, stalled: str | None) -> None:
    st = api.TrainingJobStatus(start_time="2026-12-01T12:00:00Z")
    for at, found in steps:
        apply(st, found, 600, now=T0 + timedelta(seconds=at), generation=1)
    assert st.progress == progress
    cond = next((c for c in st.conditions if c.type == "Stalled"), None)
    assert (cond.status if cond else None) == stalled
    if stalled == "False":
        assert not conditions.is_true(st.conditions, "Stalled")


@pytest.mark.parametrize(
    ("seconds", "epoch", "eta"),
    [
        pytest.param(60, 1, "2026-12-01T12:04:00Z", id="one-of-four-after-a-minute"),
        pytest.param(120, 3, "2026-12-01T12:02:40Z", id="three-of-four"),
        pytest.param(120, 4, None, id="done-no-estimate"),
    ],
)
def test_the_estimated_completion_follows_the_pace(seconds: int, epoch: int, eta: str | None) -> None:
    st = api.TrainingJobStatus(start_time="2026-12-01T12:00:00Z")
    apply(st, line(epoch, 0.5), 600, now=T0 + timedelta(seconds=seconds), generation=1)
    assert st.estimated_completion == eta


def test_it_asks_to_look_again_within_the_freshness_target() -> None:
    st = api.TrainingJobStatus(start_time="2026-12-01T12:00:00Z")
    assert apply(st, None, 600, now=T0, generation=1) == T0 + timedelta(seconds=5)


def test_a_reported_checkpoint_becomes_last_checkpoint() -> None:
    st = api.TrainingJobStatus(start_time="2026-12-01T12:00:00Z")
    found: Progress = {
        "epoch": 3,
        "totalEpochs": 4,
        "metrics": {},
        "checkpoint": {
            "epoch": 2,
            "step": 0,
            "path": "/checkpoints/ckpt-000002-000000000",
            "time": 1796040000.0,
        },
    }
    apply(st, found, 600, now=T0, generation=1)
    assert st.last_checkpoint is not None
    assert (st.last_checkpoint.epoch, st.last_checkpoint.path) == (2, "/checkpoints/ckpt-000002-000000000")
    assert st.last_checkpoint.time is not None
    assert st.last_checkpoint.time.endswith("Z")


def test_a_reported_mlflow_run_becomes_the_status_tracking() -> None:
    text = (
        'DATAWORKS_PROGRESS {"epoch":1,"metrics":{"loss":0.5},'
        '"mlflow":{"runId":"abc123","url":"http://mlflow:5000/#/experiments/1/runs/abc123"},"totalEpochs":4}'
    )
    found = last_progress(text)
    assert found is not None
    st = api.TrainingJobStatus(start_time="2026-12-01T12:00:00Z")
    apply(st, found, 600, now=T0, generation=1)
    assert st.tracking == api.TrackingStatus(
        mlflow_run_id="abc123", mlflow_run_url="http://mlflow:5000/#/experiments/1/runs/abc123"
    )
    apply(st, line(2, 0.4), 600, now=T0, generation=1)  # a line without the run keeps it
    assert st.tracking is not None
    assert st.tracking.mlflow_run_id == "abc123"
