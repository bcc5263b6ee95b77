"""`dataworks run` of TrainingJobs, on a cluster or (--local) on this machine (edge layer).

The file is validated by the same model the operator uses, naming each bad field before
anything starts. A cluster run creates the objects (and `--wait`s for their end); a local run
hosts the operator's own TrainingJob controller in the local runtime (local/trainings.py),
whose workers are processes of this machine sharing the run's checkpoint folder.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dataworks.api import trainingjob as api
from dataworks.cli.context import EXIT_FAILED, EXIT_OK, Cluster, console, fail
from dataworks.core.kit.plan import Event
from dataworks.local import runs
from dataworks.local.runtime import Hooks
from dataworks.local.trainings import TrainingExecutor

EXIT_INTERRUPTED = 130


def checked(docs: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    """Each TrainingJob of the file, validated; exit 2 naming every invalid field."""
    others = sorted({str(d.get("kind")) for d in docs if d.get("kind") != api.KIND})
    if others:
        fail(f"{path} holds {', '.join(others)} beside TrainingJobs; run them from separate files")
    for obj in docs:
        name = (obj.get("metadata") or {}).get("name", "?")
        try:
            api.TrainingJob.model_validate(obj)
        except ValidationError as e:
            lines = "\n".join(
                f"  - {'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()
            )
            fail(f"{path}: trainingjob {name} is invalid:\n{lines}")
    return docs


def run(args: argparse.Namespace, docs: list[dict[str, Any]]) -> int:
    items = checked(docs, args.file)
    if args.dry_run:
        print(yaml.safe_dump_all(items, sort_keys=False), end="")
        return EXIT_OK
    if args.local:
        if len(items) > 1:
            fail(f"{args.file} holds {len(items)} TrainingJobs; --local runs one")
        return run_local(args, items[0])
    return run_cluster(args, items)


def run_cluster(args: argparse.Namespace, items: list[dict[str, Any]]) -> int:
    from lightkube import codecs

    from dataworks.kube import resources

    resources.of(api.INFO)  # registers the kind with codecs.from_dict
    cluster = Cluster(args)
    names = []
    for original in items:
        obj = {**original, "metadata": dict(original.get("metadata") or {})}
        if args.name and len(items) == 1:
            obj["metadata"]["name"] = args.name
        cluster.call(
            "create trainingjobs", cluster.client.create, codecs.from_dict(obj), namespace=cluster.namespace
        )
        names.append(obj["metadata"]["name"])
        print(f"trainingjob.dataworks.io/{obj['metadata']['name']} created")
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
    root = runs.workdir(args.workdir)
    base = str((obj.get("metadata") or {}).get("name") or Path(args.file).stem)
    existing = {r.name for r in runs.list_runs(root)}
    name = args.name or runs.new_run_name(base, existing)
    if name in existing:
        fail(f"a local run named {name} exists in {root}; choose another --name or omit it")
    run_dir = runs.RunDir(root / "runs" / name)
    meta = {
        "name": name,
        "namespace": "local",
        "labels": {"dataworks.io/trainingjob-name": base},
        "generation": 1,
    }
    run_dir.save_pipeline(
        {"apiVersion": api.INFO.api_version, "kind": api.KIND, "metadata": meta, "spec": obj["spec"]}
    )
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
