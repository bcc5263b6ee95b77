"""`pipeline-ctl ... --local` (edge layer): run, status, logs and retry against local runs.

The same YAML, the same validation messages and the same planner as the
cluster; steps run as local processes (see `dataworks.local`). Formatting is
shared with the cluster commands through `cli.formatting`.
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
from rich.console import Console
from rich.live import Live

from dataworks.api import kinds
from dataworks.api import pipeline as api
from dataworks.cli import formatting
from dataworks.cli.context import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    console,
    fail,
    load_pipelines,
    validate_or_fail,
)
from dataworks.core.kit.jobs import last_progress
from dataworks.local import runs
from dataworks.local.executing import Executor, Options
from dataworks.local.jobs import LocalJob

EXIT_CANCELLED = 130


def _tail(path: Path, size: int = 4096) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def progress_of(jobs: dict[str, LocalJob]) -> dict[str, tuple[float | None, str]]:
    """Per running step: the mean PROGRESS of its workers, and `done/total` for fan-outs."""
    out: dict[str, tuple[float | None, str]] = {}
    for job in jobs.values():
        if job.state != "Active" or job.deleting:
            continue
        values = []
        for w in job.workers:
            value = 1.0 if w.done and not w.failed else (last_progress(_tail(w.log)) if w.log else None)
            values.append(value or 0.0)
        known = any(v > 0 for v in values)
        fraction = sum(values) / len(values) if known else None
        done = sum(1 for w in job.workers if w.done and not w.failed)
        workers = f"{done}/{len(job.workers)} workers" if job.indexed else ""
        out[job.step_name] = (fraction, workers)
    return out


def _console() -> Console:
    con: Console = console()
    return con


def run_local(args: argparse.Namespace, read: list[dict[str, Any]] | None = None) -> int:
    path = args.file or "-"  # no file: a --template run, from the working directory
    label = args.file or f"template {args.template}"
    docs = load_pipelines(label, args.param, read)
    if len(docs) > 1:
        fail(f"{label} holds {len(docs)} Pipelines; --local runs one file with one Pipeline")
    obj = docs[0]
    validated = validate_or_fail(obj, label)
    root = runs.workdir(args.workdir)
    pipeline = str((obj.get("metadata") or {}).get("name") or Path(path).stem)
    _dependencies_or_fail(pipeline, validated.spec.pipeline_dependencies, root)
    existing = {r.name for r in runs.list_runs(root)}
    name = args.name or runs.new_run_name(pipeline, existing)
    if name in existing:
        fail(f"a local run named {name} exists in {root}; choose another --name or omit it")
    run = runs.RunDir(root / "runs" / name)
    labels = {"dataworks.io/pipeline-name": pipeline}
    run.save_pipeline(
        {
            "apiVersion": obj.get("apiVersion", "dataworks.io/v1"),
            "kind": "Pipeline",
            "metadata": {"name": name, "namespace": "local", "labels": labels},
            "spec": obj.get("spec") or {},
        }
    )
    # Relative paths are read from the pipeline's file, or, for --template, the template's.
    source = path if path != "-" else ((getattr(args, "template_file", None) or ["-"])[0])
    pipeline_dir = Path(source).resolve().parent if source != "-" else Path.cwd()
    (run.path / "pipeline-dir").write_text(str(pipeline_dir))
    return _execute(run, pipeline_dir, args)


def _dependencies_or_fail(pipeline: str, wanted: list[Any], root: Path) -> None:
    """pipelineDependencies against this machine's runs: nothing else runs while a local run
    waits, so one that would wait is refused before it starts, saying which and why."""
    from dataworks.core.pipelines import dependencies

    seen: dict[str, dependencies.Upstream] = {}
    for dep in wanted:
        found = runs.latest_of(root, dep.name)
        st, spec = (found or {}).get("status") or {}, (found or {}).get("spec") or {}
        after = tuple(str(d.get("name")) for d in spec.get("pipelineDependencies") or [])
        seen[dep.name] = dependencies.Upstream(
            dep.name, found is not None, st.get("phase"), st.get("completionTime"), after
        )
    g = dependencies.gate(pipeline, wanted, seen, datetime.now(UTC))
    if g is not None and not g.ready:
        fail(
            f"pipeline {pipeline} waits for pipelineDependencies: {g.message}. Here nothing else runs "
            f"meanwhile: run those pipelines first (dataworks run --local), in this directory"
        )


def _execute(run: runs.RunDir, pipeline_dir: Path, args: argparse.Namespace) -> int:
    console = _console()
    console.print(f"run {run.name} in {run.path}")
    live_mode = console.is_terminal and not getattr(args, "no_live", False)
    started = time.monotonic()
    options = Options(max_parallel=getattr(args, "max_parallel", None))
    if live_mode:
        live = Live(console=console, refresh_per_second=4, transient=False)

        def tick(status: Any, jobs: dict[str, LocalJob]) -> None:
            now = datetime.now(UTC)
            live.update(formatting.local_steps_table(status, progress_of(jobs), now))

        options.on_tick = tick
        with live:
            status = Executor(run, pipeline_dir, options).execute()
    else:

        def event(e: Any) -> None:
            stamp = f"{time.monotonic() - started:7.2f}s"
            console.print(f"{stamp} {e.reason}: {e.message}")

        options.on_event = event
        status = Executor(run, pipeline_dir, options).execute()
    console.print(
        f"{run.name}: ", formatting.phase_text(status.phase or "Pending"), f" {status.message or ''}"
    )
    console.print(f"logs: dataworks logs --local {run.name}    data: {run.store}")
    if status.phase == "Completed":
        return EXIT_OK
    return EXIT_CANCELLED if status.phase == "Cancelled" else EXIT_FAILED


def _find(args: argparse.Namespace, name: str | None) -> runs.RunDir:
    root = runs.workdir(args.workdir)
    run = runs.find_run(root, name)
    if run is None:
        known = [r.name for r in runs.list_runs(root)]
        if not known:
            fail(f"no local runs in {root}; start one with: dataworks run --local FILE")
        import difflib

        close = difflib.get_close_matches(name or "", known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; runs: {', '.join(known[-5:])}"
        fail(f"no local run named {name} in {root}{hint}")
    return run


def status_local(args: argparse.Namespace) -> int:
    console = _console()
    now = datetime.now(UTC)
    if args.name is None and args.output == "table":
        found = runs.list_runs(runs.workdir(args.workdir))
        items = [r.as_object() for r in found if r.kind() == api.KIND]
        console.print(formatting.pipelines_table(items, now))
        others = [(kinds.default().by_kind(r.kind()), r.as_object()) for r in found if r.kind() != api.KIND]
        if others:  # runs of other kinds (SequentialJobs), with their printer columns
            console.print("")
            console.print(formatting.resources_table(others, now, with_kind=True))
        return EXIT_OK
    obj = _find(args, args.name).as_object()
    if args.output == "json":
        print(json.dumps(formatting.summary(obj), indent=2))
    elif args.output == "yaml":
        print(yaml.safe_dump(formatting.summary(obj), sort_keys=False))
    else:
        for line in formatting.pipeline_detail(obj, now):
            console.print(line)
    return EXIT_OK


def logs_local(args: argparse.Namespace) -> int:
    run = _find(args, args.name)
    files = run.logs(args.step)
    if args.step and not files:
        steps = sorted(p.name for p in (run.path / "logs").iterdir()) if (run.path / "logs").is_dir() else []
        fail(
            f"step {args.step} of run {run.name} has no logs (steps with logs: {', '.join(steps) or 'none'})"
        )
    if args.worker is not None:
        files = [f for f in files if f.name == f"worker-{args.worker}.log"]
    many = len(files) > 1
    offsets = dict.fromkeys(files, 0)

    def show() -> None:
        for f in files:
            text = f.read_bytes()[offsets[f] :].decode(errors="replace")
            offsets[f] += len(text.encode())
            for line in text.splitlines():
                prefix = f"[{f.parent.parent.name}/{f.parent.name}/{f.stem}] " if many else ""
                print(prefix + line)

    show()
    info = kinds.default().by_kind(run.kind())
    while args.follow and not info.is_terminal(run.raw_status().get("phase")):
        time.sleep(0.5)
        files = run.logs(args.step) if args.worker is None else files
        for f in files:
            offsets.setdefault(f, 0)
        show()
    if args.follow:
        show()
    return EXIT_OK


def retry_local(args: argparse.Namespace) -> int:
    run = _find(args, args.name)
    obj = run.pipeline()
    status = run.status()
    steps = {s.name: s for s in status.step_statuses}
    if args.step and args.step not in steps:
        fail(f"run {run.name} has no step {args.step} (steps: {', '.join(steps)})")
    redo = [s.name for s in status.step_statuses if s.phase in {"Failed", "Skipped", "Cancelled"}]
    if not args.step and not redo:
        fail(f"run {run.name} has no failed, skipped or cancelled steps to retry", EXIT_USAGE)
    spec = dict(obj.get("spec") or {})
    spec.pop("shutdown", None)
    spec["retry"] = {"id": secrets.token_hex(4), **({"step": args.step} if args.step else {})}
    obj["spec"] = spec
    run.save_pipeline(obj)
    target = args.step or ", ".join(redo)
    print(f"retrying {target} in run {run.name}; completed steps keep their outputs")
    pipeline_dir = Path((run.path / "pipeline-dir").read_text().strip())
    return _execute(run, pipeline_dir, args)
