"""Kubernetes resource quantities and durations (pure layer)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"^([+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_quantity(text: str | int | float) -> Decimal:
    """The value of a quantity such as "500m", "2", "1.5Gi"; ValueError if malformed."""
    s = str(text).strip()
    m = _QUANTITY.match(s)
    if not m:
        raise ValueError(f'"{s}" is not a Kubernetes quantity (examples: 500m, 2, 512Mi, 1.5Gi)')
    try:
        return Decimal(m.group(1)) * _SUFFIXES[m.group(2) or ""]
    except InvalidOperation as e:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f'"{s}" is not a Kubernetes quantity') from e


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "90s", "30m" or "1h30m"; ValueError if malformed."""
    s = text.strip()
    parts = _DURATION.findall(s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise ValueError(f'"{text}" is not a duration (examples: 90s, 30m, 1h30m)')
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """A short human duration: 45s, 3m12s, 2h05m."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
