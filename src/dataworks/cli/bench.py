"""`dataworks bench stream SCENARIO` (edge layer): run a stream benchmark scenario.

Here, the scenario's consumers are processes of this machine; with `--cluster`, its
StreamingJob runs on the cluster, under the operator there (cli/benchcluster.py). The scenario
is validated first (api/benchscenario.py; a bad one is named field by field before anything
starts). The result is a table on the terminal, JSON (`--json`, default
benchmarks/results/stream-<name>.json) and a self-contained HTML page (`--html`, default next
to the JSON). Exit 1 when a message was lost.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dataworks.cli.context import EXIT_FAILED, EXIT_OK, console, fail, need_streams


def add_parser(sub: Any, parents: list[Any]) -> None:
    bench = sub.add_parser("bench", help="benchmarks: `bench stream SCENARIO.yaml`")
    kinds = bench.add_subparsers(dest="bench_kind", required=True)
    p = kinds.add_parser(
        "stream", parents=parents, help="run a stream benchmark scenario here, or on a cluster (--cluster)"
    )
    p.add_argument("scenario", help="a scenario file (see benchmarks/scenarios/)")
    p.add_argument("--json", help="where the result goes (default benchmarks/results/stream-<name>.json)")
    p.add_argument("--html", help="where the report goes (default: the JSON's path, .html)")
    p.add_argument("--keep", help="keep the run's directory (logs, reports, stats) here")
    p.add_argument(
        "--kafka",
        metavar="BOOTSTRAP",
        help="a Kafka scenario's brokers, HOST:PORT (overrides kafka.bootstrap)",
    )
    p.add_argument(
        "--redis",
        metavar="URL",
        help="a Redis scenario's server, redis://[:PASSWORD@]HOST:PORT/DB (overrides redis.url)",
    )
    p.add_argument(
        "--cluster",
        action="store_true",
        help="run the scenario's StreamingJob on the cluster (kubeconfig, -n) under its operator; "
        "the broker (--redis or --kafka) must be reachable from the pods and from here",
    )
    p.set_defaults(fn=cmd_bench_stream)


def load(path: str, kafka: str | None = None, redis: str | None = None) -> Any:
    import yaml
    from pydantic import ValidationError

    from dataworks.api.benchscenario import Scenario

    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        fail(f"scenario {path}: {e.strerror}")
    except yaml.YAMLError as e:
        fail(f"scenario {path}: not YAML: {e}")
    if kafka is not None:
        if not isinstance(raw, dict) or not isinstance(raw.get("kafka"), dict):
            fail(f"scenario {path}: --kafka is for a scenario on Kafka (one with a kafka: section)")
        raw["kafka"]["bootstrap"] = kafka
    if redis is not None:
        if not isinstance(raw, dict) or isinstance(raw.get("kafka"), dict):
            fail(f"scenario {path}: --redis is for a scenario on Redis (one without a kafka: section)")
        raw["redis"] = {**(raw.get("redis") or {}), "url": redis}
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        msg = first["msg"].removeprefix("Value error, ")
        fail(f"scenario {path}: field {field}: {msg}")
    from dataworks.core.kit.quantities import parse_quantity

    resources = scenario.consumers.resources
    for kind, values in (("requests", resources.requests), ("limits", resources.limits)) if resources else ():
        for key, value in (values or {}).items():
            try:
                parse_quantity(value)
            except ValueError as e:
                fail(f"scenario {path}: field consumers.resources.{kind}.{key}: {e}")
    return scenario


def _confine(scenario: Any) -> Any:
    """Each consumer of a fixed group under `consumers.resources`' limits, in a cgroup of its
    own (local/cgroups.py); None without limits."""
    resources = scenario.consumers.resources
    if resources is None:
        return None
    from dataworks.local import cgroups

    limits = cgroups.Limits.of({"resources": resources.model_dump(by_alias=True, exclude_none=True)})
    if not limits:
        return None
    limiter = cgroups.default()

    def confine(name: str, pid: int) -> Any:
        group = limiter.start(f"bench-{scenario.name}-{name}-{pid}", limits, pid)
        return group.remove if group is not None else None

    return confine


def cmd_bench_stream(args: argparse.Namespace) -> int:
    need_streams("bench stream")
    scenario = load(args.scenario, args.kafka, args.redis)
    jobs = _jobs(args, scenario)
    from rich.table import Table

    from dataworks.streams import benching, reporting

    out = Path(args.json or f"benchmarks/results/stream-{scenario.name}.json")
    page = Path(args.html or out.with_suffix(".html"))
    for target in (out, page):
        if not target.parent.is_dir():
            fail(f"cannot write {target}: directory {target.parent} does not exist")
    try:
        keep = Path(args.keep) if args.keep else None
        result = benching.run(scenario, keep=keep, jobs=jobs, confine=_confine(scenario))
    except ValueError as e:  # a fault the scenario's broker cannot take, a name taken on the cluster
        fail(f"scenario {scenario.name}: {e}")
    out.write_text(json.dumps(result, indent=1) + "\n")
    page.write_text(reporting.html_page(result))
    table = Table(title=f"bench stream {scenario.name}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in reporting.rows(result):
        table.add_row(label, value)
    console().print(table)
    print(f"wrote {out} and {page}")
    return EXIT_OK if result["summary"]["lost"] == 0 else EXIT_FAILED


def _jobs(args: argparse.Namespace, scenario: Any) -> Any:
    """How the scenario's StreamingJob runs: here, in the local runtime, or on the cluster."""
    if not args.cluster:
        from dataworks.cli.benchjobs import LocalStreamingJob

        return LocalStreamingJob
    if scenario.streaming_job is None:
        fail(
            f"scenario {scenario.name}: --cluster runs a StreamingJob, and the scenario has no streamingJob:"
        )
    if scenario.kafka is None and not scenario.redis.url:
        fail(
            f"scenario {scenario.name}: --cluster needs a Redis the pods can reach: --redis URL "
            "(the benchmark starts one only on this machine)"
        )
    bad = [a for a in scenario.actions() if a in ("addConsumer", "restartRedis")]
    if bad:
        fail(
            f"scenario {scenario.name}: faults {', '.join(sorted(set(bad)))} are for a run here; on a "
            "cluster the autoscaler adds consumers, and the benchmark restarts only a Redis it started"
        )
    import functools

    from dataworks.cli.benchcluster import ClusterStreamingJob
    from dataworks.cli.context import Cluster

    cluster = Cluster(args)
    return functools.partial(ClusterStreamingJob, cluster=cluster, scenario=scenario.name)
