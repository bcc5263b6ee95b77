"""What a SequentialJob spec must satisfy beyond its schema (pure layer, SequentialJob policy).

The API server checks the schema and the CEL rules of the CRD (api.sequentialjob):
unique container names, at least one container, Job names within 63 characters,
steps and retry requests that name a container. This module checks them again
(a local run has no API server) and adds what CEL cannot express well: volume
mounts that name a volume of the template, resource quantities and requests
within limits, environment variables with one source, and pod labels Kubernetes
accepts. Each error names its field as the API server would spell it; the
operator marks such a SequentialJob Failed with reason ValidationFailed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from dataworks.api import sequentialjob as api
from dataworks.api.pods import Container
from dataworks.core.kit.fields import METADATA_FIELDS, field_names, path_of, unknown_field
from dataworks.core.kit.quantities import parse_quantity

ENV_SOURCES = ("secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef", "fileKeyRef")
_LABEL_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE = re.compile(rf"^({_LABEL_NAME})?$")
LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_KEY_NAME = re.compile(rf"^{_LABEL_NAME}$")


@dataclass(frozen=True)
class FieldError:
    """A problem with one field of the spec."""

    field: str  # e.g. spec.containers[1].volumeMounts[0].name
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class Validated:
    """A spec that passed validation."""

    spec: api.SequentialJobSpec


def parse_spec(raw: dict[str, Any]) -> tuple[api.SequentialJobSpec | None, list[FieldError]]:
    """Parse a spec dict with the api models; errors name the field path."""
    try:
        return api.SequentialJobSpec.model_validate(raw), []
    except ValidationError as e:
        errors = []
        for err in e.errors():
            loc = list(err["loc"])
            if err["type"] == "extra_forbidden":
                valid = field_names(api.SequentialJobSpec, loc[:-1])
                errors.append(FieldError(path_of(loc), unknown_field(str(loc[-1]), valid)))
            else:
                errors.append(FieldError(path_of(loc), err["msg"]))
        return None, errors


def _duplicates(names: Iterable[str]) -> list[str]:
    return [n for n, count in Counter(names).items() if count > 1]


def _names(spec: api.SequentialJobSpec, name: str | None) -> list[FieldError]:
    """What the CRD's list-map keys and CEL rules enforce on a cluster."""
    errors = []
    volumes = (spec.template.spec.volumes or []) if spec.template and spec.template.spec else []
    for path, listed in (
        ("spec.containers", [c.name for c in spec.containers]),
        ("spec.steps", [s.name for s in spec.steps or []]),
        ("spec.template.spec.volumes", [v.name for v in volumes]),
    ):
        errors += [
            FieldError(path, f"duplicate name {d!r}: names must be unique") for d in _duplicates(listed)
        ]
    containers = {c.name for c in spec.containers}
    for i, policy in enumerate(spec.steps or []):
        if policy.name not in containers:
            errors.append(
                FieldError(f"spec.steps[{i}].name", f"{policy.name!r} is not a container of spec.containers")
            )
    if spec.retry and spec.retry.step and spec.retry.step not in containers:
        errors.append(
            FieldError("spec.retry.step", f"{spec.retry.step!r} is not a container of spec.containers")
        )
    for i, c in enumerate(spec.containers):
        if name and len(name) + 1 + len(c.name) > api.MAX_JOB_NAME:
            errors.append(
                FieldError(
                    f"spec.containers[{i}].name",
                    f"the step's Job name {name}-{c.name} is longer than {api.MAX_JOB_NAME} characters: "
                    "shorten metadata.name or the container name",
                )
            )
    return errors


def _resources(path: str, c: Container) -> list[FieldError]:
    if c.resources is None:
        return []
    errors, parsed = [], {}
    for kind in ("requests", "limits"):
        for key, value in (getattr(c.resources, kind) or {}).items():
            try:
                parsed[kind, key] = parse_quantity(value)
            except ValueError as e:
                errors.append(FieldError(f"{path}.resources.{kind}.{key}", str(e)))
    for (kind, key), request in parsed.items():
        limit = parsed.get(("limits", key))
        if kind == "requests" and limit is not None and request > limit:
            errors.append(
                FieldError(
                    f"{path}.resources.requests.{key}",
                    f"{(c.resources.requests or {})[key]} is more than its limit "
                    f"{(c.resources.limits or {})[key]}",
                )
            )
    return errors


def _env(path: str, c: Container) -> list[FieldError]:
    errors = []
    for j, var in enumerate(c.env or []):
        where = f"{path}.env[{j}]"
        if var.value is not None and var.value_from is not None:
            errors.append(FieldError(f"{where}.valueFrom", f"{var.name}: set value or valueFrom, not both"))
        if var.value_from is not None:
            sources = [k for k in var.value_from if k in ENV_SOURCES]
            unknown = [k for k in var.value_from if k not in ENV_SOURCES]
            if unknown:
                errors.append(
                    FieldError(f"{where}.valueFrom.{unknown[0]}", unknown_field(unknown[0], ENV_SOURCES))
                )
            elif len(sources) != 1:
                errors.append(
                    FieldError(
                        f"{where}.valueFrom", f"{var.name}: name exactly one of {', '.join(ENV_SOURCES)}"
                    )
                )
    return errors


def _mounts(path: str, c: Container, volumes: set[str]) -> list[FieldError]:
    errors = []
    for j, mount in enumerate(c.volume_mounts or []):
        if mount.name not in volumes:
            known = f"its volumes: {', '.join(sorted(volumes))}" if volumes else "it has none"
            errors.append(
                FieldError(
                    f"{path}.volumeMounts[{j}].name",
                    f"no volume {mount.name!r} in spec.template.spec.volumes ({known})",
                )
            )
    for dup in _duplicates(m.mount_path for m in c.volume_mounts or []):
        errors.append(FieldError(f"{path}.volumeMounts", f"two volumes are mounted at {dup}"))
    return errors


def label_error(key: str, value: str) -> str | None:
    """Why Kubernetes would refuse the label `key: value` (None: it accepts it)."""
    prefix, _, name = key.rpartition("/")
    if (prefix and (len(prefix) > 253 or not LABEL_PREFIX.match(prefix))) or not (
        len(name) <= 63 and LABEL_KEY_NAME.match(name)
    ):
        return (
            f"{key!r} is not a valid label key (an optional DNS prefix/, and a name of at most 63 characters)"
        )
    if len(value) > 63 or not LABEL_VALUE.match(value):
        return f"{value!r} is not a valid label value (at most 63 letters, digits, '-', '_' or '.')"
    return None


def _template(spec: api.SequentialJobSpec) -> list[FieldError]:
    meta = spec.template.metadata if spec.template else None
    pod = spec.template.spec if spec.template else None
    errors = []
    if pod is not None and pod.containers is not None:
        message = "the steps are spec.containers; the template holds only the pod settings they share"
        errors.append(FieldError("spec.template.spec.containers", message))
    if pod is not None and pod.ephemeral_containers is not None:
        message = "ephemeral containers cannot be part of a pod template"
        errors.append(FieldError("spec.template.spec.ephemeralContainers", message))
    for key, value in ((meta.labels or {}) if meta else {}).items():
        problem = label_error(key, value)
        if problem:
            errors.append(FieldError(f"spec.template.metadata.labels[{key}]", problem))
    return errors


def check(spec: api.SequentialJobSpec, name: str | None = None) -> list[FieldError]:
    """Every problem of a parsed spec (of the object called `name`, when known)."""
    volumes = (spec.template.spec.volumes or []) if spec.template and spec.template.spec else []
    known = {v.name for v in volumes}
    errors = _names(spec, name) + _template(spec)
    for i, c in enumerate(spec.containers):
        path = f"spec.containers[{i}]"
        errors += _mounts(path, c, known) + _resources(path, c) + _env(path, c)
    return errors


def validate_raw(raw: dict[str, Any], name: str | None = None) -> tuple[Validated | None, list[FieldError]]:
    spec, errors = parse_spec(raw)
    if spec is None:
        return None, errors
    errors = check(spec, name)
    return (None, errors) if errors else (Validated(spec), [])


def validate_document(obj: dict[str, Any]) -> tuple[Validated | None, list[FieldError]]:
    """A whole SequentialJob manifest (what `dataworks run` reads): its spec, and no unknown field."""
    outer = []
    top = field_names(api.SequentialJob, [])
    for key in obj:
        if key not in top:
            outer.append(FieldError(str(key), unknown_field(str(key), top)))
    metadata = obj.get("metadata")
    for key in metadata if isinstance(metadata, dict) else {}:
        if key not in METADATA_FIELDS:
            outer.append(FieldError(f"metadata.{key}", unknown_field(str(key), METADATA_FIELDS)))
    name = metadata.get("name") if isinstance(metadata, dict) else None
    validated, errors = validate_raw(obj.get("spec") or {}, name)
    if outer:
        return None, outer + errors
    return validated, errors
