"""A consumer group as a fluid queue, one-second steps, driven by a scaling planner.

Messages arrive at `rate(t)`; `ready` consumers each process `consumer_rate` per second; a
consumer the planner adds is ready `startup` seconds later, one it removes stops at once. The
planner sees the lag, the last second's arrivals and the true per-consumer rate, as the
StreamingJob controller reads them. Pure: a test, or a benchmark, replays a day in a second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dataworks.core.streamingjobs import scaling

T0 = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass
class Trace:
    """Per second: arrivals, lag, the replicas asked for, those ready, and the reasons."""

    rate: list[float] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)
    desired: list[int] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def delay(self, t: int) -> float:
        """Queue delay at second t: how long the backlog takes at the arrival rate."""
        return self.lag[t] / self.rate[t] if self.rate[t] > 0 else (0.0 if self.lag[t] < 1 else float("inf"))

    def reversals(self) -> list[int]:
        """Seconds at which a scale-up follows a scale-down (an oscillation)."""
        out, last_move = [], 0
        for t in range(1, len(self.desired)):
            move = (self.desired[t] > self.desired[t - 1]) - (self.desired[t] < self.desired[t - 1])
            if move and last_move and move != last_move and move > 0:
                out.append(t)
            last_move = move or last_move
        return out


Planner = Callable[[scaling.Observation, int], int]


def planner_of(policy: scaling.Policy) -> Planner:
    memory = scaling.Memory()

    def plan(seen: scaling.Observation, t: int) -> int:
        nonlocal memory
        d = scaling.decide(policy, seen, memory, T0 + timedelta(seconds=t))
        memory = d.memory
        plan.reasons.append(d.reason)  # type: ignore[attr-defined]
        return d.replicas

    plan.reasons = []  # type: ignore[attr-defined]
    return plan


def replay(
    rate: Callable[[int], float],
    seconds: int,
    planner: Planner,
    *,
    consumer_rate: float = 2000.0,
    startup: int = 2,
    replicas: int = 1,
) -> Trace:
    trace = Trace()
    lag = 0.0
    desired = replicas
    started: list[int] = [-startup] * replicas  # the second each live consumer was asked for
    for t in range(seconds):
        arriving = rate(t)
        ready = sum(1 for s in started if t - s >= startup)
        lag = max(0.0, lag + arriving - ready * consumer_rate)
        seen = scaling.Observation(int(lag), arriving, consumer_rate if ready else None, desired)
        new = planner(seen, t)
        if new > desired:
            started += [t] * (new - desired)
        elif new < desired:
            started = sorted(started)[:new]  # the newest go first
        desired = new
        trace.rate.append(arriving)
        trace.lag.append(lag)
        trace.desired.append(desired)
        trace.ready.append(ready)
    trace.reasons = list(getattr(planner, "reasons", []))
    return trace
