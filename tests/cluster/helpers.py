"""Helpers for cluster tests: waiting with a deadline, and readable failures."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from lightkube import ApiError, Client, codecs
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

T = TypeVar("T")


def to_yaml(obj: Any) -> str:
    data = obj.to_dict() if hasattr(obj, "to_dict") else obj
    if isinstance(data, dict):
        data.get("metadata", {}).pop("managedFields", None)
    return yaml.safe_dump(data, sort_keys=False)


def wait_for(
    client: Client,
    kind: type[T],
    name: str,
    namespace: str | None,
    predicate: Callable[[T], bool],
    *,
    timeout: float = 60,
    what: str = "condition",
    interval: float = 0.2,
) -> T:
    """Poll until predicate(obj) holds; on timeout fail showing the object's YAML."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            last = client.get(kind, name, namespace=namespace)  # type: ignore[call-overload]
            error = None
            if predicate(last):
                return last
        except ApiError as e:
            error = e
        time.sleep(interval)
    shown = to_yaml(last) if last is not None else f"(not found: {error})"
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what} on {kind.__name__} {namespace}/{name}:\n{shown}"
    )


def condition(obj: Any, type_: str) -> Any | None:
    for c in (obj.status.conditions if obj.status else None) or []:
        if c.type == type_:
            return c
    return None


def has_condition(type_: str, status: str = "True") -> Callable[[Any], bool]:
    def check(obj: Any) -> bool:
        c = condition(obj, type_)
        return c is not None and c.status == status

    return check


def install_crds(client: Client, directory: Path) -> None:
    """Apply every generated CRD in directory and wait until each is Established."""
    if not directory.is_dir():
        return
    for path in sorted(p for p in directory.glob("*.yaml") if p.name != "kustomization.yaml"):
        for obj in codecs.load_all_yaml(path.read_text()):
            client.apply(obj, field_manager="dataworks-tests", force=True)
            wait_for(
                client,
                CustomResourceDefinition,
                obj.metadata.name,
                None,
                has_condition("Established"),
                timeout=30,
                what="Established",
            )
