"""Posts the operator's Kubernetes Events off the reconcile path (I/O layer).

As client-go's EventBroadcaster does, a reconcile only queues its Events, and
a few sender tasks post them. A reconcile then ends after its Job and status
writes, and the next step of another pipeline does not wait behind Events.
Each Event keeps the time it was queued as its eventTime (microseconds,
strictly increasing), so their order survives concurrent posting. A full
queue slows the reconciles that add to it (nothing is dropped for speed).

An Event's name is fixed when it is queued (its pipeline's name and a hash of
the pipeline's uid, reason, message, queue time and a sequence number), so a
POST sent again is the same Event, never a second one. The operator's client
sends again whatever broke in transit or met a transient status, up to 12
tries as client-go's broadcaster does (kube/retrying.py); a 409 AlreadyExists
then means an earlier try had landed, and counts as posted. An Event the API
refuses (or that still fails after every try) is logged as a warning and
counted as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx2
from lightkube import ApiError, AsyncClient
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event

from dataworks.core.kit import plan as kitplan
from dataworks.manifests import jobs as manifests

log = logging.getLogger("dataworks.operator")

COMPONENT = "dataworks-operator"
QUEUE_SIZE = 1000  # client-go's broadcaster buffers as many
SENDERS = 4  # one sender, at one round trip per Event, fell behind 200 pipelines at once
STOP_GRACE = 5.0  # seconds to post what is queued when the operator stops
MAX_NAME = 253  # an Event's name is a DNS subdomain
ACTION = "Reconcile"  # what the operator was doing; an Event with an eventTime must say


@dataclass(frozen=True)
class _Queued:
    owner: manifests.Owner
    event: kitplan.Event
    at: datetime
    name: str


def event_name(owner: manifests.Owner, event: kitplan.Event, at: datetime, sequence: int) -> str:
    """The Event's name: the same for every try of one Event, different for any two Events."""
    key = "\0".join([owner.uid, event.reason, event.message, at.isoformat(), str(sequence)])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    prefix = owner.name[: MAX_NAME - len(digest) - 1].rstrip("-.")
    return f"{prefix}.{digest}"


class EventSender:
    """A queue of Events and the tasks that post them."""

    def __init__(
        self, client: AsyncClient, queue_size: int = QUEUE_SIZE, counted: Callable[[str], None] | None = None
    ) -> None:
        """`counted` is told "posted" or "failed" for each Event (the operator's metrics)."""
        self.client = client
        self._counted = counted or (lambda result: None)
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue(maxsize=queue_size)
        self._tasks: list[asyncio.Task[None]] = []
        self._sequence = itertools.count()
        self._last = datetime.min.replace(tzinfo=UTC)

    def start(self, senders: int = SENDERS) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run()) for _ in range(senders)]

    async def send(self, owner: manifests.Owner, event: kitplan.Event) -> None:
        """Queue an Event on `owner`; waits only while the queue is full."""
        if not self._tasks:
            self.start()
        at = self._last = max(datetime.now(UTC), self._last + timedelta(microseconds=1))
        await self._queue.put(_Queued(owner, event, at, event_name(owner, event, at, next(self._sequence))))

    async def post_once(self, owner: manifests.Owner, event: kitplan.Event) -> None:
        """Post an Event now, named by its owner's uid and reason only: a second post of it,
        after any restart, answers AlreadyExists and is the same Event. Raises if it fails."""
        at = self._last = max(datetime.now(UTC), self._last + timedelta(microseconds=1))
        digest = hashlib.sha256(f"{owner.uid}\0{event.reason}".encode()).hexdigest()[:16]
        name = f"{owner.name[: MAX_NAME - len(digest) - 1].rstrip('-.')}.{digest}"
        try:
            await self._post(_Queued(owner, event, at, name))
        except ApiError as e:
            if e.status.code != 409:
                self._counted("failed")
                raise
        self._counted("posted")

    async def flush(self) -> None:
        """Wait until every queued Event was posted (or dropped)."""
        await self._queue.join()

    async def stop(self) -> None:
        """Post what is queued, for at most STOP_GRACE seconds, then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), STOP_GRACE)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            result = "failed"
            try:
                await self._post(item)
                result = "posted"
            except ApiError as e:
                if e.status.code == 409:  # AlreadyExists: a try whose answer was lost had landed
                    result = "posted"
                    log.info("event %s on %s had landed before a retry", item.event.reason, item.owner.name)
                else:
                    log.warning("event %s on %s dropped: %s", item.event.reason, item.owner.name, e)
            except (httpx2.HTTPError, OSError) as e:  # still failing after the client's retries
                log.warning(
                    "event %s on %s dropped: %s: %s", item.event.reason, item.owner.name, type(e).__name__, e
                )
            except Exception:
                log.exception("event %s on %s dropped", item.event.reason, item.owner.name)
            finally:
                self._counted(result)
                self._queue.task_done()

    async def _post(self, item: _Queued) -> None:
        owner, event = item.owner, item.event
        await self.client.create(
            Event(
                metadata=ObjectMeta(name=item.name, namespace=owner.namespace),
                involvedObject=ObjectReference(
                    apiVersion=owner.info.api_version,
                    kind=owner.info.kind,
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
                eventTime=item.at,  # to the microsecond: the order Events were queued in
                action=ACTION,
                count=1,
            )
        )
