"""The alert rules (core/streams/alerts.py), as a table: each case feeds messages in order and
states the alerts they raise."""

from __future__ import annotations

from typing import Any

import pytest

from dataworks.core.streams.alerts import Alerts, Rule, fields_read, problems

S = 1_000_000  # a second, in the messages' microseconds


def msg(symbol: str, price: float | None, t: float, seq: int = 1, **more: Any) -> dict[str, Any]:
    m = {"symbol": symbol, "timestamp": int(t * S), "message_id": f"{symbol}-{seq}", "sequence_number": seq}
    return m | ({"price": price} if price is not None else {}) | more


MOVE = {"name": "jump", "priceMove": {"percent": 2, "windowSeconds": 5}}
BLOCK = {"name": "block", "when": 'm.type == "trade" && m.volume > 50000'}

CASES = [
    ("a 2 % move within the window fires", [MOVE], [msg("A", 100, 0), msg("A", 101, 1), msg("A", 102, 2)],
     [("jump", "A-1", 2.0)]),
    ("a fall counts as a move", [MOVE], [msg("A", 100, 0), msg("A", 97.9, 4)], [("jump", "A-1", -2.1)]),
    ("under the threshold: nothing", [MOVE], [msg("A", 100, 0), msg("A", 101.99, 4)], []),
    ("once per window and symbol", [MOVE], [msg("A", 100, 0), msg("A", 103, 1), msg("A", 104, 2)],
     [("jump", "A-1", 3.0)]),
    ("the next window opens at its first price: no move across windows",
     [MOVE], [msg("A", 100, 0), msg("A", 101, 4), msg("A", 103, 5), msg("A", 103.5, 6)], []),
    ("a new window can fire again", [MOVE],
     [msg("A", 100, 0), msg("A", 103, 1), msg("A", 103, 5), msg("A", 106, 6)],
     [("jump", "A-1", 3.0), ("jump", "A-1", 2.9126)]),
    ("symbols have windows of their own", [MOVE],
     [msg("A", 100, 0), msg("B", 50, 0), msg("B", 51, 1), msg("A", 101, 1)], [("jump", "B-1", 2.0)]),
    ("a message without a price moves nothing", [MOVE],
     [msg("A", 100, 0), msg("A", None, 1), msg("A", 100.5, 2)], []),
    ("a late message of an older window is ignored", [MOVE],
     [msg("A", 100, 5), msg("A", 50, 3), msg("A", 100.5, 6)], []),
    ("a CEL condition over one message", [BLOCK],
     [msg("A", 1, 0, type="trade", volume=60000), msg("A", 1, 0, type="price", volume=90000),
      msg("B", 1, 0, type="trade", volume=10)], [("block", "A-1", None)]),
    ("symbols limit a rule", [{**BLOCK, "symbols": ["B"]}],
     [msg("A", 1, 0, type="trade", volume=60000), msg("B", 1, 0, type="trade", volume=60000)],
     [("block", "B-1", None)]),
    ("two rules, in the order of the messages", [MOVE, BLOCK],
     [msg("A", 100, 0, type="price", volume=1), msg("A", 102, 1, type="trade", volume=70000)],
     [("jump", "A-1", 2.0), ("block", "A-1", None)]),
]  # fmt: skip


@pytest.mark.parametrize(("rules", "messages", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rules(rules: list[dict[str, Any]], messages: list[dict[str, Any]], expected: list[Any]) -> None:
    a = Alerts([Rule.of(r) for r in rules])
    got = [x for m in messages for x in a.feed(m)]
    assert [(x["rule"], x["message_id"], x.get("movePercent")) for x in got] == expected
    assert a.errors == 0


def test_a_message_the_condition_cannot_read_raises_nothing_and_is_counted() -> None:
    a = Alerts([Rule.of(BLOCK)])
    assert a.feed(msg("A", 1, 0)) == []  # no m.type
    assert a.errors == 1


def test_an_alert_carries_the_triggering_message_and_the_measure() -> None:
    a = Alerts([Rule.of(MOVE)])
    a.feed(msg("A", 100, 0))
    [alert] = a.feed(msg("A", 102.5, 1, seq=2))
    assert alert == {
        "rule": "jump", "symbol": "A", "message_id": "A-2", "sequence_number": 2, "timestamp": S,
        "price": 102.5, "movePercent": 2.5, "from": 100.0, "windowStart": 0,
    }  # fmt: skip


def test_bad_cel_is_named_by_rule_and_field() -> None:
    got = problems([{"name": "ok", "when": "m.volume > 1"}, {"name": "bad", "when": "m.volume >"},
                    {"name": "who", "when": "volume > 1"}])  # fmt: skip
    assert len(got) == 2
    assert got[0].startswith("spec.processing.alert.rules[1].when (bad): ")
    assert got[1].startswith("spec.processing.alert.rules[2].when (who): unknown variable 'volume'")


@pytest.mark.parametrize(
    ("source", "fields"),
    [
        ('m.type == "trade" && m.volume > 5', ("type", "volume")),
        ("m.price > 1 && m.price < 9", ("price",)),
        ("has(m.side)", ("side",)),
        ("size(m) > 3", None),  # the whole map
        ('m["volume"] > 3', None),
    ],
)
def test_a_condition_gets_only_the_fields_it_reads(source: str, fields: tuple[str, ...] | None) -> None:
    assert fields_read(source) == fields


def test_has_sees_a_field_the_message_lacks_as_absent() -> None:
    a = Alerts([Rule.of({"name": "sided", "when": 'has(m.side) && m.side == "buy"'})])
    assert a.feed(msg("A", 1, 0)) == []
    assert [x["rule"] for x in a.feed(msg("A", 1, 0, side="buy"))] == ["sided"]
    assert a.errors == 0
