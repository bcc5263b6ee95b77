"""The seeded stream: byte-identical replay, rate shape, correlation, lateness, schema, faults."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pytest

from dataworks.api.generator import GeneratorConfig
from dataworks.core.streams.generating import Generator, shares, weights


def config(**kw: Any) -> GeneratorConfig:
    return GeneratorConfig.model_validate({"seed": 1, "count": 20_000, "rate": 5000, **kw})


def lines(c: GeneratorConfig, only: set[int] | None = None) -> list[bytes]:
    return [line.data for line in Generator(c, only=only).lines()]


def digest(c: GeneratorConfig) -> str:
    return hashlib.sha256(b"\n".join(lines(c))).hexdigest()


def messages(c: GeneratorConfig) -> list[dict[str, Any]]:
    return [json.loads(data) for data in lines(c)]


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes() -> None:
    busy = {
        "late": {"fraction": 0.05},
        "failures": {"duplicates": 0.01, "malformed": 0.01},
        "patterns": {"bursts": {"probability": 0.1}},
        "families": {"bookEverySeconds": 0.5},
    }
    assert digest(config(**busy)) == digest(config(**busy))
    assert digest(config(**busy)) != digest(config(seed=2, **busy))


def test_the_stream_does_not_depend_on_how_it_is_split_across_processes() -> None:
    c = config(late={"fraction": 0.05}, failures={"duplicates": 0.02})
    whole = lines(c)
    dealt = shares(20, 3)
    parts = [lines(c, only=symbols) for symbols in dealt]
    assert sorted(whole) == sorted(d for part in parts for d in part)
    # Each symbol comes from one process, in the order the single process sends it.
    for symbols, part in zip(dealt, parts, strict=True):
        mine = [d for d in whole if int(json.loads(d)["symbol"][3:]) in symbols]
        assert part == mine


@pytest.mark.parametrize(
    ("symbols", "processes", "most_over_mean"),
    [  # the busiest worker's messages over the mean's; dealt by i % processes instead:
        (20, 1, 1.0),
        (20, 2, 1.02),  # 1.13
        (20, 4, 1.02),  # 1.43: the first worker would send 36 % of the messages
        (100, 8, 1.01),  # 1.67
        (5, 4, 1.54),  # 1.97; the busiest symbol alone is 0.39 of the messages
        (3, 4, None),  # more workers than symbols: one sends nothing
    ],
)
def test_workers_get_symbols_that_carry_about_equal_shares(
    symbols: int, processes: int, most_over_mean: float | None
) -> None:
    dealt = shares(symbols, processes)
    assert sorted(i for part in dealt for i in part) == list(range(symbols))  # each symbol once
    assert dealt == shares(symbols, processes)  # the same deal every time
    w = weights(symbols)
    loads = [float(w[sorted(part)].sum()) for part in dealt]
    if most_over_mean is None:
        assert sorted(len(part) for part in dealt) == [0, 1, 1, 1]
    else:
        assert max(loads) * processes <= most_over_mean + 0.005


def test_count_and_duration_end_the_stream() -> None:
    assert len(lines(config(count=1234))) == 1234
    timed = messages(GeneratorConfig.model_validate({"durationSeconds": 3, "rate": 2000}))
    t0 = GeneratorConfig.model_validate({"count": 1}).start.timestamp() * 1e6
    assert max(m["timestamp"] for m in timed) < t0 + 3e6
    assert len(timed) == pytest.approx(6000, rel=0.05)


def test_each_second_carries_its_scheduled_rate() -> None:
    steps = [
        {"at": 0, "rate": 1000},
        {"at": 5, "rate": 4000},
        {"at": 10, "rate": 0},
        {"at": 12, "rate": 2000},
    ]
    c = GeneratorConfig.model_validate({"durationSeconds": 15, "patterns": {"steps": steps}})
    t0 = c.start.timestamp()
    per_second = Counter(int(m["timestamp"] / 1e6 - t0) for m in messages(c))
    for s in range(15):
        expected = 1000 if s < 5 else 4000 if s < 10 else 0 if s < 12 else 2000
        # Poisson: within five standard deviations, and exactly 0 when silent.
        assert abs(per_second[s] - expected) <= 5 * expected**0.5, (s, per_second[s])


def test_same_sector_prices_move_together_and_other_sectors_do_not() -> None:
    c = GeneratorConfig.model_validate(
        {
            "seed": 5,
            "durationSeconds": 400,
            "rate": 400,
            "symbols": {"count": 8, "sectors": 2, "sectorCorrelation": 0.7},
            "families": {"price": 1, "trade": 0, "news": 0},
        }
    )
    last: dict[str, list[float]] = defaultdict(lambda: [np.nan] * 400)
    t0 = c.start.timestamp()
    for m in messages(c):
        last[m["symbol"]][int(m["timestamp"] / 1e6 - t0)] = m["price"]
    prices = np.array([_ffill(last[f"SYM{i:03d}"]) for i in range(8)])
    returns = np.diff(np.log(prices[:, 10:]), axis=1)
    corr = np.corrcoef(returns)
    same = [corr[i, j] for i in range(8) for j in range(i + 1, 8) if i % 2 == j % 2]
    other = [corr[i, j] for i in range(8) for j in range(i + 1, 8) if i % 2 != j % 2]
    # Returns over 1 s: the configured 0.7, lowered by the noise of the bridge between messages.
    assert 0.45 < float(np.mean(same)) < 0.85, same
    assert abs(float(np.mean(other))) < 0.15, other


def _ffill(xs: list[float]) -> list[float]:
    out, last = [], xs[0] if not np.isnan(xs[0]) else 100.0
    for x in xs:
        last = last if np.isnan(x) else x
        out.append(last)
    return out


def test_the_configured_share_of_messages_arrives_late_and_out_of_order() -> None:
    c = config(count=40_000, late={"fraction": 0.1, "meanDelayMs": 300})
    ms = messages(c)
    # A message is out of order when one before it in the stream has a later timestamp.
    newest, overtaken = 0, 0
    for m in ms:
        overtaken += m["timestamp"] < newest
        newest = max(newest, m["timestamp"])
    # Nearly every late message is overtaken (300 ms of delay at 5000/s), none of the others is.
    assert overtaken / len(ms) == pytest.approx(0.1, abs=0.01)


def test_every_schema_version_appears_at_its_time_with_its_change() -> None:
    versions = [
        {"version": 2, "at": 2, "change": "addField"},
        {"version": 3, "at": 4, "change": "renameField"},
        {"version": 4, "at": 6, "change": "widenType"},
    ]
    c = GeneratorConfig.model_validate({"durationSeconds": 8, "rate": 500, "schemaVersions": versions})
    t0 = c.start.timestamp()
    seen: dict[int, set[int]] = defaultdict(set)
    for m in messages(c):
        s, v = int(m["timestamp"] / 1e6 - t0), m["v"]
        seen[v].add(s)
        assert ("currency" in m) == (v >= 2)
        assert ("quantity" in m, "volume" in m) == ((True, False) if v >= 3 else (False, True))
        assert isinstance(m["price"], str) == (v >= 4)
    assert {v: (min(s), max(s)) for v, s in seen.items()} == {1: (0, 1), 2: (2, 3), 3: (4, 5), 4: (6, 7)}


def test_duplicates_repeat_a_message_and_malformed_ones_are_cut_short() -> None:
    c = config(count=30_000, failures={"duplicates": 0.02, "malformed": 0.01})
    data = lines(c)
    counts = Counter(data)
    assert sum(n - 1 for n in counts.values()) / len(data) == pytest.approx(0.02, abs=0.004)
    broken = 0
    for d in data:
        try:
            json.loads(d)
        except json.JSONDecodeError:
            broken += 1
    assert broken / len(data) == pytest.approx(0.01, abs=0.003)


def test_sequence_numbers_count_each_symbol_and_ids_are_unique() -> None:
    ms = messages(config(families={"bookEverySeconds": 1}))
    per: dict[str, list[int]] = defaultdict(list)
    for m in ms:
        per[m["symbol"]].append(m["sequence_number"])
    for seqs in per.values():
        assert seqs == list(range(1, len(seqs) + 1))  # no lateness configured: in order
    assert len({m["message_id"] for m in ms}) == len(ms)
    assert {m["type"] for m in ms} == {"price", "trade", "news", "book"}


def test_bursts_raise_news_the_most() -> None:
    quiet = Counter(m["type"] for m in messages(config(seed=3)))
    c = config(seed=3, patterns={"bursts": {"probability": 1, "multiplier": 4}})
    loud = Counter(m["type"] for m in messages(c))
    assert loud["news"] / sum(loud.values()) > 3 * quiet["news"] / sum(quiet.values())
