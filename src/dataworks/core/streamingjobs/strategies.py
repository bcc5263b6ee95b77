"""Allocation strategies: named sets of consumer and scaling settings, and which one is active
now (pure layer; `now` is passed in).

Three presets, after the seed's high-throughput, low-latency and cost-optimized modes:
- `throughput`: big batches, consumers run hot (90 %), a backlog may take a minute to drain,
  and scale-down waits five minutes;
- `latency`: short blocking reads (5 ms), consumers at 60 %, a backlog drains in 5 s, and
  scale-down waits ten minutes (capacity is kept rather than risked). Its batches are 100,
  not smaller: measured on the diurnal-day scenario, batches of 10 cost Python consumers so
  much CPU per message that more consumers only made the latency worse;
- `cost`: consumers at 95 %, a backlog may take two minutes, scale-up waits 15 s for the
  load to prove itself, scale-down after one, scale to zero when idle, and spot nodes.

Which is active: a load rule whose rate the arrivals exceed (the first that matches), else
the first schedule window that contains `now` on its own clock (a window may cross midnight),
else the spec's default. The answer carries its reason, for the status and the Event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from dataworks.core.streamingjobs.scaling import Policy


@dataclass(frozen=True)
class Strategy:
    name: str
    batch_size: int  # XREADGROUP COUNT
    block_ms: int  # XREADGROUP BLOCK
    target_utilization: float
    catch_up_seconds: float
    scale_up_window_seconds: float
    scale_down_window_seconds: float
    dead_band: float
    scale_to_zero: bool
    spot: bool  # tolerate spot (preemptible) nodes


PRESETS: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("throughput", 500, 1000, 0.9, 60, 0, 300, 0.2, scale_to_zero=False, spot=False),
        Strategy("latency", 100, 5, 0.6, 5, 0, 600, 0.1, scale_to_zero=False, spot=False),
        Strategy("cost", 200, 2000, 0.95, 120, 15, 60, 0.3, scale_to_zero=True, spot=True),
    )
}


@dataclass(frozen=True)
class Window:
    """`strategy` from `start` to `end` (local time of `timezone`) on `days` (0 is Monday)."""

    strategy: str
    start: time
    end: time
    timezone: str = "UTC"
    days: frozenset[int] = frozenset(range(7))

    def contains(self, now: datetime) -> bool:
        local = now.astimezone(ZoneInfo(self.timezone))
        t = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            return local.weekday() in self.days and self.start <= t < self.end
        if t >= self.start:  # crosses midnight: the evening belongs to today's window
            return local.weekday() in self.days
        return t < self.end and (local.weekday() - 1) % 7 in self.days  # the morning, to yesterday's


@dataclass(frozen=True)
class LoadRule:
    """`strategy` while messages arrive faster than `above_rate` per second."""

    strategy: str
    above_rate: float


@dataclass(frozen=True)
class Active:
    strategy: Strategy
    reason: str  # CamelCase
    message: str


def active(
    default: str, windows: list[Window], rules: list[LoadRule], now: datetime, arrival_rate: float
) -> Active:
    for rule in rules:
        if arrival_rate > rule.above_rate:
            message = f"arrivals {arrival_rate:.0f}/s above {rule.above_rate:g}/s"
            return Active(PRESETS[rule.strategy], "LoadRule", message)
    for w in windows:
        if w.contains(now):
            message = f"schedule window {w.start:%H:%M}-{w.end:%H:%M} {w.timezone}"
            return Active(PRESETS[w.strategy], "Schedule", message)
    return Active(PRESETS[default], "Default", f"the default strategy, {default}")


def policy(strategy: Strategy, *, min_replicas: int, max_replicas: int, queue_delay_seconds: float) -> Policy:
    """The scaling policy of a strategy within the spec's bounds (cost may go to zero)."""
    return Policy(
        min_replicas=0 if strategy.scale_to_zero else max(1, min_replicas),
        max_replicas=max_replicas,
        catch_up_seconds=strategy.catch_up_seconds,
        target_utilization=strategy.target_utilization,
        queue_delay_seconds=queue_delay_seconds,
        scale_up_window_seconds=strategy.scale_up_window_seconds,
        scale_down_window_seconds=strategy.scale_down_window_seconds,
        dead_band=strategy.dead_band,
    )
