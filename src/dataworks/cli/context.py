"""What every command shares (edge layer): exit codes, errors, the cluster client, output.

Commands import this module, never each other, so the CLI has no import
cycle (a `layers` contract in pyproject.toml proves it). `Cluster` wraps the
one client library: a missing CRD, a refusal or an unreachable server becomes
a one-line error with exit code 3.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml

if TYPE_CHECKING:  # pydantic loads only when a command needs it: `--help` stays fast
    from dataworks.api.meta import KindInfo

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CLUSTER = 0, 1, 2, 3
CRD_FIX = "kubectl apply --server-side -k deploy/crds"


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    raise CliError(message, code)


PARENT_ENV = "DATAWORKS_EXIT_WITH_PARENT"


def exit_with_parent() -> None:
    """With DATAWORKS_EXIT_WITH_PARENT=PID in the environment (`bench stream` sets it for the
    consumers and the producer it starts), this process gets SIGTERM, and stops as SIGTERM
    stops it, once PID is no longer its parent: a benchmark that is killed leaves nothing
    running. Checked once a second, on a daemon thread."""
    import os
    import signal
    import threading
    import time

    parent = os.environ.get(PARENT_ENV)
    if not parent or not parent.isdigit():
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def need_streams(command: str) -> None:
    """The stream commands need the `streams` extra; without it, say how to install it."""
    import importlib.util

    missing = [
        m
        for m in ("numpy", "redis", "confluent_kafka", "psutil", "matplotlib")
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        fail(
            f"dataworks {command} needs the streams extra ({', '.join(missing)} missing): "
            "pip install 'dataworks[streams]' (from a checkout: pip install -e '.[streams]')"
        )


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
        """Call the API; a missing CRD, a refusal or an unreachable server is a one-line error
        (exit 3). Other failures are raised as typed errors (kube.errors)."""
        from dataworks.kube import errors

        try:
            with errors.typed():
                return fn(*a, **kw)
        except errors.KubeError as e:
            if (info := errors.crd_missing(e)) is not None:
                fail(f"the {info.kind} CRD is not installed in this cluster: {CRD_FIX}", EXIT_CLUSTER)
            if isinstance(e, errors.Forbidden):
                fail(f"forbidden: {e.message} (ask for RBAC permission to {what})", EXIT_CLUSTER)
            if isinstance(e, errors.Invalid) or e.code == 400:  # the API server refused the input
                fail(f"the API server refused to {what}: {e.message}")
            if isinstance(e, errors.Unreachable):
                fail(f"cannot reach the cluster at {self.client.config.cluster.server}: {e}", EXIT_CLUSTER)
            raise

    def template(self, name: str) -> dict[str, Any] | None:
        """The PipelineTemplate `name` in this namespace, or None."""
        from dataworks.api import pipelinetemplate
        from dataworks.kube import errors, resources

        try:
            obj = self.call(
                "get pipelinetemplates",
                self.client.get,
                resources.of(pipelinetemplate.INFO),
                name,
                namespace=self.namespace,
            )
        except errors.NotFound:
            return None
        except errors.KubeError as e:
            fail(e.message or str(e), EXIT_CLUSTER)
        return dict(obj.to_dict())

    def get(self, name: str, info: KindInfo | None = None) -> dict[str, Any]:
        from dataworks.kube import errors, resources

        info = info or _pipeline()
        try:
            obj = self.call(
                f"get {info.plural}", self.client.get, resources.of(info), name, namespace=self.namespace
            )
        except errors.NotFound:
            names = [p["metadata"]["name"] for p in self.list(info=info)]
            close = difflib.get_close_matches(name, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            fail(f'{info.singular} "{name}" not found in namespace {self.namespace}{hint}')
        except errors.KubeError as e:
            fail(e.message or str(e), EXIT_CLUSTER)
        return dict(obj.to_dict())

    def list(self, all_namespaces: bool = False, info: KindInfo | None = None) -> list[dict[str, Any]]:
        from dataworks.kube import resources

        info = info or _pipeline()
        ns = "*" if all_namespaces else self.namespace
        items = self.call(
            f"list {info.plural}", lambda: list(self.client.list(resources.of(info), namespace=ns))
        )
        return [dict(p.to_dict()) for p in items]

    def patch_spec(self, name: str, spec: dict[str, Any], info: KindInfo | None = None) -> None:
        from lightkube.types import PatchType

        from dataworks.kube import resources

        info = info or _pipeline()
        self.get(name, info)  # a clear "not found" with suggestions
        self.call(
            f"patch {info.plural}",
            self.client.patch,
            resources.of(info),
            name,
            {"spec": spec},
            namespace=self.namespace,
            patch_type=PatchType.MERGE,
        )

    def delete(self, name: str, info: KindInfo | None = None) -> None:
        from dataworks.kube import resources

        info = info or _pipeline()
        self.get(name, info)
        self.call(
            f"delete {info.plural}", self.client.delete, resources.of(info), name, namespace=self.namespace
        )


def _pipeline() -> KindInfo:
    from dataworks.api import pipeline

    return pipeline.INFO


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


def load_pipelines(
    path: str, param_pairs: list[str] | None = None, docs: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The Pipelines in a file (or stdin), with `--param` values filled in (or among `docs`,
    the file's documents already read)."""
    docs = load_documents(path, param_pairs) if docs is None else docs
    pipelines = [d for d in docs if d.get("kind") == "Pipeline"]
    if not pipelines:
        fail(f"{path} holds no Pipeline (kind: Pipeline, apiVersion: dataworks.io/v1)")
    return pipelines


def load_documents(path: str, param_pairs: list[str] | None = None) -> list[dict[str, Any]]:
    """The YAML documents (objects) in a file (or stdin), with `--param` values filled in."""
    from dataworks.core.kit import params

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        text, missing = _fill(text, params.parse(param_pairs or []))
        docs = [d for d in yaml.safe_load_all(text) if d]
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")
    except ValueError as e:  # a bad --param pair (yaml.YAMLError is not a ValueError)
        fail(str(e))
    except yaml.YAMLError as e:
        fail(f"{path} is not valid YAML: {e}")
    if missing:
        fail(f"{path}: no value for {', '.join(missing)}; pass --param {missing[0]}=VALUE")
    return [d for d in docs if isinstance(d, dict)]


_DOCUMENT = re.compile(r"^---[ \t]*(?:#.*)?$", re.M)
_TEMPLATE_KIND = re.compile(r"^kind:\s*PipelineTemplate\s*$", re.M)


def _fill(text: str, values: dict[str, str]) -> tuple[str, list[str]]:
    """`--param` values in every document of a file but its PipelineTemplates, whose
    `{{.name}}` placeholders are the template's own parameters."""
    from dataworks.core.kit import params

    parts, missing, at = [], [], 0
    for m in [*_DOCUMENT.finditer(text), None]:
        end = m.start() if m else len(text)
        chunk = text[at:end]
        if not _TEMPLATE_KIND.search(chunk):
            chunk, gaps = params.apply(chunk, values)
            missing += gaps
        parts.append(chunk + (m.group(0) if m else ""))
        at = m.end() if m else end
    return "".join(parts), sorted(set(missing))


def validate_or_fail(obj: dict[str, Any], path: str) -> Any:
    from dataworks.core.pipelines import validation

    name = (obj.get("metadata") or {}).get("name", "?")
    validated, errors = validation.validate_document(obj)
    if errors:
        lines = "\n".join(f"  - {e}" for e in errors)
        fail(f"{path}: pipeline {name} is invalid:\n{lines}")
    return validated


def events_of(cluster: Cluster, name: str, kind: str = "Pipeline") -> list[dict[str, Any]]:
    """The Events of one object of `kind` in the cluster's namespace."""
    from lightkube.resources.core_v1 import Event

    found = cluster.call(
        "list events",
        lambda: list(
            cluster.client.list(
                Event,
                namespace=cluster.namespace,
                fields={"involvedObject.name": name, "involvedObject.kind": kind},
            )
        ),
    )
    return [dict(e.to_dict()) for e in found]
