"""How many consumers a StreamingJob needs now (pure layer; `now` is passed in).

The formula has an arrival-rate term, as the Flink autoscaler's does and KEDA's and
Numaflow's do not:

    needed = ceil((lag / catchUpSeconds + arrivalRate / targetUtilization) / perConsumerRate)

so a scaler keeps the capacity the arrivals need after the backlog drains, instead of settling
with a latency-sized backlog and scaling down the moment it is gone. Around it:
- a dead band: while the queue delay (lag / arrival rate) meets its target, a recommendation
  within `deadBand` of the current count changes nothing;
- stabilization windows, as the HPA's behaviour has them: a scale-up takes the smallest
  recommendation of the last `scaleUpWindowSeconds` (0: at once), a scale-down the largest of
  the last `scaleDownWindowSeconds`, so a dip shorter than the window does not scale down;
- scale to zero when `minReplicas` is 0 and nothing arrived nor waited for `idleSeconds`, and
  a wake-up to at least one consumer on the first message, with no window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Policy:
    min_replicas: int = 1
    max_replicas: int = 10
    catch_up_seconds: float = 30.0
    target_utilization: float = 0.8
    queue_delay_seconds: float = 5.0  # the SLO: lag / arrival rate
    scale_up_window_seconds: float = 0.0
    scale_down_window_seconds: float = 60.0
    dead_band: float = 0.1
    idle_seconds: float = 300.0
    default_consumer_rate: float = 1000.0  # messages/s per consumer until one is measured


@dataclass(frozen=True)
class Observation:
    lag: int
    arrival_rate: float  # messages/s arriving
    consumer_rate: float | None  # messages/s one consumer processes while busy (None: unknown)
    replicas: int  # what the Deployment asks for now


@dataclass(frozen=True)
class Memory:
    """What a decision remembers for the next: recent recommendations, last sign of life."""

    recommendations: tuple[tuple[datetime, int], ...] = ()  # runs: (since, replicas)
    last_active: datetime | None = None


@dataclass(frozen=True)
class Decision:
    replicas: int
    reason: str  # CamelCase, for conditions, Events and the metric's label
    message: str
    memory: Memory = field(default_factory=Memory)


def decide(policy: Policy, seen: Observation, memory: Memory, now: datetime) -> Decision:
    rate = (
        seen.consumer_rate if seen.consumer_rate and seen.consumer_rate > 0 else policy.default_consumer_rate
    )
    need = seen.lag / policy.catch_up_seconds + seen.arrival_rate / policy.target_utilization
    raw = math.ceil(need / rate - 1e-9) if need > 0 else 0
    why = (
        f"lag {seen.lag} / {policy.catch_up_seconds:g} s + arrivals {seen.arrival_rate:.0f}/s"
        f" / {policy.target_utilization:g} at {rate:.0f}/s per consumer needs {raw}"
    )
    busy = seen.lag > 0 or seen.arrival_rate > 0
    last_active = now if busy else memory.last_active
    idle = last_active is None or now - last_active >= timedelta(seconds=policy.idle_seconds)
    floor = 0 if policy.min_replicas == 0 and idle else max(policy.min_replicas, 1)
    target = min(max(raw, floor), policy.max_replicas)
    current = seen.replicas
    delay = seen.lag / seen.arrival_rate if seen.arrival_rate > 0 else (0.0 if seen.lag == 0 else math.inf)
    if (
        current > 0
        and abs(target - current) <= policy.dead_band * current
        and delay <= policy.queue_delay_seconds
    ):
        target = current  # near enough, and the queue delay meets its target
    recs = _remember(memory.recommendations, now, target, policy)
    mem = Memory(recs, last_active)
    if current == 0 and busy:  # the first message wakes the group, with no window
        return Decision(max(1, target), "WakeUp", f"a message arrived: {why}", mem)
    if target > current:
        up = min(_within(recs, now, policy.scale_up_window_seconds))
        if up > current:
            return Decision(up, "ScaleUp", why, mem)
        return Decision(current, "Stabilizing", f"{why}; waiting out the scale-up window", mem)
    if target < current:
        down = max(_within(recs, now, policy.scale_down_window_seconds))
        if down < current:
            reason = "ScaleToZero" if down == 0 else "ScaleDown"
            return Decision(down, reason, why if down else f"idle for {policy.idle_seconds:g} s", mem)
        return Decision(current, "Stabilizing", f"{why}; waiting out the scale-down window", mem)
    return Decision(current, "Steady", why, mem)


Recommendations = tuple[tuple[datetime, int], ...]


def _remember(recs: Recommendations, now: datetime, target: int, policy: Policy) -> Recommendations:
    """Recommendations as runs: (since, replicas), a new entry only when the value changes;
    runs that ended before the longer window are forgotten."""
    if not recs or recs[-1][1] != target:
        recs = (*recs, (now, target))
    horizon = now - timedelta(seconds=max(policy.scale_up_window_seconds, policy.scale_down_window_seconds))
    first = 0
    while first + 1 < len(recs) and recs[first + 1][0] <= horizon:
        first += 1  # run `first` ended when run `first + 1` began, at or before the horizon
    return recs[first:]


def _within(recs: Recommendations, now: datetime, seconds: float) -> list[int]:
    """The values recommended at some time in the last `seconds` (now included)."""
    start = now - timedelta(seconds=seconds)
    ends = [since for since, _ in recs[1:]] + [now + timedelta(seconds=1)]
    return [value for (_, value), end in zip(recs, ends, strict=True) if end > start]
