"""Naming fields in validation errors, for any kind (pure layer).

An error names the field as the API server spells its path
(`spec.steps[1].dependOn`); an unknown field also names the nearest valid one,
as `fieldValidation=Strict` would refuse it. `field_names` walks the pydantic
models of a kind to the object at a path.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any, get_args

from pydantic import BaseModel

# ObjectMeta's fields: what a manifest's `metadata` may hold.
METADATA_FIELDS = (
    "name", "generateName", "namespace", "labels", "annotations", "uid", "resourceVersion",
    "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
    "ownerReferences", "finalizers", "managedFields", "selfLink",
)  # fmt: skip


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, through Optional, list and dict."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if (found := _model_in(arg)) is not None:
            return found
    return None


def field_names(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The wire names of the fields of the object at `loc` under `model` ([] if free-form)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        fields = current.model_fields
        found = next((f for n, f in fields.items() if part in {n, f.alias}), None)
        current = _model_in(found.annotation) if found is not None else None
    if current is None:
        return []
    return [f.alias or n for n, f in current.model_fields.items()]


def path_of(loc: Sequence[int | str], root: str = "spec") -> str:
    """`spec.steps[1].dependOn`, as the API server spells a field's path."""
    out = root
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def unknown_field(name: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}?" if close else f"valid fields: {', '.join(valid)}"
    return f"unknown field {name!r}; {hint}"
