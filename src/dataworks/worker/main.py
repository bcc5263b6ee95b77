"""`dataworks-worker`, the container entrypoint (edge layer): run one step, or one fan-out worker.

    dataworks-worker --step-file /etc/dataworks/steps/<step>.json

The step file is the JSON the operator puts in the pipeline's ConfigMap (the
local executor writes the same file). The environment says where:
DATAWORKS_STORE (an fsspec URL), DATAWORKS_NAMESPACE, DATAWORKS_PIPELINE,
DATAWORKS_RUN, and for a fan-out WORKER_INDEX and TOTAL_WORKERS.

Exit codes: 0 done (one summary line on stdout, and the step's outputs as a JSON
object in the termination message), 1 the step failed, 2 the step
definition is invalid, 143 stopped by SIGTERM. Nothing is committed unless the
step succeeded.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from dataworks.api import defaults
from dataworks.core.pipelines.steps import check_config
from dataworks.worker.errors import StepFailed
from dataworks.worker.runtime import StepContext
from dataworks.worker.storing import Location, Store

# Each step type's module, imported only when that type runs: a worker starts faster.
RUNNERS = {
    "fetch": "dataworks.worker.steps.fetching",
    "transform": "dataworks.worker.steps.transforming",
    "fan-out": "dataworks.worker.steps.fanning",
    "quality-check": "dataworks.worker.steps.checking",
    "load": "dataworks.worker.steps.loading",
}


def runner(step_type: str) -> Callable[[StepContext], None]:
    fn: Callable[[StepContext], None] = importlib.import_module(RUNNERS[step_type]).run
    return fn


class Terminated(BaseException):
    """SIGTERM arrived: stop now, commit nothing."""


_terminating = threading.Event()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # DuckDB notices the signal too and fails its query with "interrupted";
    # the flag tells that failure apart from a real one.
    _terminating.set()
    raise Terminated


def _int_env(environ: dict[str, str], name: str, default: int) -> int:
    try:
        return int(environ.get(name, default))
    except ValueError as e:
        raise StepFailed(f"{name} must be a whole number, got {environ[name]!r}", exit_code=2) from e


def load_step(path: str) -> dict[str, Any]:
    try:
        step = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise StepFailed(f"cannot read the step file {path}: {e}", exit_code=2) from e
    if not isinstance(step, dict) or not {"name", "type"} <= step.keys():
        raise StepFailed(f"the step file {path} must be an object with name and type", exit_code=2)
    if step["type"] not in RUNNERS:
        raise StepFailed(
            f"step {step['name']!r}: type {step['type']!r} is not a built-in step "
            f"({', '.join(RUNNERS)}); container steps run their own image",
            exit_code=2,
        )
    problems = check_config(step["name"], step["type"], dict(step.get("config") or {}))
    if problems:
        raise StepFailed("; ".join(str(p) for p in problems), exit_code=2)
    return step


TERMINATION_LOG = "/dev/termination-log"


def termination_message(environ: dict[str, str], message: str) -> None:
    """Leave a message where Kubernetes puts it in the pod's status: the error of a failed step
    (the operator shows it), the outputs of a succeeded one (a JSON object)."""
    path = environ.get("DATAWORKS_TERMINATION_LOG", TERMINATION_LOG)
    try:
        with open(path, "w") as f:
            f.write(message[:4000])
    except OSError:
        pass  # not in a pod (or not writable): stderr has it anyway


def run(step: dict[str, Any], environ: dict[str, str]) -> int:
    """Run one step to its end; returns the exit code."""
    index = _int_env(environ, "WORKER_INDEX", 0)
    total = _int_env(environ, "TOTAL_WORKERS", int(step.get("parallelism") or 1))
    where = Location(
        namespace=environ.get("DATAWORKS_NAMESPACE", "default"),
        pipeline=environ.get("DATAWORKS_PIPELINE", "pipeline"),
        run=environ.get("DATAWORKS_RUN", "run"),
    )
    store = Store(environ.get("DATAWORKS_STORE", defaults.DEFAULT_ARTIFACT_STORE))
    ctx = StepContext(step, store=store, where=where, index=index, total=total, environ=environ)
    try:
        runner(step["type"])(ctx)
        ctx.summary.values.update(ctx.declared_values())
        ctx.commit()
    except BaseException as e:
        ctx.interrupt()
        ctx.abandon()
        if _terminating.is_set():
            print(f"step {ctx.name}: stopped by SIGTERM, nothing committed", file=sys.stderr, flush=True)
            return 143
        if isinstance(e, StepFailed):
            print(f"error: {e}", file=sys.stderr, flush=True)
            # One line: the pod's status shows it (the whole message is in the log).
            termination_message(environ, (str(e).strip().splitlines() or [""])[0])
            return e.exit_code
        raise
    print(ctx.summary.line(ctx.name, index, total), flush=True)
    termination_message(environ, json.dumps(ctx.summary.outputs()))  # the step's outputs
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dataworks-worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--step-file", required=True, help="the step's JSON definition")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        step = load_step(args.step_file)
        code = run(step, dict(os.environ))
    except StepFailed as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        code = e.exit_code
    sys.exit(code)
