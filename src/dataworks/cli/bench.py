"""`dataworks bench stream SCENARIO` (edge layer): run a stream benchmark scenario here.

The scenario is validated first (api/benchscenario.py; a bad one is named field by field before
anything starts). The result is a table on the terminal, JSON (`--json`, default
benchmarks/results/stream-<name>.json) and a self-contained HTML page (`--html`, default
next to the JSON). Exit 1 when a message was lost.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dataworks.cli.context import EXIT_FAILED, EXIT_OK, console, fail, need_streams


def add_parser(sub: Any) -> None:
    bench = sub.add_parser("bench", help="benchmarks: `bench stream SCENARIO.yaml`")
    kinds = bench.add_subparsers(dest="bench_kind", required=True)
    p = kinds.add_parser("stream", help="run a stream benchmark scenario on this machine")
    p.add_argument("scenario", help="a scenario file (see benchmarks/scenarios/)")
    p.add_argument("--json", help="where the result goes (default benchmarks/results/stream-<name>.json)")
    p.add_argument("--html", help="where the report goes (default: the JSON's path, .html)")
    p.add_argument("--keep", help="keep the run's directory (logs, reports, stats) here")
    p.add_argument(
        "--kafka",
        metavar="BOOTSTRAP",
        help="a Kafka scenario's brokers, HOST:PORT (overrides kafka.bootstrap)",
    )
    p.set_defaults(fn=cmd_bench_stream)


def load(path: str, kafka: str | None = None) -> Any:
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
    try:
        return Scenario.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        msg = first["msg"].removeprefix("Value error, ")
        fail(f"scenario {path}: field {field}: {msg}")


def cmd_bench_stream(args: argparse.Namespace) -> int:
    need_streams("bench stream")
    scenario = load(args.scenario, args.kafka)
    from rich.table import Table

    from dataworks.streams import benching, reporting

    out = Path(args.json or f"benchmarks/results/stream-{scenario.name}.json")
    page = Path(args.html or out.with_suffix(".html"))
    for target in (out, page):
        if not target.parent.is_dir():
            fail(f"cannot write {target}: directory {target.parent} does not exist")
    from dataworks.cli.benchjobs import LocalStreamingJob

    result = benching.run(scenario, keep=Path(args.keep) if args.keep else None, jobs=LocalStreamingJob)
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
