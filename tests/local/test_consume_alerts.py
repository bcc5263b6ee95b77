"""The `alert` processing end to end: `dataworks consume --processing alert` on a real
redis-server (and a real Kafka broker), its alerts in the output stream and at a webhook served
on loopback by the test. The alerts expected are the rules' own (core/streams/alerts.py) over
the messages the generator wrote, so the test checks delivery, completeness and order, not the
rules again. How fast an alert arrives is benchmarks/bench_alerts.py's measure."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from dataworks.core.streams.alerts import Alerts, Rule
from dataworks.streams import sinks
from tests.local import services

CLI = [sys.executable, "-m", "dataworks.cli.main"]
RULES = [
    {"name": "jump", "priceMove": {"percent": 0.05, "windowSeconds": 1}},
    {"name": "block", "when": 'm.type == "trade" && m.volume > 20000'},
]


class Hook:
    """An HTTP server on loopback that keeps every POSTed body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(n)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=t0ps3cret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self) -> list[dict[str, Any]]:
        return [a for body in self.bodies for a in body["alerts"]]


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.server.shutdown()
    h.server.server_close()


def generate(tmp_path: Path, target: str) -> list[dict[str, Any]]:
    out = tmp_path / "sent.jsonl"
    for where in (target, str(out)):
        done = subprocess.run(
            [*CLI, "generate", "-q", "--seed", "6", "--count", "30000", "-o", where],
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


def expected(sent: list[dict[str, Any]]) -> list[tuple[str, str]]:
    rules = Alerts([Rule.of(r) for r in RULES])
    return [(a["rule"], a["message_id"]) for m in sent for a in rules.feed(m)]


def consume(*args: str, alert: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    cmd = [*CLI, "consume", *args, "--group", "g", "--consumer", "a", "--processing", "alert"]
    cmd += ["--alert", json.dumps(alert), "--idle-exit", "2", "--block-ms", "200"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def keyed(alerts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(a["rule"], a["message_id"]) for a in alerts]


def test_every_alert_reaches_the_stream_and_the_webhook_in_order(
    redis_server: services.Redis, hook: Hook, tmp_path: Path
) -> None:
    stream = f"md-{uuid.uuid4().hex[:6]}"
    sent = generate(tmp_path, f"{redis_server.url}?stream={stream}")
    want = expected(sent)
    assert len(want) > 50  # both rules fire, many times
    assert {rule for rule, _ in want} == {"jump", "block"}
    where = ["--redis", redis_server.url, "--stream", stream]
    done = consume(
        *where, alert={"rules": RULES, "stream": f"{stream}-alerts", "webhooks": [{"url": hook.url}]}
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["processed"] == len(sent)
    assert keyed(hook.alerts()) == want  # all, once, in the order of the messages
    r = redis.Redis(port=redis_server.port)
    in_stream = [json.loads(fields[b"alert"]) for _, fields in r.xrange(f"{stream}-alerts")]
    r.close()
    assert keyed(in_stream) == want
    first = in_stream[0]
    assert {"symbol", "sequence_number", "timestamp", "raisedAt"} <= first.keys()
    assert first["raisedAt"] * 1e6 >= first["timestamp"]  # raised after the message's time


def test_a_webhook_that_is_down_is_logged_and_the_stream_still_gets_every_alert(
    redis_server: services.Redis, tmp_path: Path
) -> None:
    stream = f"md-{uuid.uuid4().hex[:6]}"
    sent = generate(tmp_path, f"{redis_server.url}?stream={stream}")
    down = "http://127.0.0.1:9/hook?token=t0ps3cret"  # the discard port: nothing listens
    where = ["--redis", redis_server.url, "--stream", stream]
    done = consume(
        *where, alert={"rules": RULES[1:], "stream": f"{stream}-alerts", "webhooks": [{"url": down}]}
    )
    assert done.returncode == 0, done.stderr
    assert "alert webhook http://127.0.0.1:9/...: ConnectionRefusedError" in done.stderr
    assert "t0ps3cret" not in done.stderr  # a URL's path and query may hold a token: never logged
    r = redis.Redis(port=redis_server.port)
    assert r.xlen(f"{stream}-alerts") == len([k for k in expected(sent) if k[0] == "block"]) > 0
    r.close()


def test_alerts_go_to_a_kafka_topic_keyed_by_symbol(kafka_server: services.Kafka, tmp_path: Path) -> None:
    from confluent_kafka import Consumer

    topic = f"md-{uuid.uuid4().hex[:6]}"
    sent = generate(tmp_path, f"kafka://{kafka_server.bootstrap}?topic={topic}&partitions=1")
    sinks.create_topic(kafka_server.bootstrap, f"{topic}-alerts", 2)
    where = ["--kafka", kafka_server.bootstrap, "--topic", topic]
    done = consume(*where, alert={"rules": RULES, "stream": f"{topic}-alerts"})
    assert done.returncode == 0, done.stderr
    want = expected(sent)  # one partition in: the messages' order is the file's
    c = Consumer({"bootstrap.servers": kafka_server.bootstrap, "group.id": uuid.uuid4().hex,
                  "auto.offset.reset": "earliest"})  # fmt: skip
    c.subscribe([f"{topic}-alerts"])
    got: list[Any] = []
    while len(got) < len(want):
        batch = c.consume(500, timeout=10)
        assert batch, f"{len(got)} of {len(want)} alerts came"
        got += batch
    c.close()
    alerts = [json.loads(m.value()) for m in got]
    assert sorted(keyed(alerts)) == sorted(want)
    assert all(m.key().decode() == a["symbol"] for m, a in zip(got, alerts, strict=True))
    by_symbol: dict[str, list[tuple[str, str]]] = {}
    for a in alerts:  # each symbol's alerts in its partition, in the order raised
        by_symbol.setdefault(a["symbol"], []).append((a["rule"], a["message_id"]))
    for symbol, alerts_of in by_symbol.items():
        assert alerts_of == [k for k in want if k[1].startswith(f"{symbol}-")]


@pytest.mark.parametrize(
    ("alert", "message"),
    [
        (None, "type alert needs alert.rules"),
        ({"rules": [{"name": "x", "when": "m.volume >"}]}, "spec.processing.alert.rules[0].when (x): "),
        ({"rules": [{"name": "x", "when": "volume > 1"}]}, "unknown variable 'volume'"),
        ({"rules": [{"name": "x", "priceMove": {"percent": 0, "windowSeconds": 1}}]}, "greater than 0"),
        ({"rules": []}, "at least 1 item"),
    ],
)
def test_bad_alert_input_is_refused_before_anything_is_read(
    redis_server: services.Redis, alert: dict[str, Any] | None, message: str
) -> None:
    cmd = [*CLI, "consume", "--redis", "redis://127.0.0.1:1/0", "--stream", "s", "--group", "g"]
    cmd += ["--processing", "alert", *(["--alert", json.dumps(alert)] if alert is not None else [])]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
