"""The kind registry (pure layer): every dataworks resource kind, and lookups by any spelling.

CRD generation, the client's resources, owner references, Events, metrics,
the CLI and shell completion read kinds from a `Registry`. `default()` builds
the one the project ships, explicitly (nothing registers itself at import);
tests build their own with a throwaway kind added.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dataworks.api import (
    pipeline,
    pipelinetemplate,
    scheduledpipeline,
    sequentialjob,
    streamingjob,
    trainingjob,
)
from dataworks.api.meta import KindInfo


@dataclass(frozen=True)
class Registry:
    """An ordered set of kinds; names are unique across every spelling."""

    kinds: tuple[KindInfo, ...]

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for info in self.kinds:
            for name in info.names():
                other = seen.setdefault(name, info.kind)
                if other != info.kind:
                    raise ValueError(f"kind name {name!r} is used by both {other} and {info.kind}")

    def __iter__(self) -> Iterator[KindInfo]:
        return iter(self.kinds)

    def with_kinds(self, extra: Iterable[KindInfo]) -> Registry:
        return Registry((*self.kinds, *extra))

    def lookup(self, name: str) -> KindInfo | None:
        """The kind a user means by `name` (kind, singular, plural or short name; any case)."""
        wanted = name.lower()
        return next((k for k in self.kinds if wanted in k.names()), None)

    def by_kind(self, kind: str) -> KindInfo:
        for info in self.kinds:
            if info.kind == kind:
                return info
        raise KeyError(kind)

    def spellings(self) -> list[str]:
        """Every name the CLI accepts for a kind, for completion and suggestions."""
        return sorted({n for k in self.kinds for n in k.names()})


def default() -> Registry:
    """The kinds dataworks ships."""
    return Registry(
        (
            pipeline.INFO,
            pipelinetemplate.INFO,
            scheduledpipeline.INFO,
            sequentialjob.INFO,
            trainingjob.INFO,
            streamingjob.INFO,
        )
    )
