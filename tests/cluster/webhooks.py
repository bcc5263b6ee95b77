"""A webhook receiver on loopback for the notification tests: it records the JSON it is sent,
or (broken) answers 500 after a second."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.cluster.conftest import Cluster, Operator


class Receiver:
    """An HTTP server on loopback that records the JSON it is sent (or answers 500, slowly)."""

    def __init__(self, *, broken: bool = False) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if broken:
                    time.sleep(1)
                    self.send_response(500)
                else:
                    received.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def configured(operator: Operator, cluster: Cluster, config: dict[str, Any], where: Path) -> Iterator[None]:
    """The session's operator replaced, meanwhile, by one run with `config` (its notifications)."""
    (where / "config.yaml").write_text(yaml.safe_dump(config))
    operator.stop()
    own = Operator(cluster.kubeconfig, where / "operator.log", "--config", str(where / "config.yaml"))
    own.start()
    try:
        yield
    finally:
        own.stop()
        operator.start()
