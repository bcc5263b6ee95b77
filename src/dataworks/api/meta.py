"""What every dataworks resource shares (pure layer): the model base, conditions, kind facts.

`Model` spells fields in Kubernetes camelCase on the wire and snake_case in
Python. `Condition` is the standard Kubernetes condition. `KindInfo` holds
the facts of one resource kind that the CRD, the client, owner references,
Events, metrics and the CLI all read (see `api.kinds`, the registry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

GROUP = "dataworks.io"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "dataworks"  # `kubectl get dataworks` lists every kind

# The one spelling of a Kubernetes timestamp in a status (RFC 3339, seconds, UTC).
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class Model(BaseModel):
    """Base: camelCase on the wire, snake_case in Python. An unknown field is an error
    (core.pipelines.validation names it and the nearest valid name): a misspelt `dependOn:`
    must not be dropped silently. Free-form maps (`config`, `metadata`) are dicts."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class StatusModel(Model):
    """Base of what the operator writes and reads back: fields a newer or older
    operator wrote are ignored, never an error."""

    model_config = ConfigDict(extra="ignore")


class Condition(StatusModel):
    """A standard Kubernetes condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


@dataclass(frozen=True)
class KindInfo:
    """The facts of one resource kind, read by every layer that names kinds."""

    kind: str
    plural: str
    root: type[BaseModel]  # the whole resource (apiVersion, kind, metadata, spec, status)
    spec: type[BaseModel]
    status: type[BaseModel]
    short_names: tuple[str, ...] = ()
    printer_columns: tuple[dict[str, str], ...] = ()
    terminal_phases: frozenset[str] = frozenset()
    # Label a child object carries with its owner's name, e.g. dataworks.io/pipeline.
    owner_label: str = ""
    group: str = GROUP
    version: str = VERSION
    categories: tuple[str, ...] = (CATEGORY,)
    # The CRD's scale subresource (specReplicasPath, statusReplicasPath, labelSelectorPath), if any.
    scale: dict[str, str] | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    def names(self) -> tuple[str, ...]:
        """Every spelling a user may type for this kind (kubectl's rules: kind, singular,
        plural, short names; case-insensitive; also plural.group)."""
        return (
            self.kind.lower(),
            self.singular,
            self.plural,
            f"{self.plural}.{self.group}",
            *self.short_names,
        )

    def is_terminal(self, phase: str | None) -> bool:
        return phase in self.terminal_phases
