"""What `dataworks run` and `describe` do alike for the kinds beside Pipeline (edge layer).

- `checked`: every object of a file validated by its kind's model before anything starts, each
  bad field named (exit 2);
- `create`: the objects created on the cluster, as `kubectl create` reports them;
- `new_run`: a local run directory for one object, its spec saved;
- `describe`: a kind's summary lines and its Events (or, with `-o json|yaml`, its status and
  Events as data).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dataworks.api.meta import KindInfo
from dataworks.cli import context, formatting
from dataworks.cli.context import EXIT_OK, Cluster, console, emit, fail
from dataworks.local import runs


def checked(docs: list[dict[str, Any]], path: str, info: KindInfo) -> list[dict[str, Any]]:
    """Each object of the file, validated; exit 2 naming every invalid field."""
    others = sorted({str(d.get("kind")) for d in docs if d.get("kind") != info.kind})
    if others:
        fail(f"{path} holds {', '.join(others)} beside {info.kind}s; run them from separate files")
    for obj in docs:
        name = (obj.get("metadata") or {}).get("name", "?")
        try:
            info.root.model_validate(obj)
        except ValidationError as e:
            lines = "\n".join(
                f"  - {'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()
            )
            fail(f"{path}: {info.singular} {name} is invalid:\n{lines}")
    return docs


def create(
    args: argparse.Namespace, items: list[dict[str, Any]], info: KindInfo
) -> tuple[Cluster, list[str]]:
    """Create each object (`--name` renames a single one); the cluster and the names created."""
    from lightkube import codecs

    from dataworks.kube import resources

    resources.of(info)  # registers the kind with codecs.from_dict
    cluster = Cluster(args)
    names = []
    for original in items:
        obj = {**original, "metadata": dict(original.get("metadata") or {})}
        if args.name and len(items) == 1:
            obj["metadata"]["name"] = args.name
        cluster.call(
            f"create {info.plural}", cluster.client.create, codecs.from_dict(obj), namespace=cluster.namespace
        )
        names.append(obj["metadata"]["name"])
        print(f"{info.singular}.{info.group}/{obj['metadata']['name']} created")
    return cluster, names


def new_run(
    args: argparse.Namespace, obj: dict[str, Any], info: KindInfo, spec: dict[str, Any]
) -> runs.RunDir:
    """A new local run directory holding `obj` (with `spec`) under a unique name."""
    root = runs.workdir(args.workdir)
    base = str((obj.get("metadata") or {}).get("name") or Path(args.file).stem)
    existing = {r.name for r in runs.list_runs(root)}
    name = args.name or runs.new_run_name(base, existing)
    if name in existing:
        fail(f"a local run named {name} exists in {root}; choose another --name or omit it")
    run_dir = runs.RunDir(root / "runs" / name)
    meta = {"name": name, "namespace": "local", "labels": {f"{info.owner_label}-name": base}, "generation": 1}
    run_dir.save_pipeline({"apiVersion": info.api_version, "kind": info.kind, "metadata": meta, "spec": spec})
    return run_dir


def describe(
    cluster: Cluster,
    name: str,
    args: argparse.Namespace,
    info: KindInfo,
    lines: Callable[[dict[str, Any]], list[str]],
) -> int:
    obj = cluster.get(name, info)
    events = context.events_of(cluster, name, info.kind)
    if args.output in {"json", "yaml"}:
        emit(args, "", formatting.status_and_events(name, obj, events))
        return EXIT_OK
    out = console()
    for line in lines(obj):
        out.print(line, highlight=False, markup=False)
    if events:
        out.print("")
        out.print(formatting.events_table(events, datetime.now(UTC)))
    return EXIT_OK
