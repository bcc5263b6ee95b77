"""Benchmark: how soon an alert reaches its webhook, at 5K and 20K messages/s (issue 15; the
target is p99 <= 100 ms at 20K/s).

One redis-server, one `dataworks consume --processing alert` with the latency strategy's reads
(batches of 100, 5 ms blocking), and a webhook served on loopback by this process. The
generator writes at RATE messages/s in real time (timestamps from the wall clock) for SECONDS;
the rule `block-trade` (a trade above 4,500 shares: about 1 % of the messages) fires about 200
times a second at 20K/s, beside a priceMove rule. An alert's latency is its arrival at the
webhook minus the triggering message's `timestamp`: generation, Redis, the read, the rules,
the output stream's XADD and the POST, on one 2-core machine where the producer, Redis, the
consumer and the webhook share the cores. Beside it, the consumer's own end-to-end latency over
every message (its report's histogram), the floor the alerts sit on.

Medians over ROUNDS rounds (env BENCH_ROUNDS, default 3) of each round's percentiles. Writes
benchmarks/results/alerts.json.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import redis
from rich.console import Console
from rich.table import Table

from benchmarks.harness import REPO
from tests.local import services

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
RATES = (5_000, 20_000)
CLI = [sys.executable, "-m", "dataworks.cli.main"]
RULES = [
    {"name": "block-trade", "when": 'm.type == "trade" && m.volume > 4500'},
    {"name": "price-jump", "priceMove": {"percent": 0.5, "windowSeconds": 5}},
]


class Webhook:
    """Loopback HTTP server: each alert's arrival time, minus its message's timestamp."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # kept alive, as the consumer's connection is

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                now = time.time()
                hook.latencies += [now - a["timestamp"] / 1e6 for a in json.loads(body)["alerts"]]
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def one_round(server: services.Redis, rate: int, i: int) -> dict[str, Any]:
    stream = f"alerts-{rate}-{i}"
    hook = Webhook()
    alert = {"rules": RULES, "stream": f"{stream}-out", "webhooks": [{"url": hook.url}]}
    consumer = subprocess.Popen(
        [*CLI, "consume", "--redis", server.url, "--stream", stream, "--group", "g", "--consumer", "a",
         "--processing", "alert", "--alert", json.dumps(alert), "--batch", "100", "--block-ms", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(2)  # the consumer's start-up and its group
    target = f"{server.url}?stream={stream}"
    produced = subprocess.run(
        [*CLI, "generate", "-q", "--realtime", "--seed", str(i), "--rate", str(rate),
         "--duration", str(SECONDS), "-o", target],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert produced.returncode == 0, produced.stderr
    r = redis.Redis(port=server.port)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        g = r.xinfo_groups(stream)[0]
        if not g["lag"] and not g["pending"]:
            break
        time.sleep(0.1)
    sent_alerts = r.xlen(f"{stream}-out")
    r.close()
    time.sleep(0.5)
    consumer.send_signal(signal.SIGTERM)
    out, err = consumer.communicate(timeout=60)
    assert consumer.returncode == 0, err
    report = json.loads(out)
    hook.server.shutdown()
    hook.server.server_close()
    lat = np.asarray(hook.latencies) * 1000
    assert len(lat) == sent_alerts, (len(lat), sent_alerts)  # every alert reached the webhook
    p50, p99, p999 = (float(x) for x in np.percentile(lat, [50, 99, 99.9]))
    return {
        "rate": rate,
        "messages": report["processed"],
        "alerts": len(lat),
        "alert_p50_ms": round(p50, 2),
        "alert_p99_ms": round(p99, 2),
        "alert_p999_ms": round(p999, 2),
        "message_p50_ms": report["latencyMs"]["p50"],
        "message_p99_ms": report["latencyMs"]["p99"],
    }


def main() -> None:
    rows: dict[int, list[dict[str, Any]]] = {rate: [] for rate in RATES}
    with tempfile.TemporaryDirectory() as d, services.redis(Path(d)) as server:
        for i in range(ROUNDS):
            for rate in RATES:
                rows[rate].append(one_round(server, rate, i))
                print(rows[rate][-1])
    keys = ("alerts", "alert_p50_ms", "alert_p99_ms", "alert_p999_ms", "message_p50_ms", "message_p99_ms")
    medians = {rate: {k: statistics.median(x[k] for x in rows[rate]) for k in keys} for rate in RATES}
    result = {
        "seconds": SECONDS,
        "rules": RULES,
        "rounds": rows,
        "median": medians,
        "target_p99_ms_at_20k": 100,
    }
    (REPO / "benchmarks" / "results" / "alerts.json").write_text(json.dumps(result, indent=1) + "\n")
    table = Table(title=f"alert latency, message timestamp to webhook arrival, median of {ROUNDS} rounds")
    for col in ("messages/s", "alerts", "p50 ms", "p99 ms", "p99.9 ms", "messages p50 / p99 ms", "target"):
        table.add_column(col)
    for rate in RATES:
        m = medians[rate]
        table.add_row(
            f"{rate:,}",
            f"{m['alerts']:,.0f}",
            f"{m['alert_p50_ms']:.1f}",
            f"{m['alert_p99_ms']:.1f}",
            f"{m['alert_p999_ms']:.1f}",
            f"{m['message_p50_ms']:.1f} / {m['message_p99_ms']:.1f}",
            "p99 <= 100 ms" if rate == 20_000 else "",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
