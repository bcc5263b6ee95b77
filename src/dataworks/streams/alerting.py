"""The `alert` processing (edge layer): each batch's alerts sent before it is acknowledged.

A consumer hands over the messages of each batch it processed (decoded, duplicates dropped,
in the order read). The rules (core/streams/alerts.py) raise alerts, in that order, and they go:
- to the output stream, on the source's broker, before the batch's acknowledgement: a Redis
  stream entry with one field, `alert` (JSON), or a Kafka record keyed by symbol, so each
  symbol's alerts stay in order in one partition. An alert sent and then not acknowledged (a
  crash between the two) is sent again with the batch: at least once, like the messages;
- to each webhook, POSTed as `{"alerts": [...]}` by a thread of its own, in order, on a
  kept-alive connection: the consumer does not wait for it (a synchronous POST per batch held
  a 20K messages/s consumer back by a round trip a batch, and the latency's p99 went from 30 ms
  to 200 ms). What queued during a POST goes in the next one. A webhook that fails is retried
  (0.1 s, then 0.5 s), then given up for those alerts and left alone for DOWN_SECONDS, its
  alerts counted and logged: an endpoint that is down does not slow the stream, whose output
  stream keeps every alert. A consumer that stops delivers what is queued first (10 s at most);
  one that is killed loses what was queued for the webhooks, never for the output stream;
- to the log, as JSON lines, when there is neither.

Webhook URLs given by a Secret arrive in the environment, DATAWORKS_WEBHOOK_<i> for the i-th
webhook (manifests/streamingjobs.py), never in the command line.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from dataworks.api.streamalerts import webhook_env
from dataworks.core.streams.alerts import Alerts, Rule
from dataworks.streams import kafkaconf
from dataworks.streams.processing import log

RETRIES = (0.1, 0.5)  # seconds before each retry of a webhook
WEBHOOK_TIMEOUT = 2.0
DOWN_SECONDS = 5.0  # a webhook that failed a batch (retries included) is skipped this long
MAX_BATCH = 1000  # alerts in one POST at most
CLOSE_SECONDS = 10.0  # how long a stopping consumer waits for its webhooks' queues


def webhook_urls(spec: dict[str, Any]) -> list[str]:
    """Each webhook's URL: given, or from the environment (its Secret's value)."""
    urls = []
    for i, hook in enumerate(spec.get("webhooks") or []):
        if hook.get("url"):
            urls.append(hook["url"])
            continue
        value = os.environ.get(webhook_env(i))
        if not value:
            secret = hook.get("secret") or {}
            raise ValueError(
                f"alert.webhooks[{i}]: {webhook_env(i)} is not set (the URL from Secret "
                f"{secret.get('name')}, key {secret.get('key')})"
            )
        urls.append(value)
    return urls


class AlertWriter:
    """The rules over each batch, and the alerts' delivery."""

    def __init__(self, spec: dict[str, Any], *, out: Callable[[list[dict[str, Any]]], None] | None) -> None:
        self.alerts = Alerts([Rule.of(r) for r in spec["rules"]])
        self.out = out  # the output stream's writer (consume.py builds it for the broker)
        self.senders = [Sender(url) for url in webhook_urls(spec)]
        self.raised = 0

    def write(self, messages: list[dict[str, Any]]) -> None:
        """Raise the batch's alerts and send them; raises if the output stream cannot take them
        (then nothing is acknowledged, and the batch comes again)."""
        raised = [a for m in messages for a in self.alerts.feed(m)]
        if not raised:
            return
        now = time.time()
        for a in raised:
            a["raisedAt"] = now
        self.raised += len(raised)
        if self.out is not None:
            self.out(raised)
        for sender in self.senders:
            sender.send(raised)
        if self.out is None and not self.senders:
            for a in raised:
                log(json.dumps(a))

    def close(self) -> None:
        """Deliver what the webhooks still have queued (at most CLOSE_SECONDS)."""
        deadline = time.monotonic() + CLOSE_SECONDS
        for sender in self.senders:
            sender.close(deadline)

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.senders)


class Sender:
    """One webhook's queue and the thread that POSTs it: the consumer never waits for a
    webhook. Whatever is queued when a POST ends goes in the next one (up to MAX_BATCH), so
    a slow endpoint gets fewer, larger requests instead of holding the stream back."""

    def __init__(self, url: str) -> None:
        self.hook = Hook(url)
        self.queue: deque[dict[str, Any]] = deque()
        self.ready = threading.Condition()
        self.closing = False
        self.failed = 0
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"webhook {_safe(url)}")
        self.thread.start()

    def send(self, alerts: list[dict[str, Any]]) -> None:
        with self.ready:
            self.queue.extend(alerts)
            self.ready.notify()

    def close(self, deadline: float) -> None:
        with self.ready:
            self.closing = True
            self.ready.notify()
        self.thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while True:
            with self.ready:
                while not self.queue and not self.closing:
                    self.ready.wait()
                if not self.queue:
                    return
                batch = [self.queue.popleft() for _ in range(min(MAX_BATCH, len(self.queue)))]
            self._post(batch)

    def _post(self, alerts: list[dict[str, Any]]) -> None:
        import http.client

        hook = self.hook
        if time.monotonic() < hook.down_until:  # given up a moment ago: not tried again yet
            self.failed += len(alerts)
            return
        body = json.dumps({"alerts": alerts}).encode()
        problem = ""
        for wait in (*RETRIES, None):
            try:
                status = hook.post(body)
                if status < 300:
                    return
                problem = f"HTTP {status}"
            except (OSError, http.client.HTTPException) as e:  # refused, reset, timed out, TLS
                problem = type(e).__name__
            if wait is None:
                break
            time.sleep(wait)
        self.failed += len(alerts)
        hook.down_until = time.monotonic() + DOWN_SECONDS
        log(
            f"alert webhook {_safe(hook.url)}: {problem}; {len(alerts)} alerts not delivered there, "
            f"and none for the next {DOWN_SECONDS:g} s ({self.failed} in all)"
        )


class Hook:
    """One webhook's kept-alive connection (http.client: one request at a time, in order)."""

    def __init__(self, url: str) -> None:
        from urllib.parse import urlsplit

        u = urlsplit(url)
        self.url = url
        self.https, self.host, self.port = u.scheme == "https", u.hostname or "", u.port
        self.path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        self.conn: Any = None
        self.down_until = 0.0  # after a batch it could not take, it is left alone until then

    def post(self, body: bytes) -> int:
        import http.client

        if self.conn is None:
            kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self.conn = kind(self.host, self.port, timeout=WEBHOOK_TIMEOUT)
        try:
            self.conn.request("POST", self.path, body=body, headers={"Content-Type": "application/json"})
            got = self.conn.getresponse()
            got.read()
            return int(got.status)
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None  # the next try opens a new connection
            raise


def redis_out(r: Any, stream: str) -> Callable[[list[dict[str, Any]]], None]:
    def send(alerts: list[dict[str, Any]]) -> None:
        pipe = r.pipeline(transaction=False)
        for a in alerts:
            pipe.xadd(stream, {"alert": json.dumps(a)})
        pipe.execute()

    return send


def kafka_out(bootstrap: str, topic: str) -> Callable[[list[dict[str, Any]]], None]:
    from confluent_kafka import Producer

    producer = Producer(
        kafkaconf.settings(
            bootstrap, {"acks": "all", "enable.idempotence": True, "linger.ms": 0, "log_level": 2}
        )
    )

    def send(alerts: list[dict[str, Any]]) -> None:
        errors: list[Any] = []
        for a in alerts:
            producer.produce(
                topic,
                key=str(a.get("symbol", "")).encode(),
                value=json.dumps(a).encode(),
                on_delivery=lambda err, _m: errors.append(err) if err is not None else None,
            )
        if producer.flush(30) or errors:
            raise RuntimeError(f"alerts did not reach topic {topic}: {errors or 'flush timed out'}")

    return send


def _safe(url: str) -> str:
    """The URL without its path and query, which may hold a token."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc}/..."
