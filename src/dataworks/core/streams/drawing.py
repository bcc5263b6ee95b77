"""One second of the generated market, drawn at once for every symbol (pure layer).

Every draw of second `s` comes from one generator seeded by `(seed, s)`, in a fixed order, as
whole arrays: numpy does the per-message work, so a second costs a few dozen calls whatever the
number of symbols and messages. What a second holds:
- per symbol, Poisson counts of price updates, trades and news at its share of the rate (news
  multiplied again during a burst), and order-book snapshots at a fixed period and phase;
- per message, a uniform time in the second, a volume, a late delay, and the duplicate,
  malformed and side coin flips;
- prices: the second's log-return of a symbol mixes its sector's factor (correlation `rho`)
  with its own noise; between its messages, a Brownian bridge of its own noise leads from the
  second's first price to the next second's, so same-sector symbols move together.

Messages are sorted by symbol, then time; `first[i]:first[i+1]` is symbol i's slice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dataworks.api.generator import GeneratorConfig

BLOCK_STREAM = 2  # a seed sequence's second word: rates.py uses 1 for bursts
NEWS_WORDS = (60, 600)  # a news body's length in words: lognormal, clipped to this range


@dataclass(frozen=True)
class Second:
    """Every message of one second, sorted by symbol then time (arrays of one length)."""

    symbol: np.ndarray
    kind: np.ndarray  # 0 price, 1 trade, 2 news, 3 book
    t: np.ndarray  # schedule seconds
    price: np.ndarray
    volume: np.ndarray
    delay: np.ndarray  # seconds a late message arrives after its time; 0 for the others
    dup: np.ndarray
    bad: np.ndarray
    buy: np.ndarray
    news_words: list[np.ndarray]  # the word indices of each news message, in message order
    book_sizes: np.ndarray  # one row of 2 x levels sizes per book message, in message order

    @property
    def size(self) -> int:
        return int(self.t.size)


def draw(
    c: GeneratorConfig, s: int, *, rate: float, boost: float, log_price: np.ndarray, weights: np.ndarray
) -> Second:
    """Draw second `s`; advances `log_price` (one entry per symbol) to the second's end."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([c.seed, BLOCK_STREAM, s])))
    n_sym, f = c.symbols.count, c.families
    rho, vol = c.symbols.sector_correlation, c.symbols.volatility
    factors = rng.standard_normal(c.symbols.sectors)
    own = rng.standard_normal(n_sym)
    lam = rate * weights
    counts = rng.poisson(np.stack([lam * f.price, lam * f.trade, lam * f.news * boost], axis=1))
    symbol = np.repeat(np.repeat(np.arange(n_sym), 3), counts.ravel())
    kind = np.repeat(np.tile(np.arange(3), n_sym), counts.ravel())
    t = rng.random(symbol.size)  # within the second; s + t on the way out
    if f.book_every_seconds > 0:
        bs, bt = _books(s, n_sym, f.book_every_seconds)
        bt = bt - s
        symbol, kind, t = (
            np.concatenate([symbol, bs]),
            np.concatenate([kind, np.full(bs.size, 3)]),
            np.concatenate([t, bt]),
        )
    order = np.lexsort((t, symbol))
    symbol, kind, t = symbol[order], kind[order], t[order]
    n = t.size
    first = np.searchsorted(symbol, np.arange(n_sym + 1))
    starts = np.zeros(n, dtype=bool)
    starts[first[:-1][first[:-1] < n]] = True
    # The bridge: a walk of the symbol's own noise over its messages, pinned to 0 at the end.
    dt = np.where(starts, t, np.diff(t, prepend=0.0))
    steps = np.sqrt(dt) * rng.standard_normal(n) * vol
    walk = _segment_cumsum(steps, first)
    has = first[1:] > first[:-1]
    last = np.where(has, first[1:] - 1, 0)
    t_last, walk_last = (t[last], walk[last]) if n else (np.zeros(n_sym), np.zeros(n_sym))
    tail = np.where(has, 1 - t_last, 1.0)
    end = np.where(has, walk_last, 0.0) + np.sqrt(tail) * vol * rng.standard_normal(n_sym)
    sector = np.arange(n_sym) % c.symbols.sectors
    ret = vol * (math.sqrt(rho) * factors[sector] + math.sqrt(1 - rho) * own)
    logp = log_price[symbol] + ret[symbol] * t + (walk - t * end[symbol]) * math.sqrt(1 - rho)
    log_price += ret
    volume = np.maximum(1, rng.lognormal(4.5, 1.0, n)).astype(np.int64) * 10
    late = rng.random(n) < c.late.fraction
    delay = np.where(late, rng.exponential(c.late.mean_delay_ms / 1000, n), 0.0)
    dup = rng.random(n) < c.failures.duplicates
    bad = rng.random(n) < c.failures.malformed
    buy = rng.random(n) < 0.5
    n_news = int((kind == 2).sum())
    lengths = np.clip(rng.lognormal(4.8, 0.6, n_news), *NEWS_WORDS).astype(np.int64)
    words = rng.integers(0, 1 << 16, int(lengths.sum()))
    news_words = np.split(words, np.cumsum(lengths)[:-1]) if n_news else []
    book_sizes = rng.integers(1, 50, (int((kind == 3).sum()), 2 * f.book_levels)) * 100
    return Second(symbol, kind, s + t, np.exp(logp), volume, delay, dup, bad, buy, news_words, book_sizes)


def _books(s: int, n_sym: int, every: float) -> tuple[np.ndarray, np.ndarray]:
    """Each symbol's snapshots in [s, s+1): period `every`, phase spread by the golden ratio."""
    phase = (np.arange(n_sym) * 0.6180339887 % 1.0) * every
    k0 = np.ceil((s - phase) / every)
    per = math.ceil(1 / every) + 1
    times = phase[:, None] + (k0[:, None] + np.arange(per)[None, :]) * every
    inside = (times >= s) & (times < s + 1)
    sym = np.broadcast_to(np.arange(n_sym)[:, None], times.shape)
    return sym[inside], times[inside]


def _segment_cumsum(x: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Cumulative sums that restart at every `first` offset."""
    total = np.cumsum(x)
    begins = first[:-1][first[:-1] < x.size]
    before = np.where(begins > 0, total[np.maximum(begins - 1, 0)], 0.0)
    counts = np.diff(np.append(begins, x.size))
    offset = np.repeat(before, counts)
    return np.asarray(total - offset)
