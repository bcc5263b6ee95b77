"""The `pipeline-ctl` command (edge layer): run, status, cancel, suspend, resume, retry, delete.

Commands fetch plain data from the cluster, call `cli.formatting`, and print.
Exit codes: 0 ok, 1 the pipeline failed, 2 usage or input error, 3 cluster or
API error. Heavy modules are imported inside the commands so that
`pipeline-ctl --help` starts fast.
"""

from __future__ import annotations

import argparse
import difflib
import json
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import yaml

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CLUSTER = 0, 1, 2, 3
CRD_FIX = "kubectl apply --server-side -k deploy/crds"
CRD_GROUP = "dataworks.io"


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    raise CliError(message, code)


class Cluster:
    """The pipelines of one namespace, through the one client library."""

    def __init__(self, args: argparse.Namespace) -> None:
        from dataworks.kube import clients

        try:
            # Strict: an unknown field is an error from the API server too, never dropped.
            self.client = clients.sync_client(
                args.kubeconfig, context=args.context, field_validation="Strict"
            )
        except Exception as e:
            fail(f"cannot load a kubeconfig ({e}); pass --kubeconfig or set KUBECONFIG", EXIT_CLUSTER)
        self.namespace = args.namespace or self.client.namespace or "default"

    def call(self, what: str, fn: Any, *a: Any, **kw: Any) -> Any:
        import httpx2
        from lightkube import ApiError

        try:
            return fn(*a, **kw)
        except ApiError as e:
            status = e.status
            if (
                status.code == 404
                and status.details
                and status.details.kind == "pipelines"
                and not status.details.name
            ):
                fail(f"the Pipeline CRD is not installed in this cluster: {CRD_FIX}", EXIT_CLUSTER)
            if status.code == 403:
                fail(f"forbidden: {status.message} (ask for RBAC permission to {what})", EXIT_CLUSTER)
            if status.code in {400, 422}:  # the API server refused the input (e.g. an unknown field)
                fail(f"the API server refused to {what}: {status.message}")
            raise
        except httpx2.HTTPStatusError as e:
            # An API group the server does not serve answers a bare 404 page, not a Status.
            if e.response.status_code == 404 and f"/apis/{CRD_GROUP}/" in str(e.request.url):
                fail(f"the Pipeline CRD is not installed in this cluster: {CRD_FIX}", EXIT_CLUSTER)
            raise
        except httpx2.TransportError as e:
            fail(f"cannot reach the cluster at {self.client.config.cluster.server}: {e}", EXIT_CLUSTER)

    def get(self, name: str) -> dict[str, Any]:
        from lightkube import ApiError

        from dataworks.kube.resources import Pipeline

        try:
            obj = self.call("get pipelines", self.client.get, Pipeline, name, namespace=self.namespace)
        except ApiError as e:
            if e.status.code != 404:
                fail(e.status.message or str(e), EXIT_CLUSTER)
            names = [p["metadata"]["name"] for p in self.list()]
            close = difflib.get_close_matches(name, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            fail(f'pipeline "{name}" not found in namespace {self.namespace}{hint}')
        return dict(obj.to_dict())

    def list(self, all_namespaces: bool = False) -> list[dict[str, Any]]:
        from dataworks.kube.resources import Pipeline

        ns = "*" if all_namespaces else self.namespace
        items = self.call("list pipelines", lambda: list(self.client.list(Pipeline, namespace=ns)))
        return [dict(p.to_dict()) for p in items]

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        from lightkube.types import PatchType

        from dataworks.kube.resources import Pipeline

        self.get(name)  # a clear "not found" with suggestions
        self.call(
            "patch pipelines",
            self.client.patch,
            Pipeline,
            name,
            {"spec": spec},
            namespace=self.namespace,
            patch_type=PatchType.MERGE,
        )


def console() -> Any:
    """A Rich console; when output is not a terminal (a pipe, a file), wide enough that
    tables are not truncated to 80 columns."""
    from rich.console import Console

    plain = Console(highlight=False, soft_wrap=True)
    return plain if plain.is_terminal else Console(highlight=False, soft_wrap=True, width=200)


def emit(args: argparse.Namespace, text: str, data: Any) -> None:
    """Print a command's result: its sentence, or (-o json|yaml) the same facts for scripts."""
    output = getattr(args, "output", "table")
    if output == "json":
        print(json.dumps(data, indent=2))
    elif output == "yaml":
        print(yaml.safe_dump(data, sort_keys=False), end="")
    else:
        print(text)


def load_pipelines(path: str, param_pairs: list[str] | None = None) -> list[dict[str, Any]]:
    """The Pipelines in a file (or stdin), with `--param` values filled in."""
    from dataworks.core import params

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        text, missing = params.apply(text, params.parse(param_pairs or []))
        docs = [d for d in yaml.safe_load_all(text) if d]
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")
    except ValueError as e:  # a bad --param pair (yaml.YAMLError is not a ValueError)
        fail(str(e))
    except yaml.YAMLError as e:
        fail(f"{path} is not valid YAML: {e}")
    if missing:
        fail(f"{path}: no value for {', '.join(missing)}; pass --param {missing[0]}=VALUE")
    pipelines = [d for d in docs if isinstance(d, dict) and d.get("kind") == "Pipeline"]
    if not pipelines:
        fail(f"{path} holds no Pipeline (kind: Pipeline, apiVersion: dataworks.io/v1)")
    return pipelines


def validate_or_fail(obj: dict[str, Any], path: str) -> Any:
    from dataworks.core import validation

    name = (obj.get("metadata") or {}).get("name", "?")
    validated, errors = validation.validate_document(obj)
    if errors:
        lines = "\n".join(f"  - {e}" for e in errors)
        fail(f"{path}: pipeline {name} is invalid:\n{lines}")
    return validated


def cmd_run(args: argparse.Namespace) -> int:
    if args.file and args.file_flag:
        fail("give the pipeline file once: either FILE or -f FILE")
    args.file = args.file or args.file_flag
    if not args.file:
        fail("which pipeline? pipeline-ctl run [--local] FILE (or -f FILE)")
    if args.local:
        from dataworks.cli import local

        return local.run_local(args)
    from lightkube import codecs

    from dataworks.kube.resources import Pipeline

    assert Pipeline is not None  # importing it registers the kind with codecs.from_dict

    pipelines = load_pipelines(args.file, args.param)
    checked = [(p, validate_or_fail(p, args.file)) for p in pipelines]
    if args.dry_run:
        return dry_run(checked, args)
    cluster = Cluster(args)
    from dataworks.cli import preflight  # what only the cluster can tell; errors stop the run

    found = preflight.check(cluster, checked, Path(args.file).stem)
    for warning in found.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if found.errors:
        fail("\n".join(found.errors))
    created = []
    for original, _ in checked:
        obj = {**original, "metadata": dict(original.get("metadata") or {})}
        base = args.name or obj["metadata"].get("name") or Path(args.file).stem
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
    from dataworks.api.config import OperatorConfig
    from dataworks.core import naming, planning
    from dataworks.manifests import jobs as manifests

    config = OperatorConfig()
    out: list[dict[str, Any]] = []
    for obj, validated in checked:
        name = args.name or (obj.get("metadata") or {}).get("name", "pipeline")
        owner = manifests.Owner(
            name=name, namespace=args.namespace or "default", uid="00000000-0000-0000-0000-000000000000"
        )
        if any(s.type != "container" for s in validated.steps):
            out.append(manifests.steps_config_map(owner, validated.steps))
        for step in validated.steps:
            launch = planning.Launch(step=step, attempt=1, job_name=naming.job_name(name, step.name, 1))
            out.append(manifests.step_job(owner, launch, validated.spec, config))
    print(yaml.safe_dump_all(out, sort_keys=False), end="")
    return EXIT_OK


def wait_for_end(cluster: Cluster, name: str) -> int:
    from dataworks.kube.resources import Pipeline

    while True:
        phase = (cluster.get(name).get("status") or {}).get("phase")
        if phase in {"Completed", "Failed", "Cancelled"}:
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
            if ((obj.to_dict().get("status") or {}).get("phase")) in {"Completed", "Failed", "Cancelled"}:
                break


def cmd_status(args: argparse.Namespace) -> int:
    if args.local:
        from dataworks.cli import local

        return local.status_local(args)
    from dataworks.cli import formatting

    cluster = Cluster(args)
    now = datetime.now(UTC)
    out = console()
    if args.watch and not args.name:
        fail("--watch follows one pipeline: pipeline-ctl status NAME --watch")
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


def cmd_patch(spec: dict[str, Any], verb: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        cluster = Cluster(args)
        cluster.patch_spec(args.name, spec)
        data = {"name": args.name, "namespace": cluster.namespace, "action": verb}
        emit(args, f"pipeline.dataworks.io/{args.name} {verb}", data)
        return EXIT_OK

    return run


def cmd_retry(args: argparse.Namespace) -> int:
    if args.local:
        from dataworks.cli import local

        return local.retry_local(args)
    cluster = Cluster(args)
    p = cluster.get(args.name)
    statuses = (p.get("status") or {}).get("stepStatuses") or []
    names = {s["name"] for s in statuses}
    if args.step and args.step not in names:
        close = difflib.get_close_matches(args.step, sorted(names), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"its steps: {', '.join(sorted(names)[:10])}"
        fail(f'pipeline {args.name} has no step "{args.step}"; {hint}')
    request: dict[str, Any] = {"id": f"r-{secrets.token_hex(4)}"}
    if args.step:
        request["step"] = args.step
        rerun = [args.step]
    else:
        rerun = [s["name"] for s in statuses if s.get("phase") in {"Failed", "Skipped", "Cancelled"}]
        if not rerun:
            fail(f"pipeline {args.name} has no failed, skipped or cancelled step to retry")
    cluster.patch_spec(args.name, {"retry": request})
    emit(
        args,
        f"pipeline.dataworks.io/{args.name} retry {request['id']} requested; will re-run: {', '.join(rerun)}",
        {"name": args.name, "namespace": cluster.namespace, "retryId": request["id"], "rerun": rerun},
    )
    return EXIT_OK


def cmd_logs(args: argparse.Namespace) -> int:
    if args.local:
        from dataworks.cli import local

        return local.logs_local(args)
    if not args.name:
        fail("which pipeline? pipeline-ctl logs NAME [--step S] [--worker I] [-f]")
    from dataworks.cli import watching
    from dataworks.core import quantities

    try:
        since = int(quantities.parse_duration(args.since)) if args.since else None
    except ValueError as e:
        fail(f"--since {args.since!r}: {e} (for example 10m or 1h)")
    opts = watching.LogOptions(
        args.step, args.worker, args.follow, args.tail, since, args.previous, args.output == "json"
    )
    return watching.logs(Cluster(args), args.name, opts)


def cmd_describe(args: argparse.Namespace) -> int:
    from dataworks.cli import watching

    cluster = Cluster(args)
    if args.output in {"json", "yaml"}:
        emit(args, "", watching.describe_data(cluster, args.name))
        return EXIT_OK
    return watching.describe(cluster, args.name, console())


def cmd_completion(args: argparse.Namespace) -> int:
    from dataworks.cli import completing

    print(completing.script(parser(), args.shell), end="")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    from dataworks.kube.resources import Pipeline

    cluster = Cluster(args)
    cluster.get(args.name)
    cluster.call("delete pipelines", cluster.client.delete, Pipeline, args.name, namespace=cluster.namespace)
    data = {"name": args.name, "namespace": cluster.namespace, "action": "deleted"}
    emit(args, f"pipeline.dataworks.io/{args.name} deleted", data)
    return EXIT_OK


def _add_logs(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    logs = sub.add_parser("logs", parents=parents, help="print a run's step and worker logs")
    logs.add_argument("name", nargs="?", help="the pipeline (--local: the run, default the newest)")
    logs.add_argument("--step", help="only this step")
    logs.add_argument("--worker", type=int, help="only this fan-out worker index")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing until the run ends")
    logs.add_argument("--tail", type=int, metavar="N", help="only the last N lines of each pod")
    logs.add_argument("--since", metavar="DURATION", help="only lines newer than this (10m, 1h)")
    logs.add_argument("--previous", action="store_true", help="only earlier attempts of retried steps")
    logs.add_argument(
        "-o", "--output", choices=["table", "json"], default="table", help="json: one object per line"
    )
    logs.set_defaults(fn=cmd_logs)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="pipeline-ctl", description="Run and inspect dataworks pipelines.")
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
    run.add_argument("--param", action="append", metavar="K=V", help="fill {{ K }} in the file (repeatable)")
    run.add_argument("--max-parallel", type=int, help="--local: at most N steps at once")
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
    status.set_defaults(fn=cmd_status)

    for verb, spec, done, text in (
        ("cancel", {"shutdown": "Terminate"}, "cancelled", "cancel a pipeline (terminal)"),
        ("suspend", {"suspend": True}, "suspended", "pause: no new steps start, running Jobs are suspended"),
        ("resume", {"suspend": False}, "resumed", "resume a suspended pipeline"),
    ):
        p = sub.add_parser(verb, parents=[common, output], help=text)
        p.add_argument("name")
        p.set_defaults(fn=cmd_patch(spec, done))

    retry = sub.add_parser(
        "retry",
        parents=[common, local, output],
        help="re-run failed, skipped and cancelled steps, or one step",
    )
    retry.add_argument("name")
    retry.add_argument("--step", help="re-run only this step")
    retry.add_argument("--max-parallel", type=int, help="--local: at most N steps at once")
    retry.set_defaults(fn=cmd_retry)

    _add_logs(sub, [common, local])

    describe = sub.add_parser(
        "describe",
        parents=[common, output],
        help="one pipeline in full: steps, Jobs, fan-out workers, Events",
    )
    describe.add_argument("name")
    describe.set_defaults(fn=cmd_describe)

    completion = sub.add_parser("completion", help="print a shell completion script (bash, zsh or fish)")
    completion.add_argument("shell", choices=["bash", "zsh", "fish"])
    completion.set_defaults(fn=cmd_completion)

    delete = sub.add_parser("delete", parents=[common, output], help="delete a pipeline and its Jobs")
    delete.add_argument("name")
    delete.set_defaults(fn=cmd_delete)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.fn(args)
        return code
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code


if __name__ == "__main__":
    raise SystemExit(main())
