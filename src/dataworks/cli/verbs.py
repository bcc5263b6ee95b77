"""The verbs on a cluster's objects (edge layer): get, status, describe, logs, retry, delete,
and the action verbs each kind declares (cli/kinds.py). Each fetches plain data through the
shared cluster client, renders it with `cli.formatting` or `cli.watching`, and prints; with
`--local`, status, logs and retry read this machine's runs instead.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import secrets
from datetime import UTC, datetime
from typing import Any

import yaml

from dataworks.cli.context import EXIT_OK, Cluster, console, emit, fail

# The kinds beside Pipeline that describe themselves: the module that does.
KIND_DESCRIBES = {
    "SequentialJob": "sequences",
    "TrainingJob": "trainingdescribe",
    "StreamingJob": "streamings",
}


def cmd_status(args: argparse.Namespace) -> int:
    if args.local:
        from dataworks.cli import local, sequences

        if args.name and sequences.is_local_sequence(args):
            return sequences.status_local(args)
        return local.status_local(args)
    from dataworks.cli import formatting

    cluster = Cluster(args)
    now = datetime.now(UTC)
    out = console()
    if args.watch and not args.name:
        fail("--watch follows one pipeline: dataworks status NAME --watch")
    if args.name:
        if args.watch:
            from dataworks.cli import watching

            return watching.watch_status(cluster, args.name, out)
        p = cluster.get(args.name)
        if args.output == "name":
            print("\n".join(st["name"] for st in (p.get("spec") or {}).get("steps") or []))
        elif args.output == "json":
            print(json.dumps(formatting.summary(p), indent=2))
        elif args.output == "yaml":
            print(yaml.safe_dump(formatting.summary(p), sort_keys=False), end="")
        else:
            from dataworks.cli import watching

            out.print(watching.render(cluster, p, all_fan_outs=args.output == "wide"))
        return EXIT_OK
    items = cluster.list(all_namespaces=args.all_namespaces)
    if args.output == "name":
        print("\n".join(p["metadata"]["name"] for p in items))
    elif args.output == "json":
        print(json.dumps([formatting.summary(p) for p in items], indent=2))
    elif args.output == "yaml":
        print(yaml.safe_dump([formatting.summary(p) for p in items], sort_keys=False), end="")
    elif not items:
        print(f"No pipelines in namespace {cluster.namespace}.")
    else:
        out.print(formatting.pipelines_table(items, now, all_namespaces=args.all_namespaces))
    return EXIT_OK


def cmd_action(verb: str) -> Any:
    """A verb of the per-kind action table: patch the object's spec as the kind declares."""

    def run(args: argparse.Namespace) -> int:
        from dataworks.cli import kinds

        info, name = ref(args.name)
        act = kinds.action(info.kind, verb)
        if act is None:
            fail(f"{info.plural} have no {verb} verb")
        cluster = Cluster(args)
        cluster.patch_spec(name, act.patch, info)
        data = {"name": name, "namespace": cluster.namespace, "action": act.done}
        emit(args, f"{info.singular}.{info.group}/{name} {act.done}", data)
        return EXIT_OK

    return run


def cmd_retry(args: argparse.Namespace) -> int:
    if args.local:
        from dataworks.cli import local, sequences

        if sequences.is_local_sequence(args):
            return sequences.retry_local(args)
        return local.retry_local(args)
    from dataworks.cli import kinds

    info, name = ref(args.name)
    retry = kinds.RETRIES.get(info.kind)
    if retry is None:
        fail(f"{info.plural} have no retry")
    cluster = Cluster(args)
    status = cluster.get(name, info).get("status") or {}
    names = {s["name"] for s in status.get(retry.steps_field) or []}
    if args.step and args.step not in names:
        close = difflib.get_close_matches(args.step, sorted(names), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"its steps: {', '.join(sorted(names)[:10])}"
        fail(f'{info.singular} {name} has no step "{args.step}"; {hint}')
    try:
        rerun = retry.rerun(status, args.step)
    except kinds.CannotRetry as e:
        fail(f"{info.singular} {name} {e}")
    request: dict[str, Any] = {"id": f"r-{secrets.token_hex(4)}"}
    if args.step:
        request["step"] = args.step
    cluster.patch_spec(name, {"retry": request}, info)
    what = f"{info.singular}.{info.group}/{name} retry {request['id']} requested"
    emit(
        args,
        f"{what}; will re-run: {', '.join(rerun)}",
        {"name": name, "namespace": cluster.namespace, "retryId": request["id"], "rerun": rerun},
    )
    return EXIT_OK


def cmd_logs(args: argparse.Namespace) -> int:
    if args.local:
        from dataworks.cli import local

        return local.logs_local(args)
    if not args.name:
        fail("which pipeline? dataworks logs NAME [--step S] [--worker I] [-f]")
    kind, _, job = args.name.partition("/")
    if job and kind.lower() in {"job", "jobs", "job.batch", "jobs.batch"}:
        from dataworks.cli import joblogs

        return joblogs.logs(Cluster(args), job)
    from dataworks.cli import watching
    from dataworks.core.kit import quantities

    try:
        since = int(quantities.parse_duration(args.since)) if args.since else None
    except ValueError as e:
        fail(f"--since {args.since!r}: {e} (for example 10m or 1h)")
    opts = watching.LogOptions(
        args.step, args.worker, args.follow, args.tail, since, args.previous, args.output == "json"
    )
    info, name = ref(args.name)
    _pipelines_only(info, "logs")
    return watching.logs(Cluster(args), name, opts)


def cmd_describe(args: argparse.Namespace) -> int:
    from dataworks.cli import watching

    info, name = ref(args.name)
    if info.kind in KIND_DESCRIBES:
        module = importlib.import_module(f"dataworks.cli.{KIND_DESCRIBES[info.kind]}")
        return int(module.describe(Cluster(args), name, args))
    _pipelines_only(info, "describe")
    cluster = Cluster(args)
    if args.output in {"json", "yaml"}:
        emit(args, "", watching.describe_data(cluster, name))
        return EXIT_OK
    return watching.describe(cluster, name, console())


def _pipelines_only(info: Any, verb: str) -> None:
    if info.kind != "Pipeline":  # every registered kind brings its own renderer with it
        fail(f"{verb} does not know {info.plural} yet; dataworks get {info.singular} NAME -o yaml shows one")


def ref(text: str) -> tuple[Any, str]:
    """A command's `KIND/NAME` (or a pipeline's bare NAME) as (kind, name); exit 2 on a bad kind."""
    from dataworks.cli import kinds

    try:
        return kinds.split_ref(text)
    except kinds.UnknownKind as e:
        fail(str(e))


def cmd_delete(args: argparse.Namespace) -> int:
    info, name = ref(args.name)
    cluster = Cluster(args)
    cluster.delete(name, info)
    data = {"name": name, "namespace": cluster.namespace, "action": "deleted"}
    emit(args, f"{info.singular}.{info.group}/{name} deleted", data)
    return EXIT_OK


def cmd_get(args: argparse.Namespace) -> int:
    """kubectl-style `get [KIND] [NAME]`; without a kind, every dataworks kind (like the category)."""
    from dataworks.api import kinds as registry
    from dataworks.cli import formatting, kinds

    if args.kind and "/" in args.kind and not args.name:
        args.kind, _, args.name = args.kind.partition("/")
    try:
        chosen = [kinds.resolve(args.kind)] if args.kind else list(registry.default())
    except kinds.UnknownKind as e:
        fail(str(e))
    if args.name and not args.kind:
        fail("get NAME needs a kind: dataworks get pipeline NAME (or pipeline/NAME)")
    cluster = Cluster(args)
    rows: list[tuple[Any, dict[str, Any]]] = []
    for info in chosen:
        items = [cluster.get(args.name, info)] if args.name else cluster.list(args.all_namespaces, info)
        rows += [(info, obj) for obj in items]
    if args.output in {"json", "yaml"}:
        emit(args, "", [obj for _, obj in rows] if not args.name else rows[0][1])
        return EXIT_OK
    if args.output == "name":
        print("\n".join(f"{info.singular}.{info.group}/{obj['metadata']['name']}" for info, obj in rows))
        return EXIT_OK
    if not rows:
        what = " or ".join(i.plural for i in chosen)
        print(f"No {what} found in namespace {cluster.namespace}.")
        return EXIT_OK
    console().print(
        formatting.resources_table(
            rows, datetime.now(UTC), all_namespaces=args.all_namespaces, with_kind=not args.kind
        )
    )
    return EXIT_OK
