"""A TCP proxy that cuts every connection it carries at a random moment (a flaky load balancer).

It listens on 127.0.0.1 and forwards bytes untouched (TLS passes through), so a
client pointed at it talks to the real API server, until the proxy cuts its
connection: each connection gets a lifetime drawn from a seeded RNG, and when
that has passed, both sides are closed, whatever is in flight (a request half
sent, an answer half read, a watch, an idle keep-alive connection). Half the
cuts are resets (RST), half orderly closes (FIN). It runs its own event loop
in a thread, so synchronous tests can use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from dataclasses import dataclass


@dataclass
class Counts:
    accepted: int = 0  # connections the proxy carried
    cut: int = 0  # of those, cut while still open at the end of their lifetime
    reset: int = 0  # of the cut ones, with a TCP reset rather than a close


class CuttingProxy:
    """Forwards 127.0.0.1:`port` to `upstream`; every connection lives `lifetime` seconds at most."""

    def __init__(
        self, upstream: tuple[str, int], *, seed: int, lifetime: tuple[float, float] = (1.0, 4.0)
    ) -> None:
        self.upstream, self.lifetime = upstream, lifetime
        self.counts = Counts()
        self.port = 0
        self._rng = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cutting-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        start = asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_: object) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for task in self._handlers:
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.counts.accepted += 1
        lifetime, reset = self._rng.uniform(*self.lifetime), self._rng.random() < 0.5
        sides = [writer]
        pumps: list[asyncio.Task[None]] = []
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            sides.append(up_writer)
            pumps = [
                asyncio.create_task(_pump(reader, up_writer)),
                asyncio.create_task(_pump(up_reader, writer)),
            ]
            _, alive = await asyncio.wait(pumps, timeout=lifetime)
            if alive:
                self.counts.cut += 1
                self.counts.reset += reset
        except OSError:
            pass
        finally:
            for side in sides:
                _close(side, reset)
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._handlers.discard(task)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # pass a half-close on; the other direction may still be busy


def _close(writer: asyncio.StreamWriter, reset: bool) -> None:
    sock = writer.get_extra_info("socket")
    if reset and sock is not None:
        with contextlib.suppress(OSError):  # linger 0: close() sends RST and drops what is unsent
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
