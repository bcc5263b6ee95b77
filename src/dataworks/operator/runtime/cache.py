"""The runtime's watch-fed cache (I/O layer, in memory): objects of every kind and their children.

Watch events and the responses to our own writes feed it, so a reconcile
needs no read before it acts. An event older than what is cached (by
resourceVersion) is ignored; the echo of our own write is not news.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

Key = tuple[str, str]  # (namespace, name)


def newer(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    """Whether object b is at least as new as a, by resourceVersion.

    resourceVersions are opaque in general but etcd-backed servers issue
    increasing integers; when they are not integers, the later arrival wins.
    """
    if a is None:
        return True
    ra, rb = (
        (a.get("metadata") or {}).get("resourceVersion"),
        (b.get("metadata") or {}).get("resourceVersion"),
    )
    try:
        return int(rb) >= int(ra)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True


def key_of(body: dict[str, Any]) -> Key:
    meta = body.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


class Cache:
    """Objects of one kind, and for each the children it owns, by child kind and name."""

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.children: dict[Key, dict[str, dict[str, dict[str, Any]]]] = {}
        self.fingerprints: dict[tuple[Key, str, str], Hashable] = {}
        self.listed: set[tuple[Key, str]] = set()

    def put(self, body: dict[str, Any], deleted: bool = False) -> bool:
        """Cache an object; True when it is news (not the echo of our own write)."""
        key = key_of(body)
        if deleted:
            self.forget(key)
            return False
        before = self.objects.get(key)
        meta = body.get("metadata") or {}
        if before is not None and (before.get("metadata") or {}).get("resourceVersion") == meta.get(
            "resourceVersion"
        ):
            return False
        if not newer(before, body):
            return False
        self.objects[key] = body
        return True

    def forget(self, key: Key) -> None:
        self.objects.pop(key, None)
        self.children.pop(key, None)
        self.listed = {x for x in self.listed if x[0] != key}
        self.fingerprints = {k: v for k, v in self.fingerprints.items() if k[0] != key}

    def put_child(
        self, owner: Key, kind: str, body: dict[str, Any], fingerprint: Hashable, deleted: bool = False
    ) -> bool:
        """Cache a child of `owner`; True when what its controller sees of it changed."""
        name = (body.get("metadata") or {}).get("name", "")
        bodies = self.children.setdefault(owner, {}).setdefault(kind, {})
        before = bodies.get(name)
        fkey = (owner, kind, name)
        if deleted:
            bodies.pop(name, None)
            self.fingerprints.pop(fkey, None)
            return before is not None
        if not newer(before, body):
            return False
        bodies[name] = body
        old = self.fingerprints.get(fkey)
        self.fingerprints[fkey] = fingerprint
        return before is None or old != fingerprint

    def children_of(self, owner: Key) -> dict[str, list[dict[str, Any]]]:
        return {kind: list(bodies.values()) for kind, bodies in self.children.get(owner, {}).items()}
