"""The operator runtime (I/O layer): hosts controllers of any kind; observe, plan, apply.

Each reconciled kind and each child kind is watched once (the kopf wiring in
`operator/main.py` feeds `object_event` and `child_event`). A child reaches
the controller that owns it, found by its owner kind's label and confirmed
by its controller ownerReference, so a Job of one kind never wakes another.
A reconcile reads from the cache, lets the controller observe and plan, then
applies the Actions: children, the one status write, then Events.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from lightkube import AsyncClient

from dataworks.api.meta import KindInfo
from dataworks.controllers import base as ctl
from dataworks.core.kit import backoffs
from dataworks.core.kit.plan import Actions, Event
from dataworks.kube import errors, resources
from dataworks.manifests.owner import Owner
from dataworks.observability.metrics import Metrics
from dataworks.operator.runtime.apply import Applier, NotOurs
from dataworks.operator.runtime.cache import Cache, Key, key_of
from dataworks.operator.runtime.eventing import EventSender
from dataworks.operator.runtime.queue import Queue

log = logging.getLogger("dataworks.operator")
# Which object, and which reconcile of it, the current task works for: added to every log record.
context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("reconcile", default=None)


# Failed reconciles run again after 0.5 s, doubling up to 60 s, with jitter.
REQUEUE = backoffs.Backoff(tries=1000, first=0.5, cap=60.0)


def check(controllers: Sequence[ctl.Controller]) -> None:
    """Refuse controllers that would fight over objects, or own a kind this runtime cannot watch."""
    ctl.check(controllers)
    for c in controllers:
        for kind in c.owns:
            resources.child(kind)  # KeyError names the kinds a controller may own


def _matches(labels: Mapping[str, str], selector: Mapping[str, str] | None) -> bool:
    return selector is None or all(labels.get(k) == v for k, v in selector.items())


class Runtime:
    """Runs every enabled controller; safe to trigger from any number of events."""

    def __init__(
        self,
        client: AsyncClient,
        controllers: Sequence[ctl.Controller],
        *,
        events: EventSender | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        check(controllers)
        self.client, self.controllers, self.clock = client, list(controllers), clock
        self.applier = Applier(client)
        self.events = events or EventSender(client)
        self.metrics = metrics
        self.queue = Queue()
        self.caches: dict[int, Cache] = {id(c): Cache() for c in self.controllers}
        self._refused: dict[tuple[str, Key], str] = {}
        self._failures: dict[tuple[str, str, str], int] = {}
        self._gone: set[tuple[str, str]] = set()  # (kind, uid) of objects we deleted
        if metrics is not None:
            for c in self.kinds():
                metrics.queue_depth.labels(kind=c.info.kind).set_function(self._depth_of(c.info.kind))

    def _depth_of(self, kind: str) -> Callable[[], int]:
        return lambda: self.queue.depth(kind)

    # -- what is watched ----------------------------------------------------------
    def kinds(self) -> list[ctl.Controller]:
        """One controller per watched kind (the first; others share the watch)."""
        seen: dict[str, ctl.Controller] = {}
        for c in self.controllers:
            seen.setdefault(c.info.kind, c)
        return list(seen.values())

    def child_kinds(self) -> list[str]:
        return sorted({kind for c in self.controllers for kind in c.watches})

    def active_count(self, kind: str) -> int:
        return sum(
            1
            for c in self.controllers
            if c.info.kind == kind
            for obj in self.caches[id(c)].objects.values()
            if c.active(obj)
        )

    # -- events in ----------------------------------------------------------------
    def _controller_for(self, kind: str, body: dict[str, Any]) -> ctl.Controller | None:
        labels = (body.get("metadata") or {}).get("labels") or {}
        return next(
            (c for c in self.controllers if c.info.kind == kind and _matches(labels, c.selector)), None
        )

    async def object_event(self, kind: str, body: dict[str, Any], deleted: bool = False) -> None:
        c = self._controller_for(kind, body)
        if c is None:
            return
        key = key_of(body)
        uid = (body.get("metadata") or {}).get("uid", "")
        if (kind, uid) in self._gone:
            if deleted:
                self._gone.discard((kind, uid))
            return  # we deleted it: a late event of it must not reconcile it again
        if deleted:
            await self._gone_now(c, key, body)
        elif self.caches[id(c)].put(body):
            await self.trigger(c, *key)
        # Objects waiting for this one, even when the event is the echo of our own status write
        # (a dependency's Completed is such a write).
        for other in c.related(body):
            await self.trigger(c, *other)

    async def _gone_now(self, c: ctl.Controller, key: Key, body: dict[str, Any]) -> None:
        """The object was deleted (by someone else): the controller's last word, then forget it."""
        slot = (c.info.kind, *key)

        async def once() -> None:
            cache = self.caches[id(c)]
            actions = c.plan_deleted(body, cache.children_of(key), self.clock())
            if actions is not None:
                meta = body.get("metadata") or {}
                owner = Owner(info=c.info, name=key[1], namespace=key[0], uid=meta.get("uid", ""))
                try:
                    for manifest in actions.create:
                        await self.applier.create_or_adopt(manifest)
                    for event in actions.events:
                        await (self.events.post_once if event.once else self.events.send)(owner, event)
                except Exception:
                    log.exception("the last reconcile of deleted %s %s/%s failed", c.info.kind, *key)
            cache.forget(key)
            self.queue.cancel(slot)
            c.forget(key)

        await self.queue.last(slot, once)

    def _owner_of(self, kind: str, body: dict[str, Any]) -> tuple[ctl.Controller, Key] | None:
        meta = body.get("metadata") or {}
        labels = meta.get("labels") or {}
        refs = [r for r in meta.get("ownerReferences") or [] if r.get("controller")]
        for c in self.controllers:
            if kind not in c.watches or not c.info.owner_label:
                continue
            owner = labels.get(c.info.owner_label)
            if not owner:
                continue
            mine = any(r.get("kind") == c.info.kind and r.get("name") == owner for r in refs)
            if refs and not mine and kind not in c.grandchildren:
                continue  # labelled like ours, but another controller's child
            return c, (meta.get("namespace", ""), owner)
        return None

    async def child_event(self, kind: str, body: dict[str, Any], deleted: bool = False) -> None:
        found = self._owner_of(kind, body)
        if found is None:
            return
        c, owner = found
        if c.selector is not None and owner not in self.caches[id(c)].objects:
            return  # a selecting controller's children matter only under an object it selected
        changed = self.caches[id(c)].put_child(
            owner, kind, body, c.child_fingerprint(kind, body), deleted=deleted
        )
        if changed and owner[0]:
            await self.trigger(c, *owner)

    # -- reconcile ----------------------------------------------------------------
    async def trigger(self, c: ctl.Controller, namespace: str, name: str) -> None:
        """Reconcile now, or once more after the reconcile in progress."""

        slot = (c.info.kind, namespace, name)

        async def once() -> bool:
            started = time.perf_counter()
            context.set({"namespace": namespace, c.info.singular: name, "reconcile": uuid.uuid4().hex[:8]})
            try:
                await self.reconcile(c, namespace, name)
                self._failures.pop(slot, None)
            except errors.NotFound:
                self._failures.pop(slot, None)
                return False
            except (errors.KubeError, NotOurs) as e:
                err = errors.of(e) if isinstance(e, errors.KubeError) else None
                label = f"ApiError{err.code}" if err is not None and err.code else type(e).__name__
                self._count_error(c, label)
                log.warning("reconcile of %s %s/%s failed: %s", c.info.kind, namespace, name, e)
                self._retry_later(c, namespace, name)
            except Exception as e:
                self._count_error(c, type(e).__name__)
                log.exception("reconcile of %s %s/%s failed", c.info.kind, namespace, name)
                self._retry_later(c, namespace, name)
            finally:
                if self.metrics is not None:
                    self.metrics.reconcile_seconds.labels(kind=c.info.kind).observe(
                        time.perf_counter() - started
                    )
            return True

        await self.queue.run(slot, once)

    def _retry_later(self, c: ctl.Controller, namespace: str, name: str) -> None:
        """A failed reconcile runs again after a growing delay (as controller-runtime's
        rate-limited requeue does), whether or not another event comes."""
        slot = (c.info.kind, namespace, name)
        failures = self._failures.get(slot, 0) + 1
        self._failures[slot] = failures
        delay = REQUEUE.wait(min(failures, REQUEUE.tries), random.random())
        self.queue.wake_at(
            slot, self.clock() + timedelta(seconds=delay), lambda: self.trigger(c, namespace, name)
        )

    def _count_error(self, c: ctl.Controller, error: str) -> None:
        if self.metrics is not None:
            self.metrics.reconcile_errors.labels(kind=c.info.kind, error=error).inc()

    async def _object(self, c: ctl.Controller, key: Key) -> dict[str, Any]:
        cache = self.caches[id(c)]
        cached = cache.objects.get(key)
        if cached is not None:
            return cached
        raw = await self.applier.get(c.info, key[1], key[0])
        cache.put(raw)
        return raw

    async def _children(self, c: ctl.Controller, key: Key) -> dict[str, list[dict[str, Any]]]:
        cache = self.caches[id(c)]
        for kind in c.watches:
            if (key, kind) in cache.listed:
                continue  # first sight: list once, then events keep it current
            for body in await self.applier.list(kind, key[0], {c.info.owner_label: key[1]}):
                cache.put_child(key, kind, body, c.child_fingerprint(kind, body))
            cache.listed.add((key, kind))
        return cache.children_of(key)

    async def reconcile(self, c: ctl.Controller, namespace: str, name: str) -> Actions | None:
        key = (namespace, name)
        obj = await self._object(c, key)
        meta = obj.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return None  # ownerReferences let the garbage collector remove the children
        children = await self._children(c, key)
        observed = await c.observe(obj, children, self.applier)
        now = self.clock()
        actions = c.plan(obj, children, observed, now)
        owner = Owner(info=c.info, name=name, namespace=namespace, uid=meta.get("uid", ""))
        await self._apply_children(c, owner, actions)
        if actions.status is not None:
            old = obj.get("status") or None
            written = await self.applier.write_status(c.info, name, namespace, actions.status)
            self.caches[id(c)].put(written)
            c.status_written(key, old, actions.status, now)
        for event in actions.events:
            if not event.once:
                await self.events.send(owner, event)
            log.info(event.message, extra={"reason": event.reason, "step": event.step})
        if actions.delete_self:
            log.info("deleting %s %s/%s, as its controller planned", c.info.kind, namespace, name)
            await self.applier.delete_object(c.info, name, namespace, uid=meta.get("uid"))
            self._gone.add((c.info.kind, meta.get("uid", "")))
            self.caches[id(c)].forget(key)
            self.queue.cancel((c.info.kind, namespace, name))
            c.forget(key)
        elif actions.requeue_at is not None:
            self.queue.wake_at(
                (c.info.kind, namespace, name), actions.requeue_at, lambda: self.trigger(c, *key)
            )
        return actions

    async def _apply_children(self, c: ctl.Controller, owner: Owner, actions: Actions) -> None:
        cache = self.caches[id(c)]
        key = (owner.namespace, owner.name)
        try:
            for manifest in actions.create:
                created = await self.applier.create_or_adopt(manifest)
                if created is not None and manifest["kind"] in c.watches:
                    cache.put_child(
                        key, manifest["kind"], created, c.child_fingerprint(manifest["kind"], created)
                    )
        except (errors.Forbidden, errors.Invalid) as e:
            # The API server refuses what we built (a quota, a policy, an invalid
            # combination): say so on the object, once per distinct refusal.
            text = f"cannot create the {manifest['kind']}: {e.message}"
            if self._refused.get((c.info.kind, key)) != text:
                self._refused[(c.info.kind, key)] = text
                await self.events.send(owner, Event("Warning", "FailedCreate", text))
            raise
        for event in [e for e in actions.events if e.once]:
            await self.events.post_once(owner, event)  # before the patch that marks it done
        for kind, name in actions.delete:
            await self.applier.delete(kind, name, owner.namespace)
        for kind, name, patch in actions.patch:
            await self.applier.patch(kind, name, owner.namespace, patch)
            if kind == c.info.kind and name == owner.name:
                cache.objects.pop(key, None)  # the object itself changed: read it again next time

    # -- safety nets --------------------------------------------------------------
    async def resync(self, period: float, scope: list[str]) -> None:
        """Reconcile every unfinished object of every kind each `period` seconds."""
        while True:
            await asyncio.sleep(period)
            for c in self.kinds():
                try:
                    for ns in scope:
                        async for o in self.client.list(resources.of(c.info), namespace=ns):
                            body = o.to_dict()
                            target = self._controller_for(c.info.kind, body)
                            if target is not None and target.active(body):
                                await self.trigger(target, *key_of(body))
                except Exception:
                    log.exception("resync of %s failed", c.info.plural)

    async def can_list_kind(self, info: KindInfo, scope: list[str]) -> None:
        """Raises a typed error unless `info`'s objects can be listed in every namespace of scope."""
        for ns in scope:
            with errors.typed():
                async for _ in self.client.list(resources.of(info), namespace=ns, chunk_size=1):
                    break

    async def can_list(self, scope: list[str]) -> None:
        """Raises unless every watched kind and child kind can be listed with our credentials."""
        for c in self.kinds():
            await self.can_list_kind(c.info, scope)
        for ns in scope:
            for kind in self.child_kinds():
                async for _ in self.client.list(resources.child(kind), namespace=ns, chunk_size=1):
                    break
