"""Progress lines for training scripts (standard library only): print them, and parse them back.

Rank 0 prints one line per report, ``DATAWORKS_PROGRESS {json}``, where the
JSON is compact with sorted keys: ``epoch``, ``totalEpochs``, ``step`` (when
given), ``metrics`` (name to float), and when known ``checkpoint`` (the latest
one saved) and ``mlflow`` (the tracked run's ``runId`` and ``url``). The operator reads rank 0's log and
parses each line with ``parse_progress``; any other line is ignored.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, NotRequired, TypedDict, TypeGuard

PREFIX = "DATAWORKS_PROGRESS"


class Saved(TypedDict):
    """The checkpoint a progress line names: the latest one written."""

    epoch: int
    step: int
    path: str
    time: float  # seconds since the epoch


class Run(TypedDict):
    """The MLflow run a progress line names."""

    runId: str
    url: str


class Progress(TypedDict):
    """One parsed progress line."""

    epoch: int
    totalEpochs: int
    step: NotRequired[int]
    metrics: dict[str, float]
    checkpoint: NotRequired[Saved]
    mlflow: NotRequired[Run]


def report(
    epoch: int,
    total_epochs: int,
    step: int | None = None,
    *,
    checkpoint: Any = None,
    tracking: Any = None,
    **metrics: float,
) -> None:
    """Print one progress line to stdout, flushed, in a single write.

    A metric that is NaN or infinite (a diverging loss) is written as ``null``,
    which keeps the line valid JSON; ``parse_progress`` leaves it out.
    ``checkpoint`` (a ``Checkpoint`` that ``save`` returned) tells the operator
    the latest one (``status.lastCheckpoint``); ``tracking`` (a ``Tracker``)
    the MLflow run (``status.tracking``).
    """
    body: dict[str, Any] = {
        "epoch": int(epoch),
        "totalEpochs": int(total_epochs),
        "metrics": {name: _finite(value) for name, value in metrics.items()},
    }
    if step is not None:
        body["step"] = int(step)
    if checkpoint is not None:
        body["checkpoint"] = {
            "epoch": int(checkpoint.epoch),
            "step": int(checkpoint.step),
            "path": str(checkpoint.path),
            "time": float(checkpoint.time),
        }
    run = tracking.fields() if tracking is not None else {}
    if run:
        body["mlflow"] = run
    line = json.dumps(body, separators=(",", ":"), sort_keys=True, allow_nan=False)
    sys.stdout.write(f"{PREFIX} {line}\n")
    sys.stdout.flush()


def parse_progress(line: str) -> Progress | None:
    """The progress in a ``DATAWORKS_PROGRESS {json}`` line, or None for any other or malformed line.

    Metrics come back as floats, without those written as ``null``; unknown keys
    are ignored.
    """
    text = line.strip()
    if not text.startswith(PREFIX + " "):
        return None
    try:
        body = json.loads(text[len(PREFIX) + 1 :], parse_constant=_reject)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    epoch, total, step, metrics = (body.get(k) for k in ("epoch", "totalEpochs", "step", "metrics"))
    if not (_is_int(epoch) and _is_int(total) and (step is None or _is_int(step))):
        return None
    if not isinstance(metrics, dict) or not all(v is None or _is_number(v) for v in metrics.values()):
        return None
    parsed: Progress = {
        "epoch": epoch,
        "totalEpochs": total,
        "metrics": {str(k): float(v) for k, v in metrics.items() if v is not None},
    }
    if step is not None:
        parsed["step"] = step
    saved = body.get("checkpoint")
    if isinstance(saved, dict):
        e, st, path, when = (saved.get(k) for k in ("epoch", "step", "path", "time"))
        if _is_int(e) and _is_int(st) and isinstance(path, str) and _is_number(when):
            parsed["checkpoint"] = {"epoch": e, "step": st, "path": path, "time": float(when)}  # type: ignore[arg-type]
    run = body.get("mlflow")
    if isinstance(run, dict) and isinstance(run.get("runId"), str) and isinstance(run.get("url", ""), str):
        parsed["mlflow"] = {"runId": run["runId"], "url": run.get("url", "")}
    return parsed


def _finite(value: float) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _reject(constant: str) -> float:
    raise ValueError(f"not JSON: {constant}")
