"""The retrying transport against a real HTTP server on loopback that misbehaves on cue."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx2
import pytest

from dataworks.core.kit import backoffs
from dataworks.kube import retrying

# What the server does with each request it reads, in order; after the script, 201.
CUT = "cut"  # close the connection without answering
HALF = "half"  # send the headers and part of the body, then close
STREAM = "stream"  # a watch: two lines, then close


@dataclass
class Server:
    script: list[str | int]
    seen: list[str] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(h.split(b":")[1])
                        for h in head.split(b"\r\n")
                        if h.lower().startswith(b"content-length")
                    ),
                    0,
                )
                body = await reader.readexactly(length)
                self.seen.append(head.split(b" ")[0].decode() + " " + body.decode())
                action = self.script.pop(0) if self.script else 201
                if action == CUT:
                    break
                if action == HALF:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"{" * 10)
                    await writer.drain()
                    break
                if action == STREAM:
                    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    for line in (b'{"n":1}\n', b'{"n":2}\n'):
                        writer.write(b"%x\r\n%s\r\n" % (len(line), line))
                    await writer.drain()
                    break
                status = int(action)
                payload = b'{"ok":%d}' % status
                extra = b"Retry-After: 0\r\n" if status == 429 else b""
                writer.write(
                    b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s"
                    % (status, extra, len(payload), payload)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server(script=[])
    listener = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    srv.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield srv


def client(server: Server, policy: backoffs.Backoff, waits: list[float]) -> httpx2.AsyncClient:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    transport = retrying.RetryingTransport(httpx2.AsyncHTTPTransport(), policy, rand=lambda: 0.0, sleep=sleep)
    return httpx2.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", transport=transport)


async def test_broken_connections_and_transient_statuses_are_retried(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    server.script = [CUT, HALF, 503, 429, 500]
    waits: list[float] = []
    with caplog.at_level(logging.INFO, logger="dataworks.kube"):
        async with client(server, backoffs.Backoff(), waits) as c:
            response = await c.post("/api/v1/namespaces/n/events", content=b"same body")
    assert response.status_code == 201
    assert response.json() == {"ok": 201}
    assert server.seen == ["POST same body"] * 6  # every try sends the whole request again
    assert waits == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])
    # One warning per retry, naming the request and the reason, and never a traceback.
    assert [r.levelname for r in caplog.records] == ["WARNING"] * 5
    assert all(r.exc_info is None for r in caplog.records)
    assert "POST /api/v1/namespaces/n/events failed (RemoteProtocolError" in caplog.records[0].getMessage()
    assert "(HTTP 503: X); try 4 of 12 in 0.40s" in caplog.records[2].getMessage()


async def test_answers_that_are_verdicts_are_not_retried(server: Server) -> None:
    server.script = [409, 404, 422, 501]
    waits: list[float] = []
    async with client(server, backoffs.Backoff(), waits) as c:
        codes = [(await c.post("/x", content=b"b")).status_code for _ in range(4)]
    assert codes == [409, 404, 422, 501]
    assert waits == []
    assert len(server.seen) == 4


async def test_the_last_failure_is_the_callers_after_the_last_try(server: Server) -> None:
    server.script = [CUT, CUT, CUT, 503, 503, 503]
    waits: list[float] = []
    policy = backoffs.Backoff(tries=3)
    async with client(server, policy, waits) as c:
        with pytest.raises(httpx2.RemoteProtocolError):
            await c.get("/a")
        assert (await c.get("/b")).status_code == 503
    assert len(server.seen) == 6
    assert waits == pytest.approx([0.1, 0.2, 0.1, 0.2])


async def test_a_watch_is_passed_through_unread(server: Server) -> None:
    server.script = [STREAM]
    waits: list[float] = []
    async with (
        client(server, backoffs.Backoff(), waits) as c,
        c.stream("GET", "/apis/batch/v1/jobs", params={"watch": "true"}) as response,
    ):
        lines: list[str] = []
        with pytest.raises(httpx2.RemoteProtocolError):  # the stream's end is its reader's business
            await read_lines(response, lines)
    assert lines == ['{"n":1}', '{"n":2}']
    assert waits == []


async def read_lines(response: httpx2.Response, into: list[str]) -> None:
    async for line in response.aiter_lines():
        into.append(line)


@pytest.mark.parametrize(
    ("value", "now", "seconds"),
    [
        (None, 0.0, None),
        ("", 0.0, None),
        ("3", 0.0, 3.0),
        ("1.5", 0.0, 1.5),
        ("-2", 0.0, 0.0),
        ("Thu, 01 Jan 1970 00:00:10 GMT", 4.0, 6.0),
        ("Thu, 01 Jan 1970 00:00:10 GMT", 40.0, 0.0),
        ("soon", 0.0, None),
    ],
)
def test_retry_after(value: str | None, now: float, seconds: float | None) -> None:
    assert retrying._retry_after(value, now) == seconds
