"""Short texts every kind writes into a status (pure layer)."""

from __future__ import annotations

from collections.abc import Sequence


def summary(problems: Sequence[object], shown: int = 5) -> str:
    """The first few problems, joined, and how many more there are: "a; b; and 3 more"."""
    text = "; ".join(str(p) for p in problems[:shown])
    return text + (f"; and {len(problems) - shown} more" if len(problems) > shown else "")
