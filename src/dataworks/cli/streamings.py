"""`dataworks describe stj/NAME` and `dataworks scale stj/NAME` (edge layer).

`describe` shows the live figures the operator measured (the same as `get stj`'s columns, and
more): consumers, lag, rates, latency, the active strategy and why, the last scaling decision,
reclaimed entries, the conditions and the Events. `scale` sets `spec.replicas`, the manual
override the autoscaler then follows, or removes it (`--auto`), as `kubectl scale` would
through the scale subresource.
"""

from __future__ import annotations

import argparse
from typing import Any

from dataworks.api import streamingjob as api
from dataworks.cli import kindruns
from dataworks.cli.context import EXIT_OK, Cluster, emit, fail


def _figure(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}{unit}"
    return f"{value:,}{unit}" if isinstance(value, int) else f"{value}{unit}"


def lines(obj: dict[str, Any]) -> list[str]:
    """The human-readable summary of one StreamingJob."""
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    meta = obj.get("metadata") or {}
    source = spec.get("source") or {}
    kafka = source.get("kafka")
    if kafka:
        where = f"topic {kafka.get('topic')} group {kafka.get('group')} at {kafka.get('bootstrapServers')}"
        if st.get("partitions") is not None:
            where += f", {st['partitions']} partitions (the most consumers)"
    else:
        src = source.get("redis") or {}
        where = f"stream {src.get('stream')} group {src.get('group')} at {src.get('address')}"
    scaling = spec.get("scaling") or {}
    manual = spec.get("replicas")
    mode = f"manual ({manual}, dataworks scale --auto returns it)" if manual is not None else "automatic"
    exact = "" if st.get("lagExact", True) else " (estimated)"
    out = [
        f"Name:        {meta.get('namespace', '')}/{meta.get('name', '')}",
        f"State:       {st.get('state', 'Pending')}  {st.get('message') or ''}".rstrip(),
        f"Source:      {where}",
        f"Consumers:   {st.get('readyReplicas', 0)} ready of {st.get('replicas', 0)}, "
        f"{_figure(st.get('desiredReplicas'))} wanted, {scaling.get('minReplicas', 1)}-"
        f"{scaling.get('maxReplicas', 10)}; {mode}",
        f"Strategy:    {st.get('strategy') or '-'}  ({st.get('strategyReason') or 'not chosen yet'})",
        f"Lag:         {_figure(st.get('lag'))}{exact} waiting"
        + ("" if kafka else f", {_figure(st.get('pending'))} pending"),
        f"Rates:       {_figure(st.get('arrivalRate'), '/s')} arriving, "
        f"{_figure(st.get('processingRate'), '/s')} processed, "
        f"{_figure(st.get('consumerRate'), '/s')} per busy consumer",
        f"Latency:     p50 {_figure(st.get('latencyP50Ms'), ' ms')}, "
        f"p99 {_figure(st.get('latencyP99Ms'), ' ms')}",
    ]
    decision = st.get("lastDecision")
    if decision:
        out.append(
            f"Decision:    {decision.get('reason')} to {decision.get('replicas')} at {decision.get('time')}: "
            f"{decision.get('message') or ''}".rstrip()
        )
    if st.get("reclaimed"):
        out.append(f"Reclaimed:   {st['reclaimed']:,} entries of gone consumers")
    for a in st.get("anomalies") or []:
        out.append(f"Anomaly:     {a.get('type')} since {a.get('since')}: {a.get('message') or ''}".rstrip())
    out.append(f"Updated:     {st.get('lastReconcileTime') or '-'}")
    for c in st.get("conditions") or []:
        out.append(f"Condition:   {c.get('type')}={c.get('status')}  {c.get('reason') or ''}".rstrip())
    return out


def describe(cluster: Cluster, name: str, args: argparse.Namespace) -> int:
    return kindruns.describe(cluster, name, args, api.INFO, lines)


def scale(cluster: Cluster, name: str, args: argparse.Namespace) -> int:
    """Set (or, with --auto, remove) the manual override of the consumer count."""
    if args.auto == (args.replicas is not None):
        fail("scale needs exactly one of --replicas N or --auto")
    if args.replicas is not None and not 0 <= args.replicas <= api.MAX_REPLICAS:
        fail(f"--replicas must be between 0 and {api.MAX_REPLICAS}")
    cluster.patch_spec(name, {"replicas": None if args.auto else args.replicas}, api.INFO)
    what = "automatic scaling" if args.auto else f"{args.replicas} consumers (manual)"
    data = {"name": name, "namespace": cluster.namespace, "replicas": args.replicas, "auto": args.auto}
    emit(args, f"{api.INFO.singular}.{api.INFO.group}/{name} scaled: {what}", data)
    return EXIT_OK


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "scale",
        parents=parents,
        help="set a StreamingJob's consumer count by hand (stj/NAME --replicas N), or return it to the "
        "autoscaler (--auto)",
    )
    p.add_argument("name", help="stj/NAME")
    p.add_argument("--replicas", type=int, help="the consumer count, a manual override")
    p.add_argument("--auto", action="store_true", help="remove the override: the autoscaler decides")
    p.set_defaults(fn=cmd_scale)


def cmd_scale(args: argparse.Namespace) -> int:
    from dataworks.cli import kinds

    try:
        info, name = kinds.split_ref(args.name)
    except kinds.UnknownKind as e:
        fail(str(e))
    if info.kind != api.KIND:
        fail(f"scale applies to streamingjobs (stj/NAME), not {info.plural}")
    return scale(Cluster(args), name, args)


def add_run_arguments(run: Any) -> None:
    """`dataworks run`'s flags for a local StreamingJob: the broker to consume."""
    run.add_argument(
        "--redis", help="--local StreamingJob: the Redis to consume, redis://[:PASSWORD@]HOST:PORT/DB"
    )
    run.add_argument(
        "--kafka", metavar="BOOTSTRAP", help="--local StreamingJob: the Kafka to consume, HOST:PORT[,...]"
    )
