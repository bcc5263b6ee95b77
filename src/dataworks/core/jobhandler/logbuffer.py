"""A log stream's head, tail, size and sha256, kept in bounded memory (pure layer).

The capture (I/O) feeds a container's log to a `LogBuffer` chunk by chunk; a
1 GiB log costs at most `keep` bytes here, and its size and checksum are
exact. What lies between head and tail is cut, and the archive says so.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Captured:
    """One container instance's log as kept: whole when `size <= len(head) + len(tail)`."""

    head: bytes
    tail: bytes
    size: int  # bytes the container printed
    sha256: str  # of all of them
    error: str = ""  # why the log could not be read (the pod was gone, ...)

    @property
    def complete(self) -> bool:
        return not self.error and self.size == len(self.head) + len(self.tail)

    @property
    def kept(self) -> int:
        return len(self.head) + len(self.tail)


class LogBuffer:
    """Feed bytes in; `captured()` gives the first and last `keep // 2` bytes and the totals."""

    def __init__(self, keep: int) -> None:
        self._head_cap = keep - keep // 2
        self._tail_cap = keep // 2
        self._head = bytearray()
        self._tail = bytearray()
        self._sha = hashlib.sha256()
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        self._sha.update(chunk)
        self.size += len(chunk)
        room = self._head_cap - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk and self._tail_cap:
            self._tail += chunk
            if len(self._tail) > 2 * self._tail_cap:  # trim rarely: amortised O(1) per byte
                del self._tail[: len(self._tail) - self._tail_cap]

    def captured(self, error: str = "") -> Captured:
        tail = bytes(self._tail[-self._tail_cap :]) if self._tail_cap else b""
        return Captured(bytes(self._head), tail, self.size, self._sha.hexdigest(), error)
