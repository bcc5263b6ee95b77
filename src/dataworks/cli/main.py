"""The `dataworks` command, alias `pipeline-ctl` (edge layer): its parser, `run` and completion;
the verbs on a cluster's objects (get, status, describe, logs, retry, delete, and the action
verbs each kind declares) are in cli/verbs.py, and each other command in a module of its own.

Commands fetch plain data from the cluster, call `cli.formatting`, and print.
Exit codes: 0 ok, 1 the pipeline failed, 2 usage or input error, 3 cluster or
API error. Heavy modules are imported inside the commands so that
`pipeline-ctl --help` starts fast.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import secrets
import sys
from pathlib import Path
from typing import Any

import yaml

from dataworks.cli import bench, consume, generate, schedules, streamings, templating, verbs
from dataworks.cli.context import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    Cluster,
    console,
    emit,
    fail,
    load_documents,
    load_pipelines,
    validate_or_fail,
)

# The kinds beside Pipeline: the module that runs a file of them, and the one that describes one.
KIND_RUNS = {"SequentialJob": "sequences", "TrainingJob": "trainings", "StreamingJob": "streamingruns"}


def cmd_run(args: argparse.Namespace) -> int:
    if args.file and args.file_flag:
        fail("give the pipeline file once: either FILE or -f FILE")
    args.file = args.file or args.file_flag
    if not args.file and not args.template:
        fail("which pipeline? dataworks run [--local] FILE (or -f FILE, or --template NAME -p KEY=VALUE)")

    # --param fills the file's {{ k }}, or, with --template, the template's parameters.
    docs = load_documents(args.file, None if args.template else args.param) if args.file else []
    docs = templating.from_flags(args, docs)  # once: the file may be stdin
    for kind, module in KIND_RUNS.items():
        if any(d.get("kind") == kind for d in docs):
            return int(importlib.import_module(f"dataworks.cli.{module}").run(args, docs))
    if args.local:
        from dataworks.cli import local

        expanded = [created for created, _ in templating.resolve(args, docs)]
        return local.run_local(args, expanded or docs)
    from lightkube import codecs

    from dataworks.kube.resources import Pipeline

    assert Pipeline is not None  # importing it registers the kind with codecs.from_dict

    where = args.file or f"template {args.template}"
    load_pipelines(where, None, docs)  # fails naming the file when it holds no Pipeline
    lazy: list[Cluster] = []

    def on_cluster(name: str) -> dict[str, Any] | None:
        if args.dry_run:
            return None
        lazy[:] = lazy or [Cluster(args)]
        return lazy[0].template(name)

    resolved = templating.resolve(args, docs, on_cluster)
    pipelines = [created for created, _ in resolved]
    checked = [(created, validate_or_fail(shown, where)) for created, shown in resolved]
    if args.dry_run:
        return dry_run(checked, args)
    cluster = lazy[0] if lazy else Cluster(args)
    from dataworks.cli import preflight  # what only the cluster can tell; errors stop the run

    found = preflight.check(cluster, checked, Path(where).stem)
    for warning in found.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if found.errors:
        fail("\n".join(found.errors))
    created = []
    for original, _ in checked:
        obj = {**original, "metadata": dict(original.get("metadata") or {})}
        base = args.name or obj["metadata"].get("name") or Path(where).stem
        obj["metadata"]["name"] = (
            args.name if args.name and len(pipelines) == 1 else f"{base}-{secrets.token_hex(3)}"
        )
        obj["metadata"].pop("resourceVersion", None)
        cluster.call(
            "create pipelines", cluster.client.create, codecs.from_dict(obj), namespace=cluster.namespace
        )
        created.append(obj["metadata"]["name"])
        if args.output not in {"json", "yaml"}:
            print(f"pipeline.dataworks.io/{obj['metadata']['name']} created")
    if args.output in {"json", "yaml"}:
        emit(args, "", [{"name": n, "namespace": cluster.namespace, "action": "created"} for n in created])
    if args.watch and len(created) == 1:
        from dataworks.cli import watching

        return watching.watch_status(cluster, created[0], console())
    if args.wait or args.watch:
        return max(wait_for_end(cluster, name) for name in created)
    return EXIT_OK


def dry_run(checked: list[tuple[dict[str, Any], Any]], args: argparse.Namespace) -> int:
    from dataworks.api import pipeline as api
    from dataworks.api.config import PipelinesConfig
    from dataworks.core.kit import naming
    from dataworks.core.pipelines import planning
    from dataworks.manifests import jobs as manifests

    config = PipelinesConfig()
    out: list[dict[str, Any]] = []
    for obj, validated in checked:
        name = args.name or (obj.get("metadata") or {}).get("name", "pipeline")
        owner = manifests.Owner(
            info=api.INFO,
            name=name,
            namespace=args.namespace or "default",
            uid="00000000-0000-0000-0000-000000000000",
        )
        if any(s.type != "container" for s in validated.steps):
            out.append(manifests.steps_config_map(owner, validated.steps))
        for step in validated.steps:
            launch = planning.Launch(step=step, attempt=1, job_name=naming.job_name(name, step.name, 1))
            out.append(manifests.step_job(owner, launch, validated.spec, config))
    print(yaml.safe_dump_all(out, sort_keys=False), end="")
    return EXIT_OK


def wait_for_end(cluster: Cluster, name: str) -> int:
    from dataworks.api import pipeline as api
    from dataworks.kube.resources import Pipeline

    while True:
        phase = (cluster.get(name).get("status") or {}).get("phase")
        if phase in api.TERMINAL_PHASES:
            print(f"pipeline {name}: {phase}")
            return EXIT_OK if phase == "Completed" else EXIT_FAILED
        for _, obj in cluster.call(
            "watch pipelines",
            cluster.client.watch,
            Pipeline,
            namespace=cluster.namespace,
            fields={"metadata.name": name},
            server_timeout=30,
        ):
            if ((obj.to_dict().get("status") or {}).get("phase")) in api.TERMINAL_PHASES:
                break


def cmd_completion(args: argparse.Namespace) -> int:
    from dataworks.cli import completing

    print(completing.script(parser(), args.shell), end="")
    return EXIT_OK


def _add_logs(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    logs = sub.add_parser(
        "logs", parents=parents, help="print a run's step and worker logs, or a Job's (live or archived)"
    )
    logs.add_argument(
        "name", nargs="?", help="the pipeline, or job/NAME (--local: the run, default the newest)"
    )
    logs.add_argument("--step", help="only this step")
    logs.add_argument("--worker", type=int, help="only this fan-out worker index")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing until the run ends")
    logs.add_argument("--tail", type=int, metavar="N", help="only the last N lines of each pod")
    logs.add_argument("--since", metavar="DURATION", help="only lines newer than this (10m, 1h)")
    logs.add_argument("--previous", action="store_true", help="only earlier attempts of retried steps")
    logs.add_argument(
        "-o", "--output", choices=["table", "json"], default="table", help="json: one object per line"
    )
    logs.set_defaults(fn=verbs.cmd_logs)


def _add_kind_verbs(sub: Any, common: argparse.ArgumentParser, output: argparse.ArgumentParser) -> None:
    """The action verbs each kind declares, and kubectl-style get."""
    from dataworks.cli import kinds

    for verb in kinds.verbs():  # action verbs are declared per kind (cli/kinds.py)
        p = sub.add_parser(verb, parents=[common, output], help=kinds.help_of(verb))
        p.add_argument("name", help="NAME or KIND/NAME")
        p.set_defaults(fn=verbs.cmd_action(verb))

    get = sub.add_parser(
        "get", parents=[common], help="list dataworks resources (every kind, or one kind), or one"
    )
    get.add_argument("kind", nargs="?", help="pipeline, pipelines, pl, ... (default: every dataworks kind)")
    get.add_argument("name", nargs="?")
    get.add_argument("-A", "--all-namespaces", action="store_true")
    get.add_argument("-o", "--output", choices=["table", "json", "yaml", "name"], default="table")
    get.set_defaults(fn=verbs.cmd_get)


def parser(prog: str = "pipeline-ctl") -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog=prog,
        description="Run and inspect dataworks resources, on a cluster or (--local) on this machine.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    common.add_argument("--context", help="kubeconfig context")
    common.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument(
        "-o",
        "--output",
        choices=["table", "wide", "json", "yaml"],
        default="table",
        help="json|yaml for scripts",
    )
    local = argparse.ArgumentParser(add_help=False)
    local.add_argument("--local", action="store_true", help="local runs on this machine, no cluster")
    local.add_argument(
        "--workdir", help="where local runs live (default: $DATAWORKS_WORKDIR or ./.dataworks)"
    )
    sub = root.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", parents=[common, local, output], help="run a pipeline file (--local: on this machine)"
    )
    run.add_argument("file", nargs="?", help="Pipeline YAML (multi-document allowed; - for stdin)")
    run.add_argument("-f", "--file", dest="file_flag", help="the same, as kubectl spells it")
    run.add_argument(
        "-p",
        "--param",
        action="append",
        metavar="K=V",
        help="fill {{ K }} in the file, or with --template give a parameter (repeatable)",
    )
    templating.add_run_arguments(run)
    run.add_argument("--max-parallel", type=int, help="--local: at most N steps at once")
    run.add_argument(
        "--redis", help="--local StreamingJob: the Redis to consume, redis://[:PASSWORD@]HOST:PORT/DB"
    )
    run.add_argument(
        "--kafka", metavar="BOOTSTRAP", help="--local StreamingJob: the Kafka to consume, HOST:PORT"
    )
    run.add_argument("--name", help="run name (default: the pipeline's name plus a unique suffix)")
    run.add_argument(
        "--dry-run", action="store_true", help="print the Jobs and ConfigMaps the operator would create"
    )
    run.add_argument(
        "--wait", action="store_true", help="wait for the end; the exit code reflects the final phase"
    )
    run.add_argument("--watch", action="store_true", help="follow the run live (status --watch) to its end")
    run.set_defaults(fn=cmd_run)

    status = sub.add_parser(
        "status", parents=[common, local], help="pipelines in a namespace, or one pipeline's steps"
    )
    status.add_argument("name", nargs="?")
    status.add_argument("-A", "--all-namespaces", action="store_true")
    status.add_argument(
        "-o",
        "--output",
        choices=["table", "wide", "json", "yaml", "name"],
        default="table",
        help="wide: per-worker tables of every fan-out step, finished ones too; "
        "name: pipeline names (or, with NAME, its step names), one per line",
    )
    status.add_argument("-w", "--watch", action="store_true", help="follow one pipeline live until it ends")
    status.set_defaults(fn=verbs.cmd_status)

    _add_kind_verbs(sub, common, output)

    retry = sub.add_parser(
        "retry",
        parents=[common, local, output],
        help="re-run a pipeline's failed, skipped and cancelled steps (or one step), "
        "or a sequential job from a step",
    )
    retry.add_argument("name", help="NAME (a pipeline) or KIND/NAME, e.g. sqj/nightly")
    retry.add_argument(
        "--step", help="a pipeline: re-run only this step; a sequential job: re-run from this step"
    )
    retry.add_argument("--max-parallel", type=int, help="--local: at most N steps at once")
    retry.set_defaults(fn=verbs.cmd_retry)

    _add_logs(sub, [common, local])

    describe = sub.add_parser(
        "describe",
        parents=[common, output],
        help="one pipeline (or KIND/NAME, e.g. sqj/nightly, stj/ticks) in full: steps, Jobs, workers, Events",
    )
    describe.add_argument("name")
    describe.set_defaults(fn=verbs.cmd_describe)

    for module in (streamings, schedules):  # scale stj/NAME; trigger spl/NAME
        module.add_parser(sub, [common, output])

    completion = sub.add_parser("completion", help="print a shell completion script (bash, zsh or fish)")
    completion.add_argument("shell", choices=["bash", "zsh", "fish"])
    completion.set_defaults(fn=cmd_completion)

    delete = sub.add_parser("delete", parents=[common, output], help="delete a pipeline and its Jobs")
    delete.add_argument("name")
    delete.set_defaults(fn=verbs.cmd_delete)
    generate.add_parser(sub)
    consume.add_parser(sub)
    bench.add_parser(sub, [common])
    return root


def main(argv: list[str] | None = None) -> int:
    """`dataworks` and its alias `pipeline-ctl` (the name it was called by is the name it shows)."""
    faulthandler.enable()  # a crash in a C library (librdkafka, DuckDB) prints each thread's stack
    called = Path(sys.argv[0]).name
    args = parser(called if called in {"dataworks", "pipeline-ctl"} else "dataworks").parse_args(argv)
    try:
        code: int = args.fn(args)
        return code
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code


if __name__ == "__main__":
    raise SystemExit(main())
