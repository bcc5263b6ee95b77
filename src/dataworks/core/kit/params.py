"""Run parameters (pure layer): `--param k=v` fills `{{ k }}` (or the seed's `{{.k}}`) in a pipeline file."""

from __future__ import annotations

import re

PLACEHOLDER = re.compile(r"\{\{\s*\.?([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")


def parse(pairs: list[str]) -> dict[str, str]:
    """`["a=1", "b=x=y"]` -> {"a": "1", "b": "x=y"}; raises ValueError naming a bad pair."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param {pair!r} must look like name=value")
        out[key.strip()] = value
    return out


def apply(text: str, params: dict[str, str]) -> tuple[str, list[str]]:
    """The text with placeholders filled, and the names of placeholders left without a value."""
    missing: list[str] = []

    def fill(m: re.Match[str]) -> str:
        if m.group(1) in params:
            return params[m.group(1)]
        missing.append(m.group(1))
        return m.group(0)

    return PLACEHOLDER.sub(fill, text), sorted(set(missing))
