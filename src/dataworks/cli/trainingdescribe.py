"""`dataworks describe tj/NAME`: one TrainingJob in full (edge layer).

State and workers, progress and metrics, the latest checkpoint, the MLflow run,
the gang restarts, the conditions and the Events, as `kubectl describe` would
group them; `-o json|yaml` gives the status and the Events as data.
"""

from __future__ import annotations

import argparse
from typing import Any

from dataworks.api import trainingjob as api
from dataworks.cli import kindruns
from dataworks.cli.context import Cluster


def lines(obj: dict[str, Any]) -> list[str]:
    """The human-readable summary of one TrainingJob."""
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    meta = obj.get("metadata") or {}
    out = [
        f"Name:        {meta.get('namespace', '')}/{meta.get('name', '')}",
        f"State:       {st.get('state', 'Created')}  {st.get('message') or ''}".rstrip(),
        f"Workers:     {st.get('ready') or '0/' + str(spec.get('numWorkers', 1))} ready, "
        f"{spec.get('gpusPerWorker', 1)} GPU(s) each; attempt {st.get('attempt', 1)}, "
        f"{st.get('restartCount', 0)} counted restart(s) of {spec.get('backoffLimit', 3)}",
    ]
    if st.get("currentEpoch") is not None:
        metrics = ", ".join(f"{k} {v:g}" for k, v in sorted((st.get("metrics") or {}).items()))
        out.append(
            f"Progress:    epoch {st['currentEpoch']} of {st.get('totalEpochs', '?')} "
            f"({st.get('progress') or '?'}){'; ' + metrics if metrics else ''}"
        )
    if st.get("estimatedCompletion") and st.get("state") == "Running":
        out.append(f"Estimated:   done at {st['estimatedCompletion']}")
    saved = st.get("lastCheckpoint")
    if saved:
        out.append(f"Checkpoint:  epoch {saved.get('epoch')} step {saved.get('step')} at {saved.get('path')}")
    tracking = st.get("tracking") or {}
    if tracking.get("mlflowRunId"):
        out.append(f"MLflow run:  {tracking['mlflowRunId']}  {tracking.get('mlflowRunUrl') or ''}".rstrip())
    for r in st.get("restarts") or []:
        counted = "" if r.get("counted", True) else " (not counted)"
        out.append(
            f"Restart:     attempt {r.get('attempt')} at {r.get('time')}: {r.get('cause')}, "
            f"worker {r.get('worker')}, exit code {r.get('exitCode')}{counted}"
        )
    for c in st.get("conditions") or []:
        out.append(f"Condition:   {c.get('type')}={c.get('status')}  {c.get('reason') or ''}".rstrip())
    return out


def describe(cluster: Cluster, name: str, args: argparse.Namespace) -> int:
    return kindruns.describe(cluster, name, args, api.INFO, lines)
