"""Posts the operator's Kubernetes Events off the reconcile path (I/O layer).

As client-go's EventBroadcaster does, a reconcile only queues its Events; one
sender task posts them in order. A reconcile then ends after its Job and status
writes, and the next step of another pipeline does not wait behind Events.
Events are best-effort in Kubernetes: when the queue is full, or the API
refuses one, the Event is dropped, counted and logged, never retried forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from lightkube import ApiError, AsyncClient
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event

from dataworks.api import pipeline as api
from dataworks.core import planning
from dataworks.manifests import jobs as manifests

log = logging.getLogger("dataworks.operator")

COMPONENT = "dataworks-operator"
QUEUE_SIZE = 1000  # client-go's broadcaster buffers as many
STOP_GRACE = 5.0  # seconds to post what is queued when the operator stops


@dataclass(frozen=True)
class _Queued:
    owner: manifests.Owner
    event: planning.Event
    at: datetime


class EventSender:
    """A queue of Events and the one task that posts them."""

    def __init__(self, client: AsyncClient, queue_size: int = QUEUE_SIZE) -> None:
        self.client = client
        self.dropped = 0
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def send(self, owner: manifests.Owner, event: planning.Event) -> None:
        """Queue an Event on the Pipeline `owner`; never blocks."""
        try:
            self._queue.put_nowait(_Queued(owner, event, datetime.now(UTC)))
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("event queue full: dropped %s on %s/%s", event.reason, owner.namespace, owner.name)

    async def flush(self) -> None:
        """Wait until every queued Event was posted (or dropped)."""
        await self._queue.join()

    async def stop(self) -> None:
        """Post what is queued, for at most STOP_GRACE seconds, then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), STOP_GRACE)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._post(item)
            except (ApiError, OSError) as e:
                self.dropped += 1
                log.warning("event %s on %s dropped: %s", item.event.reason, item.owner.name, e)
            except Exception:
                self.dropped += 1
                log.exception("event %s on %s dropped", item.event.reason, item.owner.name)
            finally:
                self._queue.task_done()

    async def _post(self, item: _Queued) -> None:
        owner, event = item.owner, item.event
        await self.client.create(
            Event(
                metadata=ObjectMeta(name=f"{owner.name}.{uuid.uuid4().hex[:12]}", namespace=owner.namespace),
                involvedObject=ObjectReference(
                    apiVersion=f"{api.GROUP}/{api.VERSION}",
                    kind=api.KIND,
                    name=owner.name,
                    namespace=owner.namespace,
                    uid=owner.uid,
                ),
                reason=event.reason,
                message=event.message[:1024],
                type=event.type,
                source=EventSource(component=COMPONENT),
                reportingComponent=COMPONENT,
                reportingInstance=COMPONENT,
                firstTimestamp=item.at,
                lastTimestamp=item.at,
                count=1,
            )
        )
