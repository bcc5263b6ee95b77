"""Templates for `dataworks run` (edge layer): `--template NAME -p k=v`, `--template-file`, and
the PipelineTemplates a file holds.

A templated Pipeline (`spec.template`) is expanded here with the operator's own
code (core.pipelines.templates), so bad parameters are refused before anything
runs:
- with the template in a file (the run's own file, or `--template-file`), the
  expanded pipeline is what runs, locally or on a cluster (annotated
  `dataworks.io/template` with the template's name);
- otherwise, on a cluster, the template is read from the cluster to check the
  parameters, and the Pipeline is created as written: the operator expands it
  and records the expansion in its status. `--local` needs the template in a file.
"""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from dataworks.api import pipelinetemplate as tapi
from dataworks.cli.context import fail, load_documents
from dataworks.core.kit import params

TEMPLATE_ANNOTATION = "dataworks.io/template"


def from_flags(args: argparse.Namespace, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's documents: with `--template NAME`, a Pipeline using it, filled by `--param`."""
    if not getattr(args, "template", None):
        return docs
    try:
        values = params.parse(args.param or [])
    except ValueError as e:
        fail(str(e))
    pipeline = {
        "apiVersion": "dataworks.io/v1",
        "kind": "Pipeline",
        "metadata": {"name": args.name or args.template},
        "spec": {"template": args.template, "parameters": values},
    }
    return [pipeline, *docs]


def templates_in(
    args: argparse.Namespace, docs: list[dict[str, Any]]
) -> dict[str, tapi.PipelineTemplateSpec]:
    """Every PipelineTemplate of the run's file and of `--template-file`, by name."""
    found = [d for d in docs if d.get("kind") == tapi.KIND]
    for path in getattr(args, "template_file", None) or []:
        found += [d for d in load_documents(path, None) if d.get("kind") == tapi.KIND]
    out: dict[str, tapi.PipelineTemplateSpec] = {}
    for doc in found:
        name = str((doc.get("metadata") or {}).get("name") or "")
        try:
            out[name] = tapi.PipelineTemplateSpec.model_validate(doc.get("spec") or {})
        except ValidationError as e:
            where = "; ".join(
                f"spec.{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()
            )
            fail(f"PipelineTemplate {name} is invalid: {where}")
    return out


def expand(obj: dict[str, Any], template: tapi.PipelineTemplateSpec) -> dict[str, Any]:
    """A templated Pipeline as the pipeline it runs, or fail naming the parameter."""
    from dataworks.core.pipelines import templates

    spec = obj.get("spec") or {}
    name = str(spec["template"])
    expanded, _, errors = templates.expand(spec, template, name)
    if expanded is None:
        lines = "\n".join(f"  - {e}" for e in errors)
        fail(f"pipeline {(obj.get('metadata') or {}).get('name', '?')}: template {name}:\n{lines}")
    meta = dict(obj.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), TEMPLATE_ANNOTATION: name}
    return {**obj, "metadata": meta, "spec": expanded}


def resolve(
    args: argparse.Namespace, docs: list[dict[str, Any]], fetch: Any = None
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(what to create, what to validate) for each Pipeline: templated ones expanded from the
    files, or checked against `fetch(name)` (the cluster's template, or None)."""
    known = templates_in(args, docs)
    out = []
    for obj in docs:
        if obj.get("kind") != "Pipeline":
            continue
        name = (obj.get("spec") or {}).get("template")
        if not isinstance(name, str):
            out.append((obj, obj))
            continue
        if name in known:
            expanded = expand(obj, known[name])
            out.append((expanded, expanded))
            continue
        body = fetch(name) if fetch is not None else None
        if body is None:
            where = "in the cluster's namespace" if fetch is not None else "here"
            fail(
                f"pipeline {(obj.get('metadata') or {}).get('name', '?')}: PipelineTemplate {name!r} "
                f"is not found {where}; give its file with --template-file"
            )
        try:
            spec = tapi.PipelineTemplateSpec.model_validate(body.get("spec") or {})
        except ValidationError as e:
            fail(f"PipelineTemplate {name} is invalid: {e.errors()[0]['msg']}")
        out.append((obj, expand(obj, spec)))  # created as written: the operator expands it
    return out


def add_run_arguments(run: Any) -> None:
    """`dataworks run`'s flags for PipelineTemplates."""
    run.add_argument("--template", metavar="NAME", help="run PipelineTemplate NAME with -p parameters")
    run.add_argument(
        "--template-file",
        action="append",
        metavar="FILE",
        help="PipelineTemplates to expand templated pipelines with (repeatable; default: the cluster's)",
    )
