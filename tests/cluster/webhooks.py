"""A webhook receiver on loopback for the notification tests: it records the JSON it is sent,
or (broken) answers 500 after a second."""

from __future__ import annotations

import http.server
import json
import threading
import time
from typing import Any


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
