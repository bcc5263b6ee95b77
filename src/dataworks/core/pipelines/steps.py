"""One internal model of a step, whatever spelling the manifest used (pure layer).

The seed manifests put a fan-out's `parallelism`, `chunk_strategy` and
`resources` under `config`; others put them on the step. `normalize` resolves
every spelling into a `StepDef`, and `check_config` applies the per-type rules
of core.pipelines.stepconfigs, the ones the worker applies too, so bad input is
reported before any Job exists.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dataworks.api.defaults import DEFAULT_MAX_PARALLELISM
from dataworks.core.kit import quantities
from dataworks.core.pipelines import stepconfigs, whens

if TYPE_CHECKING:  # only annotations: the worker imports this module and starts faster without pydantic
    from dataworks.api import pipeline as api


@dataclass(frozen=True)
class SpecError:
    """A problem with the pipeline spec, naming the step and field."""

    step: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"step {self.step!r}: " if self.step else ""
        return f"{where}{self.field}: {self.message}"


@dataclass(frozen=True)
class StepDef:
    """A step as the planners see it: every default resolved."""

    name: str
    type: str
    depends_on: tuple[str, ...]
    config: dict[str, Any]
    on_failure: str = "fail"
    parallelism: int = 1
    requests: dict[str, str] = field(default_factory=dict)
    limits: dict[str, str] = field(default_factory=dict)
    retry_limit: int | None = None
    timeout_seconds: int | None = None
    no_retry_exit_codes: tuple[int, ...] = ()
    retry_on_exit_codes: tuple[int, ...] = ()
    workload_class: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    image: str | None = None
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[dict[str, Any], ...] = ()
    env_from: tuple[dict[str, Any], ...] = ()
    when: str | None = None  # the step's condition as one CEL expression (core.pipelines.whens)
    on_skipped: str = "skip"

    @property
    def is_fan_out(self) -> bool:
        return self.type == "fan-out"

    def fingerprint(self) -> str:
        """A short stable hash of everything that shapes this step's Job."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _resources(step: api.Step) -> tuple[dict[str, str], dict[str, str], list[SpecError]]:
    errors: list[SpecError] = []
    sources: list[tuple[str, dict[str, Any]]] = []
    if step.resources is not None:
        sources.append(("resources", step.resources.model_dump(exclude_none=True)))
    raw = step.config.get("resources")
    if raw is not None:
        if not isinstance(raw, dict):
            errors.append(
                SpecError(step.name, "config.resources", "must be an object such as {cpu: 2, memory: 4Gi}")
            )
        else:
            sources.append(("config.resources", raw))
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    for where, res in sources:
        for key in ("cpu", "memory"):
            if key in res:
                requests[key] = limits[key] = str(res[key])
        for name, target in (("requests", requests), ("limits", limits)):
            part = res.get(name)
            if part is None:
                continue
            if not isinstance(part, dict):
                errors.append(SpecError(step.name, f"{where}.{name}", "must be a map such as {cpu: 2}"))
                continue
            target.update({str(k): str(v) for k, v in part.items()})
    parsed: dict[tuple[str, str], Any] = {}
    for name, target in (("requests", requests), ("limits", limits)):
        for key, value in target.items():
            try:
                parsed[(name, key)] = quantities.parse_quantity(value)
            except ValueError as e:
                errors.append(SpecError(step.name, f"resources.{name}.{key}", str(e)))
    for key, value in requests.items():
        req, lim = parsed.get(("requests", key)), parsed.get(("limits", key))
        if req is not None and lim is not None and req > lim:
            errors.append(
                SpecError(step.name, f"resources.requests.{key}", f"{value} exceeds its limit {limits[key]}")
            )
    return requests, limits, errors


def _parallelism(step: api.Step, max_parallelism: int) -> tuple[int, list[SpecError]]:
    candidates = [
        ("parallelism", step.parallelism),
        ("config.parallelism", step.config.get("parallelism")),
        ("resources.parallelism", step.resources.parallelism if step.resources else None),
    ]
    for where, value in candidates:
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            return 1, [SpecError(step.name, where, f"must be a whole number, got {value!r}")]
        if not 1 <= value <= max_parallelism:
            return 1, [SpecError(step.name, where, f"must be between 1 and {max_parallelism}, got {value}")]
        if step.type != "fan-out" and value > 1:
            return 1, [SpecError(step.name, where, "only fan-out steps run more than one worker")]
        return value, []
    return 1, []


def check_config(name: str, type_: str, config: dict[str, Any]) -> list[SpecError]:
    """Per-type configuration rules (core.pipelines.stepconfigs), the very ones the worker applies."""
    return [
        SpecError(name, f"config.{where}", message) for where, message in stepconfigs.problems(type_, config)
    ]


def normalize(
    step: api.Step, *, max_parallelism: int = DEFAULT_MAX_PARALLELISM
) -> tuple[StepDef, list[SpecError]]:
    """The StepDef of an api Step, and every problem found in it."""
    requests, limits, errors = _resources(step)
    parallelism, perr = _parallelism(step, max_parallelism)
    errors += perr
    errors += check_config(step.name, step.type, step.config)
    timeout = None
    if step.timeout:
        timeout = max(1, int(quantities.parse_duration(step.timeout)))
    retry = step.retry
    when, problems = whens.expression(step.when, step.config.get("conditions"), tuple(step.depends_on))
    errors += [SpecError(step.name, where, message) for where, message in problems]
    config = {k: v for k, v in step.config.items() if k not in {"resources", "parallelism", "conditions"}}
    return (
        StepDef(
            name=step.name,
            type=step.type,
            depends_on=tuple(step.depends_on),
            config=config,
            on_failure=step.on_failure,
            parallelism=parallelism,
            requests=requests,
            limits=limits,
            retry_limit=retry.limit if retry else None,
            timeout_seconds=timeout,
            no_retry_exit_codes=tuple(retry.no_retry_exit_codes or ()) if retry else (),
            retry_on_exit_codes=tuple(retry.retry_on_exit_codes or ()) if retry else (),
            workload_class=step.workload_class,
            annotations=dict(step.annotations or {}),
            image=step.image,
            command=tuple(step.command or ()),
            args=tuple(step.args or ()),
            env=tuple(e.model_dump(by_alias=True, exclude_none=True) for e in step.env or ()),
            env_from=tuple(step.env_from or ()),
            when=when,
            on_skipped=step.on_skipped,
        ),
        errors,
    )


def connections_named(step: StepDef) -> list[str]:
    """The named connections a built-in step resolves when it runs (the worker's own keys)."""
    config = step.config
    names: list[Any] = []
    if step.type == "fetch":
        names = [config.get("source")]
    elif step.type == "load":
        names = [config.get("connection")]
    elif step.type == "transform" and config.get("engine") == "postgres":
        names = [config.get("connection") or config.get("source")]
    return [str(n) for n in names if n]


def connection_keys(name: str) -> tuple[str, str]:
    """The keys under which a connections Secret may hold connection `name`: the name itself,
    or its environment-variable spelling (as the worker looks them up)."""
    return name, "DATAWORKS_CONN_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
