"""`dataworks run` of SequentialJobs, on a cluster or (--local) on this machine, and the local
status and retry of such a run (edge layer).

The same YAML and validation messages everywhere: `--dry-run` prints each step's Job as the
operator would create it, a cluster run creates the objects (and `--wait`s for their end), a
local run hosts the operator's own SequentialJob controller in the local runtime
(local/sequences.py). A local run that Ctrl-C stopped resumes with `retry --local`; one that
finished re-runs from its failed step (or `--step`), as `spec.retry` does on a cluster.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from dataworks.api import sequentialjob as api
from dataworks.cli import context, formatting, kindruns
from dataworks.cli.context import EXIT_FAILED, EXIT_OK, Cluster, console, emit, fail
from dataworks.core.kit.plan import Event
from dataworks.core.sequentialjobs import validation
from dataworks.local import runs
from dataworks.local.runtime import Hooks
from dataworks.local.sequences import SequenceExecutor

EXIT_INTERRUPTED = 130


def checked(docs: list[dict[str, Any]], path: str) -> list[tuple[dict[str, Any], validation.Validated]]:
    """Each SequentialJob of the file, validated; exit 2 naming every invalid field."""
    others = sorted({str(d.get("kind")) for d in docs if d.get("kind") != api.KIND})
    if others:
        fail(f"{path} holds {', '.join(others)} beside SequentialJobs; run them from separate files")
    out = []
    for obj in docs:
        validated, errors = validation.validate_document(obj)
        if validated is None:
            name = (obj.get("metadata") or {}).get("name", "?")
            lines = "\n".join(f"  - {e}" for e in errors)
            fail(f"{path}: sequentialjob {name} is invalid:\n{lines}")
        out.append((obj, validated))
    return out


def run(args: argparse.Namespace, docs: list[dict[str, Any]]) -> int:
    items = checked(docs, args.file)
    if args.dry_run:
        return dry_run(args, items)
    if args.local:
        if len(items) > 1:
            fail(f"{args.file} holds {len(items)} SequentialJobs; --local runs one")
        return run_local(args, items[0][0])
    return run_cluster(args, items)


def dry_run(args: argparse.Namespace, items: list[tuple[dict[str, Any], validation.Validated]]) -> int:
    from dataworks.core.kit import naming
    from dataworks.core.sequentialjobs.work import Launch
    from dataworks.manifests import sequentialjobs as manifests
    from dataworks.manifests.owner import Owner

    out = []
    for obj, validated in items:
        name = args.name or (obj.get("metadata") or {}).get("name", "sequence")
        uid = "00000000-0000-0000-0000-000000000000"
        owner = Owner(info=api.INFO, name=name, namespace=args.namespace or "default", uid=uid)
        spec = validated.spec
        for i, c in enumerate(spec.containers):
            launch = Launch(i, c, spec.policy(c.name), 1, naming.job_name(name, c.name, 1))
            out.append(manifests.step_job(owner, spec, launch))
    print(yaml.safe_dump_all(out, sort_keys=False), end="")
    return EXIT_OK


def run_cluster(args: argparse.Namespace, items: list[tuple[dict[str, Any], validation.Validated]]) -> int:
    from lightkube import codecs

    from dataworks.kube import resources

    resources.of(api.INFO)  # registers the kind with codecs.from_dict
    cluster = Cluster(args)
    created = []
    for original, _ in items:
        obj = {**original, "metadata": dict(original.get("metadata") or {})}
        base = args.name or obj["metadata"].get("name") or Path(args.file).stem
        single = args.name and len(items) == 1
        obj["metadata"]["name"] = args.name if single else f"{base}-{secrets.token_hex(3)}"
        obj["metadata"].pop("resourceVersion", None)
        body = codecs.from_dict(obj)
        cluster.call("create sequentialjobs", cluster.client.create, body, namespace=cluster.namespace)
        created.append(obj["metadata"]["name"])
        if args.output not in {"json", "yaml"}:
            print(f"sequentialjob.dataworks.io/{obj['metadata']['name']} created")
    if args.output in {"json", "yaml"}:
        emit(args, "", [{"name": n, "namespace": cluster.namespace, "action": "created"} for n in created])
    if not (args.wait or args.watch):
        return EXIT_OK
    codes = []
    for name in created:
        while (
            phase := (cluster.get(name, api.INFO).get("status") or {}).get("phase")
        ) not in api.TERMINAL_PHASES:
            time.sleep(1)
        print(f"sequentialjob {name}: {phase}")
        codes.append(EXIT_OK if phase == "Completed" else EXIT_FAILED)
    return max(codes)


def run_local(args: argparse.Namespace, obj: dict[str, Any]) -> int:
    run_dir = kindruns.new_run(args, obj, api.INFO, obj["spec"])
    return execute(run_dir)


def execute(run_dir: runs.RunDir) -> int:
    out = console()
    out.print(f"run {run_dir.name} in {run_dir.path}")
    started = time.monotonic()

    def event(e: Event) -> None:
        out.print(f"{time.monotonic() - started:7.2f}s {e.reason}: {e.message}")

    outcome = SequenceExecutor(run_dir, Hooks(on_event=event)).execute()
    phase = outcome.status.get("phase") or "Pending"
    if outcome.interrupted:
        out.print(f"{run_dir.name}: interrupted; resume it with: dataworks retry --local {run_dir.name}")
        return EXIT_INTERRUPTED
    out.print(f"{run_dir.name}: ", formatting.phase_text(phase), f" {outcome.status.get('message') or ''}")
    out.print(f"logs: dataworks logs --local {run_dir.name}    volumes: {run_dir.path / 'claims'}")
    return EXIT_OK if phase == "Completed" else EXIT_FAILED


def _run(args: argparse.Namespace) -> runs.RunDir | None:
    return runs.find_run(runs.workdir(args.workdir), args.name)


def is_local_sequence(args: argparse.Namespace) -> bool:
    """Whether the local run the command names (or the newest) is a SequentialJob's."""
    found = _run(args)
    return found is not None and found.kind() == api.KIND


def status_local(args: argparse.Namespace) -> int:
    found = _run(args)
    assert found is not None
    obj = found.as_object()
    if args.output in {"json", "yaml"}:
        data = {"name": found.name, "kind": api.KIND, "status": obj["status"]}
        print(
            json.dumps(data, indent=2) if args.output == "json" else yaml.safe_dump(data, sort_keys=False),
            end="",
        )
        return EXIT_OK
    for line in formatting.sequence_detail(obj, datetime.now(UTC)):
        console().print(line)
    return EXIT_OK


def retry_local(args: argparse.Namespace) -> int:
    """Resume a run Ctrl-C stopped; re-run a finished one from its failed step (or --step)."""
    found = _run(args)
    assert found is not None
    obj, status = found.pipeline(), found.raw_status()
    names = [c["name"] for c in obj["spec"]["containers"]]
    if args.step and args.step not in names:
        fail(f"run {found.name} has no step {args.step} (steps: {', '.join(names)})")
    if status.get("phase") not in api.TERMINAL_PHASES:
        print(f"resuming run {found.name}")
        return execute(found)
    steps = status.get("steps") or []
    start = args.step or next((s["name"] for s in steps if s.get("phase") != "Completed"), None)
    if start is None:
        fail(f"run {found.name} completed every step; name one with --step to re-run from it")
    obj["spec"]["retry"] = {"id": secrets.token_hex(4), **({"step": args.step} if args.step else {})}
    obj["metadata"]["generation"] = int(obj["metadata"].get("generation") or 1) + 1
    found.save_pipeline(obj)
    print(f"re-running run {found.name} from step {start}; the steps before it keep their results")
    return execute(found)


def describe(cluster: Cluster, name: str, args: argparse.Namespace) -> int:
    """One SequentialJob in full: its steps (runs, outputs), their Jobs, and its Events."""
    obj = cluster.get(name, api.INFO)
    events = context.events_of(cluster, name, api.KIND)
    if args.output in {"json", "yaml"}:
        emit(args, "", formatting.status_and_events(name, obj, events))
        return EXIT_OK
    out, now = console(), datetime.now(UTC)
    for line in formatting.sequence_detail(obj, now):
        out.print(line)
    ran = [s for s in (obj.get("status") or {}).get("steps") or [] if s.get("jobName")]
    if ran:
        out.print("\nJobs:")
        for s in ran:
            out.print(f"  {s['name']}: job/{s['jobName']} (run {s.get('attempt', 1)})")
    if events:
        out.print("")
        out.print(formatting.events_table(events, now))
    return EXIT_OK
