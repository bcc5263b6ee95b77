"""`dataworks run` of a StreamingJob, on a cluster or (--local) on this machine (edge layer).

The file is validated by the model the operator uses, naming each bad field before anything
starts. A cluster run creates the object. A local run hosts the operator's own StreamingJob
controller in the local runtime: the consumers are processes of this machine (the local
kubelet runs the Deployment the cluster would get), scaled by the same planner, until Ctrl-C.
`--redis URL` points the run at a Redis; a password in it (`redis://:PASSWORD@HOST:PORT/DB`)
reaches the consumers as REDIS_PASSWORD and the controller as the password Secret, never the
saved spec. `--kafka HOST:PORT` points a Kafka source at local brokers.
"""

from __future__ import annotations

import argparse
import re
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from dataworks.api import streamingjob as api
from dataworks.cli import kindruns
from dataworks.cli.context import EXIT_OK, console, fail
from dataworks.controllers.streamingjobs import StreamingJobController
from dataworks.core.kit.plan import Event
from dataworks.local.objects import ObjectExecutor
from dataworks.local.runtime import Hooks

EXIT_INTERRUPTED = 130
LOCAL_SECRET = ("local-redis", "password")


def run(args: argparse.Namespace, docs: list[dict[str, Any]]) -> int:
    items = kindruns.checked(docs, args.file, api.INFO)
    if args.dry_run:
        print(yaml.safe_dump_all(items, sort_keys=False), end="")
        return EXIT_OK
    if args.local:
        if len(items) > 1:
            fail(f"{args.file} holds {len(items)} StreamingJobs; --local runs one")
        return run_local(args, items[0])
    if args.redis or args.kafka:
        fail("--redis and --kafka are for --local runs; on a cluster, spec.source names the broker")
    kindruns.create(args, items, api.INFO)
    return EXIT_OK


def local_spec(
    spec: dict[str, Any], redis_url: str | None, kafka: str | None = None
) -> tuple[dict[str, Any], str | None]:
    """The spec a local run saves, and the password to hand over: `--redis` replaces the
    address, and a password in it becomes the (local) password Secret (none in it: none used);
    `--kafka` replaces the bootstrap servers."""
    source = spec["source"]
    if (redis_url and "redis" not in source) or (kafka and "kafka" not in source):
        has, given = ("kafka", "--redis") if redis_url else ("redis", "--kafka")
        fail(f"spec.source names {has}, not what {given} gives: use --{has}")
    if kafka:
        if not re.fullmatch(api.KAFKA_SERVERS, kafka):
            fail(f"--kafka {kafka}: use HOST:PORT[,HOST:PORT...]")
        return {**spec, "source": {"kafka": {**source["kafka"], "bootstrapServers": kafka}}}, None
    if not redis_url:
        return spec, None
    parts = urlsplit(redis_url)
    if parts.scheme not in {"redis", "rediss"}:
        fail(f"--redis {redis_url}: use redis://[:PASSWORD@]HOST:PORT[/DB]")
    host = parts.hostname or "127.0.0.1"
    address = urlunsplit((parts.scheme, f"{host}:{parts.port or 6379}", parts.path or "/0", "", ""))
    source = {**spec["source"]["redis"], "address": address}
    source.pop("passwordSecret", None)  # the URL says it all: a password, or none
    if parts.password:
        source["passwordSecret"] = {"name": LOCAL_SECRET[0], "key": LOCAL_SECRET[1]}
    return {**spec, "source": {**spec["source"], "redis": source}}, parts.password


def run_local(args: argparse.Namespace, obj: dict[str, Any]) -> int:
    import os

    spec, password = local_spec(obj["spec"], args.redis, args.kafka)
    secret = (spec["source"].get("redis") or {}).get("passwordSecret")
    if secret and password is None:
        password = os.environ.get("REDIS_PASSWORD")
        if password is None:
            where = "--redis redis://:PASSWORD@HOST:PORT/DB or $REDIS_PASSWORD"
            fail(
                f"{args.file}: spec.source.redis.passwordSecret names Secret {secret['name']}; "
                f"locally, give {where}"
            )
    run_dir = kindruns.new_run(args, obj, api.INFO, spec)
    out = console()
    out.print(f"run {run_dir.name} in {run_dir.path}; Ctrl-C stops the consumers")
    started = time.monotonic()

    def event(e: Event) -> None:
        out.print(
            f"{time.monotonic() - started:7.2f}s {e.reason}: {e.message}", highlight=False, markup=False
        )

    environ = dict(os.environ)
    executor = ObjectExecutor(run_dir, StreamingJobController(), Hooks(on_event=event), environ)
    if password is not None:
        environ["REDIS_PASSWORD"] = password  # the consumers' secretKeyRef, as the local kubelet reads it
        if secret:
            executor.runtime.node.secrets[(secret["name"], secret["key"])] = password
    outcome = executor.execute()
    st = outcome.status
    out.print(
        f"{run_dir.name}: {st.get('state', 'Pending')}, {st.get('replicas', 0)} consumers, "
        f"lag {st.get('lag')}, {st.get('reclaimed', 0)} reclaimed",
        highlight=False,
        markup=False,
    )
    out.print(f"logs: {run_dir.path / 'logs'}", highlight=False, markup=False)
    return EXIT_INTERRUPTED if outcome.interrupted else EXIT_OK
