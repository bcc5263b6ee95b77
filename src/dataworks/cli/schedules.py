"""`dataworks trigger spl/NAME` (edge layer): run a ScheduledPipeline now, outside its schedule.

As `kubectl create job --from=cronjob/NAME`: the run is built exactly as the
operator builds a scheduled one (manifests.scheduledpipelines, the time being
now), owned by the schedule, so it counts in its history and its concurrency
policy sees it. The name ends in `-m` and six random hex digits.
"""

from __future__ import annotations

import argparse
import secrets
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from dataworks.api import scheduledpipeline as api
from dataworks.cli.context import EXIT_OK, Cluster, emit, fail


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("trigger", parents=parents, help="run a ScheduledPipeline now (spl/NAME)")
    p.add_argument("name", help="spl/NAME")
    p.set_defaults(fn=cmd_trigger)


def cmd_trigger(args: argparse.Namespace) -> int:
    from lightkube import codecs

    from dataworks.cli import kinds
    from dataworks.kube.resources import Pipeline
    from dataworks.manifests import scheduledpipelines as manifests
    from dataworks.manifests.owner import Owner

    assert Pipeline is not None  # importing it registers the kind with codecs.from_dict
    try:
        info, name = kinds.split_ref(args.name)
    except kinds.UnknownKind as e:
        fail(str(e))
    if info.kind != api.KIND:
        fail(f"trigger applies to scheduledpipelines (spl/NAME), not {info.plural}")
    cluster = Cluster(args)
    obj = cluster.get(name, api.INFO)
    try:
        spec = api.ScheduledPipelineSpec.model_validate(obj.get("spec") or {})
    except ValidationError as e:
        fail(f"scheduledpipeline {name} is invalid: {e.errors()[0]['msg']}")
    meta = obj["metadata"]
    owner = Owner(info=api.INFO, name=name, namespace=cluster.namespace, uid=meta["uid"])
    run = manifests.run(owner, spec, f"{name}-m{secrets.token_hex(3)}", datetime.now(UTC))
    cluster.call(
        "create pipelines", cluster.client.create, codecs.from_dict(run), namespace=cluster.namespace
    )
    created = run["metadata"]["name"]
    emit(args, f"pipeline.dataworks.io/{created} created", {"name": created, "namespace": cluster.namespace})
    return EXIT_OK
