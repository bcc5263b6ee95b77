"""Full logs in the artifact store, beside the archive (I/O layer).

When `jobHandler.artifactStore` is an fsspec URL, every container log the
handler reads is also streamed, whole, to
`<store>/job-logs/<namespace>/<job>/<uid>/<pod>/<container>.<run>.log`, and
the archive's result.json points at it. Credentials come from the
operator's environment (a Secret's keys, e.g. AWS_ACCESS_KEY_ID and
AWS_ENDPOINT_URL), never from the configuration file.
"""

from __future__ import annotations

import asyncio
from typing import Any

import fsspec

from dataworks.api.jobhandler import JobHandlerConfig
from dataworks.core.jobhandler.capture import LogSource

CHUNK = 1 << 20  # bytes handed to the store per write


class _Writer:
    def __init__(self, url: str) -> None:
        self.url = url
        self._file: Any = None
        self._pending = bytearray()

    async def write(self, chunk: bytes) -> None:
        self._pending += chunk
        if len(self._pending) >= CHUNK:
            await self._flush()

    async def _flush(self) -> None:
        data, self._pending = bytes(self._pending), bytearray()
        if self._file is None:
            self._file = await asyncio.to_thread(lambda: fsspec.open(self.url, "wb").open())
        await asyncio.to_thread(self._file.write, data)

    async def close(self) -> str:
        await self._flush()
        await asyncio.to_thread(self._file.close)
        return self.url


class FsspecSink:
    def __init__(self, store: str) -> None:
        self.store = store.rstrip("/")

    async def open(self, job: dict[str, Any], source: LogSource) -> _Writer:
        meta = job.get("metadata") or {}
        return _Writer(
            f"{self.store}/job-logs/{meta.get('namespace')}/{meta.get('name')}/{meta.get('uid')}/"
            f"{source.pod}/{source.container}.{source.instance + 1}.log"
        )


def sink(config: JobHandlerConfig) -> FsspecSink | None:
    return FsspecSink(config.artifact_store) if config.artifact_store else None
