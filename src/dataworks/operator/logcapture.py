"""Reading container logs for the job-completion handler (I/O layer).

Each container instance's log streams from the pods/log API into a
`LogBuffer` (head, tail, size, sha256: bounded memory however much was
printed) and, when an artifact store is configured, whole into the store.
At most READS logs are read at once over every Job, so memory stays below
READS x keep_per_container_bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Protocol

from dataworks.api.jobhandler import JobHandlerConfig
from dataworks.core.jobhandler.capture import LogSource
from dataworks.core.jobhandler.logbuffer import Captured, LogBuffer
from dataworks.kube import errors
from dataworks.operator.logstore import FsspecSink

READS = 8


class LogReader(Protocol):
    def log(self, pod: str, namespace: str, container: str, previous: bool) -> AsyncIterator[bytes]: ...


class Counted(Protocol):
    def failed(self, what: str) -> None: ...


class LogCapture:
    def __init__(
        self, config: JobHandlerConfig, sink: FsspecSink | None = None, metrics: Counted | None = None
    ) -> None:
        self.keep, self.sink, self.metrics = config.keep_per_container_bytes, sink, metrics
        self._reads = asyncio.Semaphore(READS)

    async def read_all(
        self, reader: Any, job: dict[str, Any], sources: list[LogSource]
    ) -> list[tuple[Captured, str]]:
        """Each source's log as kept, and the URL of its full copy ("" when none)."""
        return list(await asyncio.gather(*(self._read(reader, job, src) for src in sources)))

    async def _read(self, reader: LogReader, job: dict[str, Any], src: LogSource) -> tuple[Captured, str]:
        buf = LogBuffer(self.keep)
        async with self._reads:
            writer = await self.sink.open(job, src) if self.sink is not None else None
            try:
                async for chunk in reader.log(src.pod, src.namespace, src.container, src.previous):
                    buf.feed(chunk)
                    if writer is not None:
                        await writer.write(chunk)
                return buf.captured(), (await writer.close() if writer is not None else "")
            except errors.KubeError as e:
                # NotFound: the pod is gone; 400: the API cannot serve this instance's log any
                # more ("previous terminated container not found"). Anything else is retried.
                if not isinstance(e, errors.NotFound) and e.code != 400:
                    raise
                if self.metrics is not None:
                    self.metrics.failed("log")
                return buf.captured(error=f"{src.pod}/{src.container}: {e.message}"), ""
