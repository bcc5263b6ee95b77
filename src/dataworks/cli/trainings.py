"""`dataworks run` of TrainingJobs, on a cluster or (--local) on this machine (edge layer).

The file is validated by the same model the operator uses, naming each bad field before
anything starts. A cluster run creates the objects (and `--wait`s for their end); a local run
hosts the operator's own TrainingJob controller in the local runtime (local/trainings.py),
whose workers are processes of this machine sharing the run's checkpoint folder.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import yaml

from dataworks.api import trainingjob as api
from dataworks.cli import kindruns
from dataworks.cli.context import EXIT_FAILED, EXIT_OK, console, fail
from dataworks.core.kit.plan import Event
from dataworks.local.runtime import Hooks
from dataworks.local.trainings import TrainingExecutor

EXIT_INTERRUPTED = 130


def run(args: argparse.Namespace, docs: list[dict[str, Any]]) -> int:
    items = kindruns.checked(docs, args.file, api.INFO)
    if args.dry_run:
        print(yaml.safe_dump_all(items, sort_keys=False), end="")
        return EXIT_OK
    if args.local:
        if len(items) > 1:
            fail(f"{args.file} holds {len(items)} TrainingJobs; --local runs one")
        return run_local(args, items[0])
    return run_cluster(args, items)


def run_cluster(args: argparse.Namespace, items: list[dict[str, Any]]) -> int:
    cluster, names = kindruns.create(args, items, api.INFO)
    if not (args.wait or args.watch):
        return EXIT_OK
    codes = []
    for name in names:
        while (
            state := (cluster.get(name, api.INFO).get("status") or {}).get("state")
        ) not in api.TERMINAL_STATES:
            time.sleep(1)
        print(f"trainingjob {name}: {state}")
        codes.append(EXIT_OK if state == "Succeeded" else EXIT_FAILED)
    return max(codes)


def run_local(args: argparse.Namespace, obj: dict[str, Any]) -> int:
    run_dir = kindruns.new_run(args, obj, api.INFO, obj["spec"])
    out = console()
    out.print(f"run {run_dir.name} in {run_dir.path}")
    started = time.monotonic()

    def event(e: Event) -> None:
        out.print(f"{time.monotonic() - started:7.2f}s {e.reason}: {e.message}")

    outcome = TrainingExecutor(run_dir, Hooks(on_event=event)).execute()
    if outcome.interrupted:
        out.print(f"{run_dir.name}: interrupted")
        return EXIT_INTERRUPTED
    state = outcome.status.get("state") or "Created"
    out.print(f"{run_dir.name}: {state} {outcome.status.get('message') or ''}")
    out.print(f"logs: {run_dir.path / 'logs'}    checkpoints: {run_dir.path / 'claims'}")
    return EXIT_OK if state == "Succeeded" else EXIT_FAILED
