"""Per-object reconcile slots and timers (I/O layer, in memory).

Reconciles of one object never run concurrently: a trigger that arrives
during a reconcile runs one more pass after it. A timer wakes an object at a
time its plan asked for (a deadline, a TTL), whatever else happens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SlotKey = tuple[str, str, str]  # (kind, namespace, name)


@dataclass
class Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    again: bool = False


class Queue:
    def __init__(self) -> None:
        self.slots: dict[SlotKey, Slot] = {}
        self._timers: dict[SlotKey, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def depth(self, kind: str | None = None) -> int:
        """Objects in, or waiting for, a reconcile."""
        return sum(1 for k, s in self.slots.items() if s.lock.locked() and (kind is None or k[0] == kind))

    async def run(self, key: SlotKey, once: Callable[[], Awaitable[bool]]) -> None:
        """Run `once` now, or once more after the run in progress; `once` returns False to
        drop the slot (the object is gone)."""
        slot = self.slots.setdefault(key, Slot())
        if slot.lock.locked():
            slot.again = True
            return
        async with slot.lock:
            slot.again = True
            while slot.again:
                slot.again = False
                if not await once():
                    self.slots.pop(key, None)
                    return

    async def last(self, key: SlotKey, fn: Callable[[], Awaitable[None]]) -> None:
        """Run `fn` once the run in progress (if any) has ended, then drop the slot: the object
        is gone, and what runs for it now must not be dropped as a repeat of that run."""
        slot = self.slots.setdefault(key, Slot())
        async with slot.lock:
            slot.again = False
            await fn()
        if self.slots.get(key) is slot and not slot.lock.locked():
            self.slots.pop(key, None)

    def wake_at(self, key: SlotKey, when: datetime, fire: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Call `fire` at `when` (replacing an earlier timer of this object)."""
        previous = self._timers.pop(key, None)
        if previous is not None:
            previous.cancel()
        delay = max(0.0, (when - datetime.now(UTC)).total_seconds())
        loop = asyncio.get_running_loop()

        def go() -> None:
            self._timers.pop(key, None)
            task = loop.create_task(fire())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self._timers[key] = loop.call_later(delay, go)

    def cancel(self, key: SlotKey) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
