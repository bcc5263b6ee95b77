"""Delivering failure notifications (I/O layer): a queue, a sender task, retries with backoff.

The reconciler only enqueues (never awaits a receiver), so a slow or failing
webhook cannot slow pipelines down; each receiver has its own queue and
sender, so one failing webhook cannot delay the others either. Each notice is POSTed with a 5 s timeout
and retried with exponential backoff (0.5 s doubling, 6 tries); receivers'
URLs are read from their Secrets and cached for a minute. What was sent when
is kept in memory for the cooldowns (an operator restart forgets it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from datetime import datetime
from typing import Any

import aiohttp
from lightkube import AsyncClient
from lightkube.resources.core_v1 import Secret

from dataworks.api import pipeline as api
from dataworks.api.config import OperatorConfig
from dataworks.core.pipelines import notifying

log = logging.getLogger("dataworks.notifications")
TRIES, FIRST_DELAY, TIMEOUT, QUEUE = 6, 0.5, 5.0, 1000
URL_CACHE_SECONDS = 60.0


class Notifier:
    def __init__(self, client: AsyncClient, config: OperatorConfig) -> None:
        self.client, self.config = client, config
        self.last_sent: dict[tuple[str, str, str], datetime] = {}
        self.queues: dict[str, asyncio.Queue[notifying.Notice]] = {
            r.name: asyncio.Queue(QUEUE) for r in config.notifications
        }
        self._urls: dict[tuple[str, str], tuple[float, str]] = {}
        self._senders: list[asyncio.Task[None]] = []
        self.delivered = 0

    def start(self) -> None:
        self._senders = [asyncio.create_task(self._run(queue)) for queue in self.queues.values()]

    async def stop(self) -> None:
        for task in self._senders:
            task.cancel()
        for task in self._senders:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def observe(
        self, where: tuple[str, str], old: api.PipelineStatus | None, new: api.PipelineStatus, now: datetime
    ) -> None:
        """Enqueue what this status change calls for; returns at once."""
        if not self.config.notifications:
            return
        for notice in notifying.notices(
            where, old, new, receivers=self.config.notifications, last_sent=self.last_sent, now=now
        ):
            self.last_sent[notice.key] = now
            try:
                self.queues[notice.receiver.name].put_nowait(notice)
            except asyncio.QueueFull:
                log.warning("notification queue of %s full: dropping a notice", notice.receiver.name)

    def anomaly(self, where: tuple[str, str], kind: str, message: str, action: str, now: datetime) -> None:
        """Enqueue a StreamingJob's anomaly (a warning) for each receiver that takes warnings,
        within its cooldown per StreamingJob; returns at once."""
        namespace, name = where
        hint = f"dataworks describe stj/{name} -n {namespace}"
        for r in self.config.notifications:
            if r.min_severity != "warning":
                continue
            key = (r.name, namespace, f"StreamingJob/{name}")
            sent = self.last_sent.get(key)
            if sent is not None and (now - sent).total_seconds() < r.cooldown_seconds:
                continue
            self.last_sent[key] = now
            if r.format == "slack":
                body: dict[str, Any] = {
                    "text": f":warning: *{namespace}/{name}*: {kind}\n> {message}\n`{hint}`"
                }
            else:
                body = {
                    "severity": "warning",
                    "kind": "StreamingJob",
                    "namespace": namespace,
                    "name": name,
                    "reason": kind,
                    "summary": f"anomaly: {kind}",
                    "message": message,
                    "action": action,
                    "hint": hint,
                }
            notice = notifying.Notice(r, "warning", namespace, name, None, kind, message, body=body)
            try:
                self.queues[r.name].put_nowait(notice)
            except asyncio.QueueFull:
                log.warning("notification queue of %s full: dropping a notice", r.name)

    async def _url(self, ref: Any) -> str:
        key = (ref.name, ref.key)
        cached = self._urls.get(key)
        if cached and time.monotonic() - cached[0] < URL_CACHE_SECONDS:
            return cached[1]
        secret = await self.client.get(Secret, ref.name, namespace=self.config.notifications_namespace)
        raw = (secret.data or {}).get(ref.key)
        if raw is None:
            raise KeyError(f"Secret {self.config.notifications_namespace}/{ref.name} has no key {ref.key!r}")
        url = base64.b64decode(raw).decode().strip()
        self._urls[key] = (time.monotonic(), url)
        return url

    async def _run(self, queue: asyncio.Queue[notifying.Notice]) -> None:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                notice = await queue.get()
                try:
                    await self._deliver(session, notice)
                finally:
                    queue.task_done()

    async def _deliver(self, session: aiohttp.ClientSession, notice: notifying.Notice) -> None:
        delay, last_error = FIRST_DELAY, ""
        for attempt in range(1, TRIES + 1):
            try:
                url = await self._url(notice.receiver.url_secret)
                async with session.post(url, json=notifying.payload(notice)) as response:
                    if response.status < 300:
                        self.delivered += 1
                        return
                    last_error = f"HTTP {response.status}"
            except Exception as e:  # unreachable, timed out, Secret missing: retry, then give up
                last_error = f"{type(e).__name__}: {e}"
            if attempt < TRIES:
                await asyncio.sleep(delay)
                delay *= 2
        log.warning(
            "notification to %s about %s/%s failed after %d tries: %s",
            notice.receiver.name,
            notice.namespace,
            notice.pipeline,
            TRIES,
            last_error,
        )
