"""Deterministic, DNS-safe names for the children of a pipeline (pure layer)."""

from __future__ import annotations

import hashlib

MAX_NAME = 63


def shorten(name: str, limit: int = MAX_NAME) -> str:
    """name if it fits, else a prefix plus a stable hash of the whole name.

    Two different long names never shorten to the same result unless their
    SHA-256 prefixes collide, unlike plain truncation.
    """
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def job_name(pipeline: str, step: str, attempt: int) -> str:
    """The Job of one attempt of one step: <pipeline>-<step>[-a<attempt>]."""
    base = f"{pipeline}-{step}" if attempt <= 1 else f"{pipeline}-{step}-a{attempt}"
    return shorten(base)


def config_map_name(pipeline: str) -> str:
    """The ConfigMap that carries the step definitions to the worker pods."""
    return shorten(f"{pipeline}-steps")
