"""Retries the API requests of a client whose connections may break (I/O layer).

An httpx transport that wraps the one a lightkube client would use. A request
that fails in transit (the connection was refused, reset or cut, a timeout)
or that the API server answers with a transient status (core.backoffs:
429, 500, 502, 503, 504) is sent again after a capped, jittered exponential
wait, up to the policy's number of tries; the last failure is what the caller
sees. Each retry is one warning line without a traceback: a broken connection
is an expected event, not a bug.

Retrying below lightkube covers every read and write of a client (children,
status, Events, and the lists and gets in between) with one policy. It is
safe because everything the operator writes is idempotent: children and
Events have deterministic names (a retried create that had landed answers
409 AlreadyExists, which the caller treats as done), status and suspend
writes are merge patches, and a retried delete answers 404, which callers
already accept. A client that POSTs with generateName must not use this.

The body of an answer is read here, inside the retry, so that a connection
cut after the headers is retried too; watches and followed logs are streams
that their callers resume, and logs may be gigabytes: both are passed through unread.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable

import httpx2

from dataworks.core.kit import backoffs

log = logging.getLogger("dataworks.kube")

# Failures in transit. Not LocalProtocolError, ProxyError or UnsupportedProtocol:
# those are our own mistakes, and a second try makes the same one.
TRANSIENT_ERRORS: tuple[type[httpx2.TransportError], ...] = (
    httpx2.TimeoutException,
    httpx2.NetworkError,
    httpx2.RemoteProtocolError,
)


class RetryingTransport(httpx2.AsyncBaseTransport):
    """Sends each request through `inner`, again while it fails transiently."""

    def __init__(
        self,
        inner: httpx2.AsyncBaseTransport,
        policy: backoffs.Backoff,
        *,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.inner, self.policy = inner, policy
        self._rand, self._sleep = rand, sleep

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        attempt = 1
        while True:
            retry_after: float | None = None
            try:
                response = await self._send(request)
            except TRANSIENT_ERRORS as e:
                if not self.policy.retries_left(attempt):
                    raise
                why, detail = type(e).__name__, str(e) or "no detail"
            else:
                if not backoffs.transient(response.status_code) or not self.policy.retries_left(attempt):
                    return response
                why, detail = f"HTTP {response.status_code}", response.reason_phrase
                retry_after = _retry_after(response.headers.get("Retry-After"), time.time())
                await response.aclose()
            delay = self.policy.wait(attempt, self._rand(), retry_after)
            log.warning(
                "%s %s failed (%s: %s); try %d of %d in %.2fs",
                request.method,
                request.url.path,
                why,
                detail,
                attempt + 1,
                self.policy.tries,
                delay,
            )
            await self._sleep(delay)
            attempt += 1

    async def _send(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        if _streams(request):
            return response
        try:
            body = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=httpx2.ByteStream(body),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def _streams(request: httpx2.Request) -> bool:
    """A watch or a log: an answer that lasts or may be huge, read by its caller as it comes
    (a log read that breaks is read again from its start by its caller)."""
    params = request.url.params
    return (
        params.get("watch") in {"true", "1"}
        or params.get("follow") in {"true", "1"}
        or request.url.path.endswith("/log")
    )


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad.

    >>> _retry_after("2", 0.0)
    2.0
    >>> _retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 4.0)
    6.0
    >>> _retry_after("soon", 0.0) is None
    True
    """
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None
