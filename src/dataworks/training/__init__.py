"""Helpers that training scripts import: atomic checkpoints, progress lines and MLflow tracking.

A TrainingJob's workers run user code, not the operator's. This package is the
small contract between them: ``checkpoints`` saves and finds checkpoints that a
crash or a SIGTERM never leaves half-written, ``progress`` prints the
``DATAWORKS_PROGRESS`` lines the operator reads from rank 0's log, and
``tracking`` continues one MLflow run across attempts. It needs only the
standard library, unless a run is tracked (then `mlflow-skinny`).
"""

from dataworks.training.checkpoints import (
    ATTEMPT_ENV,
    CHECKPOINT_DIR_ENV,
    Checkpoint,
    attempt,
    checkpoint_dir,
    latest,
    on_sigterm,
    save,
    save_on_sigterm,
)
from dataworks.training.progress import PREFIX, Progress, parse_progress, report
from dataworks.training.tracking import Tracker

__all__ = [
    "ATTEMPT_ENV",
    "CHECKPOINT_DIR_ENV",
    "PREFIX",
    "Checkpoint",
    "Progress",
    "Tracker",
    "attempt",
    "checkpoint_dir",
    "latest",
    "on_sigterm",
    "parse_progress",
    "report",
    "save",
    "save_on_sigterm",
]
