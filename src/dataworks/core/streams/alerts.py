"""The `alert` processing's rules (pure layer): which messages raise which alerts.

Two kinds of rule, each optionally limited to some symbols:
- `when`: a CEL condition over one message, the map `m` (`m.volume > 50000`). A message the
  condition cannot be evaluated on (a field it lacks, a wrong type) raises nothing and is
  counted in `errors`.
- `priceMove`: a price move of at least `percent` % within a tumbling window of
  `windowSeconds`, per symbol. Windows are aligned on the message timestamps (not on the clock):
  a symbol's window opens at its first price in it, and the rule fires at most once per window
  and symbol, at the first message whose price is that far from the window's opening price.

Time comes from the messages (`timestamp`, microseconds): replaying a stream raises the same
alerts. An alert carries the rule, the triggering message's identity and timestamp, and what
was measured; alerts come out in the order of the messages that raised them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dataworks.core.kit.expressions import Compiled, ExpressionError, compile_expression, context, evaluate

MESSAGE = frozenset({"m"})


def fields_read(source: str) -> tuple[str, ...] | None:
    """The message fields a condition reads when it reads `m` only as `m.field`; None when it
    uses `m` otherwise (`size(m)`, `m[k]`): then it gets the whole message. Converting a few
    fields to CEL values, not the whole map, makes a rule about four times faster."""
    named = re.findall(r"\bm\.([A-Za-z_]\w*)", source)
    if len(named) != len(re.findall(r"\bm\b", source)):
        return None
    return tuple(dict.fromkeys(named))


@dataclass(frozen=True)
class Rule:
    name: str
    when: Compiled | None = None
    fields: tuple[str, ...] | None = None  # what `when` reads of the message (None: all of it)
    percent: float | None = None  # priceMove
    window_us: int = 0
    symbols: frozenset[str] | None = None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Rule:
        """From the API's alert rule (api/streamalerts.py), already validated."""
        move = raw.get("priceMove")
        symbols = raw.get("symbols")
        return cls(
            name=raw["name"],
            when=compile_expression(raw["when"], MESSAGE) if raw.get("when") else None,
            fields=fields_read(raw["when"]) if raw.get("when") else None,
            percent=float(move["percent"]) if move else None,
            window_us=int(float(move["windowSeconds"]) * 1_000_000) if move else 0,
            symbols=frozenset(symbols) if symbols else None,
        )


def problems(rules: list[dict[str, Any]]) -> list[str]:
    """What is wrong with the rules' CEL, each naming its field: spec.processing.alert.rules[i].when."""
    out = []
    for i, raw in enumerate(rules):
        if raw.get("when"):
            try:
                compile_expression(raw["when"], MESSAGE)
            except ExpressionError as e:
                out.append(f"spec.processing.alert.rules[{i}].when ({raw.get('name')}): {e}")
    return out


@dataclass
class Opened:
    """A symbol's current window for one priceMove rule."""

    start_us: int
    price: float
    fired: bool = False


@dataclass
class Alerts:
    """The rules, and the state of their windows; `feed` each message in order."""

    rules: list[Rule]
    windows: dict[tuple[str, str], Opened] = field(default_factory=dict)  # (rule, symbol)
    errors: int = 0
    ctx: Any = field(default_factory=context)  # kept from message to message

    def feed(self, m: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        symbol = str(m.get("symbol", ""))
        for rule in self.rules:
            if rule.symbols is not None and symbol not in rule.symbols:
                continue
            found = self._move(rule, symbol, m) if rule.percent is not None else self._when(rule, m)
            if found is not None:
                out.append(_alert(rule.name, m, found))
        return out

    def _when(self, rule: Rule, m: dict[str, Any]) -> dict[str, Any] | None:
        assert rule.when is not None
        seen = m if rule.fields is None else {k: m[k] for k in rule.fields if k in m}
        try:
            hit = evaluate(rule.when, {"m": seen}, self.ctx)
        except ExpressionError:
            self.errors += 1
            return None
        if not isinstance(hit, bool):
            self.errors += 1
            return None
        return {"when": rule.when.source} if hit else None

    def _move(self, rule: Rule, symbol: str, m: dict[str, Any]) -> dict[str, Any] | None:
        assert rule.percent is not None
        price, ts = m.get("price"), m.get("timestamp")
        if not isinstance(price, int | float) or not isinstance(ts, int) or price <= 0:
            return None  # a message without a price (news, a book snapshot) moves nothing
        key = (rule.name, symbol)
        w = self.windows.get(key)
        if w is None or ts >= w.start_us + rule.window_us:  # the next window opens here
            self.windows[key] = Opened(ts, float(price))
            return None
        if w.fired or ts < w.start_us:  # fired in this window, or a late message of an older one
            return None
        move = (float(price) - w.price) / w.price * 100
        if abs(move) < rule.percent:
            return None
        w.fired = True
        return {"movePercent": round(move, 4), "from": w.price, "windowStart": w.start_us}


def _alert(rule: str, m: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
    keep = ("symbol", "message_id", "sequence_number", "timestamp", "price")
    return {"rule": rule, **{k: m[k] for k in keep if k in m}, **found}
