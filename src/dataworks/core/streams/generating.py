"""The seeded market-data stream (pure layer): one configuration, one byte-identical sequence.

Schedule time is cut into one-second blocks, each drawn at once by core/streams/drawing.py
from a generator seeded by `(seed, second)`. This module numbers each symbol's messages,
formats them as JSON lines at their schema version, and sends them in order of arrival (event
time plus any late delay): a late message keeps its event `timestamp` and arrives after
messages newer than it, possibly seconds later.

The sequence does not depend on how fast it is consumed. A worker of `--processes N` draws
every second whole but formats only its own symbols (`only`), so together the workers send
exactly the lines one process would, and each symbol in its order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from dataworks.api.generator import GeneratorConfig
from dataworks.core.streams import drawing
from dataworks.core.streams.rates import Schedule

# fmt: off
WORDS = (
    "earnings", "beat", "guidance", "raised", "merger", "talks", "regulator", "probe", "dividend", "cut",
    "outlook", "upgrade", "downgrade", "supply", "chain", "chip", "demand", "rate", "decision", "buyback",
    "lawsuit", "settles", "launch", "recall", "record", "quarter",
)
# fmt: on
WORDS_ARRAY = np.array(WORDS, dtype=object)


class Line(NamedTuple):
    """One message as it leaves: the symbol it is keyed by, and its bytes."""

    symbol: int
    data: bytes


class Chunk(NamedTuple):
    """The lines of one second that this process sends, with their symbols and their arrival
    times in schedule seconds (what `--realtime` paces on)."""

    data: list[bytes]
    symbols: list[int]
    arrivals: list[float]

    @property
    def until(self) -> float:
        return self.arrivals[-1]


class Pending(NamedTuple):
    """Lines waiting to leave, column by column, in order of (arrival, symbol, sequence number,
    copy). Every process keeps every line, to count them, but only its own carry `data`
    (another's is None): the columns cost a worker of `--processes N` little for the lines it
    does not send."""

    arrival: np.ndarray  # schedule seconds
    symbol: np.ndarray
    seq: np.ndarray
    copy: np.ndarray  # 1 for a duplicate's second sending
    data: np.ndarray  # bytes, or None for another process's line

    @classmethod
    def empty(cls) -> Pending:
        ints = np.empty(0, np.int64)
        return cls(np.empty(0), ints, ints, np.empty(0, np.int8), np.empty(0, object))

    @property
    def size(self) -> int:
        return int(self.arrival.size)

    def then(self, more: Pending) -> Pending:
        """These and `more`, in order (a stable sort: the keys of two lines always differ)."""
        both = [np.concatenate(pair) for pair in zip(self, more, strict=True)]
        order = np.lexsort((both[3], both[2], both[1], both[0]))
        return Pending(*(column[order] for column in both))

    def due_before(self, t: float) -> int:
        """How many arrive before schedule time `t`."""
        return int(np.searchsorted(self.arrival, t, side="left"))

    def split(self, cut: int) -> tuple[Pending, Pending]:
        return Pending(*(c[:cut] for c in self)), Pending(*(c[cut:] for c in self))


def symbol_name(i: int) -> str:
    return f"SYM{i:03d}"


def weights(n: int) -> np.ndarray:
    """Each symbol's share of the rate: a few busy symbols and a long tail (Zipf, s=0.8)."""
    w = 1 / np.arange(1, n + 1) ** 0.8
    return np.asarray(w / w.sum())


def shares(n: int, processes: int) -> list[set[int]]:
    """The symbols each of `processes` workers sends, so that each sends about as many
    messages: the busiest symbol first, each to the worker with the least so far. (Dealt by
    `i % processes`, the first of 4 workers would send 36 % of 20 Zipf symbols' messages and
    hold the others up.) Ties go to the lower worker, so the deal is the same every time."""
    load = [0.0] * processes
    out: list[set[int]] = [set() for _ in range(processes)]
    for i, w in enumerate(weights(n).tolist()):  # weights fall with i: busiest first
        k = min(range(processes), key=lambda j: (load[j], j))
        out[k].add(i)
        load[k] += w
    return out


class Generator:
    """Iterates the lines of one configuration (`only`: the symbols this process formats)."""

    def __init__(
        self, config: GeneratorConfig, only: set[int] | None = None, *, realtime_start: float | None = None
    ) -> None:
        self.c = config
        self.schedule = Schedule(config)
        n = config.symbols.count
        self.mine = np.ones(n, dtype=bool) if only is None else np.isin(np.arange(n), list(only))
        self.weights = weights(n)
        self.log_price = np.full(n, math.log(config.symbols.start_price))
        self.sequence = np.zeros(n, dtype=np.int64)
        # A message's timestamp is schedule time after `start`; under --realtime it is when the
        # message is due on the wall clock instead, realtime_start + schedule time / timeMultiplier,
        # so consumers can measure latency end to end (the rate shapes still follow `start`).
        if realtime_start is None:
            self.t0_us, self.us_per_second = int(config.start.timestamp() * 1_000_000), 1_000_000.0
        else:
            self.t0_us, self.us_per_second = (
                int(realtime_start * 1_000_000),
                1_000_000 / config.time_multiplier,
            )
        self.names_array = np.array([symbol_name(i) for i in range(n)], dtype=object)
        self.exchanges_array = np.array(config.symbols.exchanges, dtype=object)
        versions = [1, *(v.version for v in config.schema_versions)]
        self.version_at = np.asarray([v.at for v in config.schema_versions], dtype=float)
        self.templates_array = np.array([_templates(v, config) for v in versions], dtype=object)
        self.pending = Pending.empty()

    def chunks(self) -> Iterator[Chunk]:
        """The lines in arrival order, one chunk per second of schedule time, up to `count`
        lines (counting every process's) or `durationSeconds`."""
        emitted, second = 0, 0
        end, count = self.c.duration_seconds, self.c.count
        while end is None or second < end:
            self.pending = self.pending.then(self._block(second))
            last = end is not None and second + 1 >= end
            cut = self.pending.size if last else self.pending.due_before(second + 1.0)
            if count is not None and emitted + cut >= count:
                cut, last = count - emitted, True
            ready, self.pending = self.pending.split(cut)
            emitted += cut
            mine = self.mine[ready.symbol]
            if mine.any():
                yield Chunk(
                    ready.data[mine].tolist(), ready.symbol[mine].tolist(), ready.arrival[mine].tolist()
                )
            if last:
                return
            second += 1

    def lines(self) -> Iterator[Line]:
        """One line at a time (tests and small tools; `chunks` is the fast path)."""
        for chunk in self.chunks():
            for symbol, data in zip(chunk.symbols, chunk.data, strict=True):
                yield Line(symbol, data)

    def _block(self, s: int) -> Pending:
        c = self.c
        boost = c.patterns.bursts.multiplier if c.patterns.bursts and self.schedule.bursting(s) else 1.0
        d = drawing.draw(
            c, s, rate=self.schedule.rate(s), boost=boost, log_price=self.log_price, weights=self.weights
        )
        keep = ~self.schedule.silent(d.t)
        # Sequence numbers count each symbol's kept messages, on from the last second's.
        kept = np.cumsum(keep)
        starts = np.searchsorted(d.symbol, np.arange(c.symbols.count))
        before = np.where(starts > 0, kept[np.maximum(starts - 1, 0)], 0) if d.size else starts
        seq = self.sequence[d.symbol] + kept - before[d.symbol]
        self.sequence += np.diff(np.append(before, kept[-1] if d.size else 0))
        mine = self.mine[d.symbol] & keep
        data = np.empty(d.size, dtype=object)  # another process's lines: counted, never formatted
        if mine.any():
            data[mine] = self._format(d, mine, seq)
        idx = np.flatnonzero(keep)
        copies = np.flatnonzero(keep & d.dup)
        both = np.concatenate([idx, copies])
        return Pending(
            (d.t + d.delay)[both],
            d.symbol[both],
            seq[both],
            np.repeat(np.array([0, 1], dtype=np.int8), [idx.size, copies.size]),
            data[both],
        )

    def _format(self, d: drawing.Second, mine: np.ndarray, seq: np.ndarray) -> list[bytes]:
        """The lines of the messages in `mine`, column by column."""
        c = self.c
        idx = np.flatnonzero(mine)
        sym, kind, n = d.symbol[idx], d.kind[idx], seq[idx]
        names = self.names_array[sym].tolist()
        exchanges = self.exchanges_array[(n + sym) % self.exchanges_array.size].tolist()
        version = np.searchsorted(self.version_at, d.t[idx], side="right")
        templates = self.templates_array[version, kind].tolist()
        price = d.price[idx].tolist()
        ts_us = (self.t0_us + (d.t[idx] * self.us_per_second).astype(np.int64)).tolist()
        bodies: list[str] = [""] * idx.size
        for k in np.flatnonzero(kind == 1).tolist():
            bodies[k] = ',"side":"buy"' if d.buy[idx[k]] else ',"side":"sell"'
        news_of, book_of = np.cumsum(d.kind == 2) - 1, np.cumsum(d.kind == 3) - 1
        for k in np.flatnonzero(kind == 2).tolist():
            bodies[k] = _news(d.news_words[news_of[idx[k]]])
        levels = c.families.book_levels
        for k in np.flatnonzero(kind == 3).tolist():
            bodies[k] = _book(price[k], d.book_sizes[book_of[idx[k]]].tolist(), levels)
        n_l = n.tolist()
        fields = zip(
            names, exchanges, price, d.volume[idx].tolist(), ts_us, names, n_l, n_l, bodies, strict=True
        )
        lines = [(tpl % f).encode() for tpl, f in zip(templates, fields, strict=True)]
        for k in np.flatnonzero(d.bad[idx]).tolist():
            lines[k] = lines[k][: len(lines[k]) // 2]
        return lines


def _news(words: np.ndarray) -> str:
    text = WORDS_ARRAY[words % WORDS_ARRAY.size].tolist()
    return f',"headline":"{" ".join(text[:8])}","body":"{" ".join(text)}"'


def _book(price: float, sizes: list[int], levels: int) -> str:
    bids = ",".join(f"[{price - 0.01 * (k + 1):.2f},{sizes[k]}]" for k in range(levels))
    asks = ",".join(f"[{price + 0.01 * (k + 1):.2f},{sizes[levels + k]}]" for k in range(levels))
    return f',"bids":[{bids}],"asks":[{asks}]'


def _templates(version: int, config: GeneratorConfig) -> list[str]:
    """The %-format of each family's message at `version` (changes accumulate)."""
    changes = {sv.change for sv in config.schema_versions if sv.version <= version}
    price = '"price":"%.4f"' if "widenType" in changes else '"price":%.4f'
    volume = '"quantity":%d' if "renameField" in changes else '"volume":%d'
    currency = ',"currency":"USD"' if "addField" in changes else ""
    out = []
    for family in ("price", "trade", "news", "book"):
        out.append(
            f'{{"v":{version},"type":"{family}","symbol":"%s","exchange":"%s",{price},{volume},'
            f'"timestamp":%d,"message_id":"%s-%d","sequence_number":%d{currency}%s}}'
        )
    return out
