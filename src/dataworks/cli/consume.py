"""`dataworks consume` (edge layer): one consumer of a Redis stream's or a Kafka topic's group,
as a process.

What a StreamingJob's pod runs, and what the stream benchmark starts locally. It prints its
report as one JSON object on stdout when it stops (SIGTERM, `--limit`, or `--idle-exit`).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from typing import Any

from dataworks.cli.context import EXIT_CLUSTER, EXIT_OK, exit_with_parent, fail, need_streams

PUBLISHED_TTL = 60  # seconds a group's reports outlive its last consumer
BROKER = "broker"  # --report broker: commit reports to the broker read (streams/reportstore.py)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "consume", help="consume a Redis stream or a Kafka topic as one member of a consumer group"
    )
    broker = p.add_mutually_exclusive_group(required=True)
    broker.add_argument("--redis", help="redis://HOST:PORT[/DB] (a password from REDIS_PASSWORD)")
    broker.add_argument("--kafka", metavar="BOOTSTRAP", help="HOST:PORT[,HOST:PORT...] of Kafka brokers")
    p.add_argument("--stream", help="the Redis stream (with --redis)")
    p.add_argument("--topic", help="the Kafka topic (with --kafka)")
    p.add_argument("--group", required=True)
    p.add_argument(
        "--consumer",
        default=os.environ.get("HOSTNAME") or socket.gethostname(),
        help="this consumer's stable name (default: the pod's, $HOSTNAME)",
    )
    p.add_argument(
        "--processing",
        choices=["count", "sql", "sink", "alert"],
        default="count",
        help="count each message; sql: also run --query over each batch; sink: also write each batch "
        "(through --query when given) to --sink-url as Parquet; alert: also evaluate --alert's rules",
    )
    p.add_argument(
        "--alert",
        metavar="JSON",
        help='the alert processing, as a StreamingJob\'s processing.alert: {"rules": [...], "stream": ..., '
        '"webhooks": [...]} (a webhook\'s Secret URL from DATAWORKS_WEBHOOK_<i>)',
    )
    p.add_argument("--query", help="one DuckDB SELECT over each batch, the table `batch` (sql, sink)")
    p.add_argument(
        "--sink-url", help="the folder the Parquet files go to (s3://..., file:///...); credentials from env"
    )
    p.add_argument("--batch", type=int, default=100, help="messages per read (XREADGROUP COUNT)")
    p.add_argument("--block-ms", type=int, default=1000, help="how long a read waits (XREADGROUP BLOCK)")
    p.add_argument(
        "--claim-idle-ms",
        type=int,
        default=30_000,
        help="claim entries a dead consumer left pending this long",
    )
    p.add_argument(
        "--claim-every",
        type=float,
        help="seconds between looks for entries to claim (default: half of --claim-idle-ms, at least 0.2)",
    )
    p.add_argument(
        "--start-from",
        choices=["earliest", "latest"],
        default="earliest",
        help="where a group this consumer creates starts: the stream's first entry, or new entries only",
    )
    p.add_argument(
        "--dedupe", type=int, default=100_000, help="recent message_ids remembered to drop duplicates"
    )
    p.add_argument(
        "--publish-stats",
        action="store_true",
        help="publish each second's figures where the StreamingJob controller reads them: to Redis (hash "
        "dataworks:stats:STREAM:GROUP, a field per consumer), or in the metadata of Kafka offset commits",
    )
    p.add_argument(
        "--alive-file",
        help="touch this file at least once a second while consuming (for a liveness probe)",
    )
    p.add_argument("--limit", type=int, help="stop after this many messages")
    p.add_argument("--idle-exit", type=float, help="stop after this many seconds with nothing to read")
    p.add_argument(
        "--report",
        help="commit the report (what was processed, by sequence number) to this file, atomically, every "
        "--commit-every seconds and at the end, or with `broker` to the broker read (a Redis hash "
        "dataworks:reports:STREAM:GROUP, a Kafka topic TOPIC.reports); messages are acknowledged "
        "only after the report that counts them is committed; {pid} in a path becomes this process's id",
    )
    p.add_argument("--commit-every", type=float, default=1.0, help="seconds between report commits")
    p.add_argument("--stats", help="append per-second figures (rate, busy time, latency) as JSON lines")
    p.add_argument(
        "--reconnect-seconds", type=float, default=60, help="how long a lost Redis connection is retried"
    )
    p.set_defaults(fn=cmd_consume)


def _own(path: str | None) -> str | None:
    """`{pid}` in a path becomes this process's id: a consumer restarted under the same name
    (a pod restarted in place) keeps its predecessor's report instead of writing over it."""
    return path.replace("{pid}", str(os.getpid())) if path else path


def _file_reports(args: argparse.Namespace) -> Any:
    """The --report file's store; None for none, or for `broker` (the caller opens that)."""
    from dataworks.streams.reportstore import FileReports

    path = _own(args.report)
    return FileReports(path) if path and path != BROKER else None


def cmd_consume(args: argparse.Namespace) -> int:
    need_streams("consume")
    exit_with_parent()
    if args.batch < 1 or args.block_ms < 0:
        fail("--batch must be at least 1 and --block-ms at least 0")
    if args.dedupe < 0:
        fail("--dedupe must be at least 0")
    args.batches = getattr(args, "handler", None) or _batches(args)
    if args.kafka:
        return _consume_kafka(args)
    if not args.stream or args.topic:
        fail("--redis reads a stream: give --stream NAME (--topic is for --kafka)")
    return _consume_redis(args)


def _batches(args: argparse.Namespace) -> Any:
    """The sql or sink processing's writer, checked by the StreamingJob's own model first."""
    from pydantic import ValidationError

    from dataworks.api.streamingjob import Processing

    raw: dict[str, Any] = {"type": args.processing}
    if args.query is not None:
        raw["query"] = args.query
    if args.sink_url is not None:
        raw["sink"] = {"url": args.sink_url}
    if args.alert is not None:
        try:
            raw["alert"] = json.loads(args.alert)
        except ValueError as e:
            fail(f"--alert is not JSON: {e}")
    try:
        args.processing_spec = Processing.model_validate(raw)
    except ValidationError as e:
        fail("; ".join(_problem(err) for err in e.errors()))
    if args.processing == "alert":
        from dataworks.core.streams import alerts

        if bad := alerts.problems(raw["alert"].get("rules") or []):
            fail("; ".join(bad))
        return None  # built with the broker's connection, for the output stream (_alert_writer)
    if args.processing == "count":
        return None
    from dataworks.streams.batches import BatchWriter

    try:
        return BatchWriter(args.consumer, query=args.query, sink_url=args.sink_url)
    except Exception as e:  # the store refused or is unreachable: said before anything is read
        first = (str(e).strip().splitlines() or [type(e).__name__])[-1]
        fail(f"cannot write to the sink {args.sink_url}: {first}", EXIT_CLUSTER)


def _problem(err: Any) -> str:
    where = ".".join(str(x) for x in err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _alert_writer(args: argparse.Namespace, out: Any) -> Any:
    """The alert processing's writer; `out(stream)` builds the output stream's sender."""
    from dataworks.streams.alerting import AlertWriter

    spec = args.processing_spec.alert.model_dump(by_alias=True, exclude_none=True)
    try:
        return AlertWriter(spec, out=out(spec["stream"]) if spec.get("stream") else None)
    except ValueError as e:
        fail(str(e))


def _consume_kafka(args: argparse.Namespace) -> int:
    from dataworks.streams.kafkaconsuming import KafkaConsumer, Refused
    from dataworks.streams.processing import Stats

    if not args.topic or args.stream:
        fail("--kafka reads a topic: give --topic NAME (--stream is for --redis)")
    if args.processing == "alert":
        from dataworks.streams.alerting import kafka_out

        args.batches = _alert_writer(args, lambda topic: kafka_out(args.kafka, topic))
    reports = _file_reports(args)
    if args.report == BROKER:
        from dataworks.streams.reportstore import KafkaReports

        reports = KafkaReports(args.kafka, args.topic, args.consumer)
    consumer = KafkaConsumer(
        args.kafka,
        args.topic,
        args.group,
        args.consumer,
        batch=args.batch,
        block_ms=args.block_ms,
        dedupe=args.dedupe,
        start_from=args.start_from,
        stats=Stats(_own(args.stats)),
        reports=reports,
        commit_every=args.commit_every,
        alive_path=args.alive_file,
        publish=args.publish_stats,
        batches=args.batches,
    )
    try:
        report = consumer.run(limit=args.limit, idle_exit=args.idle_exit)
    except Refused as e:
        fail(f"{e} (the KAFKA_* variables set the security protocol, SASL and the CA)", EXIT_CLUSTER)
    print(json.dumps(report.to_json()))
    return EXIT_OK


def _consume_redis(args: argparse.Namespace) -> int:
    import redis

    from dataworks.streams.brokering import stats_key
    from dataworks.streams.consuming import Consumer
    from dataworks.streams.processing import Stats

    if args.report and args.commit_every * 1000 >= args.claim_idle_ms:
        fail("--commit-every must be shorter than --claim-idle-ms: others would claim uncommitted entries")
    if args.claim_every is not None and args.claim_every <= 0:
        fail("--claim-every must be more than 0 seconds")
    r = redis.Redis.from_url(args.redis, password=os.environ.get("REDIS_PASSWORD") or None)
    publish = None
    if args.publish_stats:
        key = stats_key(args.stream, args.group)

        def publish(row: dict[str, Any]) -> None:
            pipe = r.pipeline(transaction=False)
            pipe.hset(key, args.consumer, json.dumps(row))
            pipe.expire(key, PUBLISHED_TTL)
            pipe.execute()

    if args.processing == "alert":
        from dataworks.streams.alerting import redis_out

        args.batches = _alert_writer(args, lambda stream: redis_out(r, stream))
    reports = _file_reports(args)
    if args.report == BROKER:
        from dataworks.streams.reportstore import RedisReports

        reports = RedisReports(r, args.stream, args.group, args.consumer)
    consumer = Consumer(
        r,
        args.stream,
        args.group,
        args.consumer,
        batch=args.batch,
        block_ms=args.block_ms,
        claim_idle_ms=args.claim_idle_ms,
        reconnect_seconds=args.reconnect_seconds,
        stats=Stats(_own(args.stats), publish),
        dedupe=args.dedupe,
        claim_every=args.claim_every,
        start_from="0" if args.start_from == "earliest" else "$",
        alive_path=args.alive_file,
        reports=reports,
        commit_every=args.commit_every,
        batches=args.batches,
    )
    try:
        report = consumer.run(limit=args.limit, idle_exit=args.idle_exit).to_json()
    except redis.ConnectionError as e:
        fail(f"cannot reach Redis at {args.redis}: {e}", EXIT_CLUSTER)
    print(json.dumps(report))
    return EXIT_OK


def run_with(argv: list[str], handler: Any) -> int:
    """`dataworks consume ARGV`, each micro-batch handed to `handler` (a BatchProcessor) before
    it is acknowledged: the container processing's library (dataworks/consumer.py)."""
    from dataworks.cli.context import CliError

    parser = argparse.ArgumentParser(prog="dataworks")
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["consume", *argv])
    args.handler = handler
    try:
        return cmd_consume(args)
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
