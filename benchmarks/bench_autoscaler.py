"""Benchmark: the StreamingJob scaling planner beside KEDA's formula, on the same replayed loads.

Both drive the same fluid queue (tests/builders/queues.py: consumers at 2,000 messages/s each,
ready 2 s after they are asked for), one decision per simulated second:
- dataworks: core/streamingjobs/scaling.py with the `throughput` strategy's settings;
- KEDA + HPA, simulated: every 15 s (the HPA's sync period) `ceil(lag / lagCount)` with
  lagCount 2,000 (the lag one consumer clears in a second), the HPA's 10 % tolerance, its
  scale-up limit (the larger of 4 pods and 100 % per 15 s), and a 300 s scale-down
  stabilization window (the largest recommendation of the last 300 s).

Loads: a 10x step, a diurnal day (86,400 simulated seconds, peak 8x at 10:30 New York, with
10 % noise), and a sawtooth. Per load and scaler: the reaction time to the step (seconds until
the replicas the arrivals need are asked for), queue delay p50/p99, the share of seconds over
a 5 s delay, scale changes, reversals, and consumer-seconds (the cost). The diurnal traces are
drawn to docs/img/autoscaler-diurnal.png. Writes benchmarks/results/autoscaler.json.
"""

from __future__ import annotations

import json
import math
import random
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.harness import REPO
from dataworks.api.generator import GeneratorConfig
from dataworks.core.streamingjobs import scaling, strategies
from dataworks.core.streams.rates import Schedule
from tests.builders.queues import Planner, Trace, planner_of, replay

CONSUMER_RATE = 2000.0
SLO = 5.0


def keda(lag_count: float = CONSUMER_RATE, max_replicas: int = 30) -> Planner:
    """KEDA's lag scaler under the HPA's defaults, one call per simulated second."""
    recs: list[tuple[int, int]] = []
    current = 1

    def plan(seen: scaling.Observation, t: int) -> int:
        nonlocal current
        if t % 15:
            return current
        raw = max(1, math.ceil(seen.lag / lag_count))
        if current and abs(raw / current - 1) <= 0.1:
            raw = current
        raw = min(raw, max_replicas, max(current + 4, 2 * current))
        recs.append((t, raw))
        del recs[: max(0, len(recs) - 21)]  # 300 s of 15 s syncs
        current = raw if raw >= current else max(r for s, r in recs if t - s < 300)
        return current

    return plan


def dataworks(max_replicas: int = 30) -> Planner:
    policy = strategies.policy(
        strategies.PRESETS["throughput"], min_replicas=1, max_replicas=max_replicas, queue_delay_seconds=SLO
    )
    return planner_of(policy)


def diurnal() -> Callable[[int], float]:
    config = GeneratorConfig.model_validate(
        {
            "durationSeconds": 86_400,
            "rate": 2500,
            "start": "2026-12-01T00:00:00-05:00",
            "patterns": {"diurnal": {"peakMultiplier": 8, "widthHours": 3}},
        }
    )
    schedule, noise = Schedule(config), random.Random(11)
    rates = [schedule.rate(t) * noise.uniform(0.9, 1.1) for t in range(86_400)]
    return rates.__getitem__


LOADS: dict[str, tuple[Callable[[], Callable[[int], float]], int]] = {
    "step-10x": (lambda: lambda t: 2000 if t < 300 else 20_000, 1800),
    "diurnal-day": (diurnal, 86_400),
    "sawtooth": (lambda: lambda t: 2000 + 14_000 * ((t % 600) / 600), 3 * 3600),
}


def summary(trace: Trace, load: str) -> dict[str, Any]:
    delays = sorted(min(trace.delay(t), 3600.0) for t in range(len(trace.lag)))
    changes = sum(1 for a, b in zip(trace.desired, trace.desired[1:], strict=False) if a != b)
    row: dict[str, Any] = {
        "delay_p50_s": delays[len(delays) // 2],
        "delay_p99_s": delays[int(len(delays) * 0.99)],
        "over_slo_share": sum(1 for d in delays if d > SLO) / len(delays),
        "scale_changes": changes,
        "reversals": len(trace.reversals()),
        "consumer_seconds": sum(trace.ready),
        "max_replicas": max(trace.desired),
    }
    if load == "step-10x":
        need = math.ceil(20_000 / 0.9 / CONSUMER_RATE)
        row["reaction_s"] = next(t for t in range(300, len(trace.desired)) if trace.desired[t] >= need) - 300
    return row


def plot(traces: dict[str, Trace], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = [t / 3600 for t in range(0, 86_400, 60)]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    any_trace = next(iter(traces.values()))
    top.plot(hours, [any_trace.rate[t] for t in range(0, 86_400, 60)], color="grey", label="arrivals/s")
    top.set_ylabel("messages/s")
    top.legend(loc="upper left")
    for name, trace in traces.items():
        bottom.step(hours, [trace.desired[t] for t in range(0, 86_400, 60)], where="post", label=name)
    bottom.set_ylabel("consumers")
    bottom.set_xlabel("hour (New York)")
    bottom.legend(loc="upper left")
    fig.suptitle("A replayed diurnal day: consumers asked for, dataworks vs KEDA's lag formula")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main() -> None:
    result: dict[str, Any] = {}
    diurnal_traces: dict[str, Trace] = {}
    table = Table(title="the scaling planner vs KEDA's formula, same fluid queue (2,000/s per consumer)")
    for col in (
        "load",
        "scaler",
        "reaction",
        "delay p50",
        "delay p99",
        "> 5 s",
        "changes",
        "reversals",
        "consumer-h",
    ):
        table.add_column(col, justify="left" if col in ("load", "scaler") else "right")
    for load, (make, seconds) in LOADS.items():
        rate = make()
        result[load] = {}
        for name, planner in (("dataworks", dataworks()), ("keda", keda())):
            trace = replay(rate, seconds, planner, consumer_rate=CONSUMER_RATE)
            row = result[load][name] = summary(trace, load)
            if load == "diurnal-day":
                diurnal_traces[name] = trace
            table.add_row(
                load,
                name,
                f"{row['reaction_s']} s" if "reaction_s" in row else "",
                f"{row['delay_p50_s']:.2f} s",
                f"{row['delay_p99_s']:.1f} s",
                f"{row['over_slo_share']:.1%}",
                str(row["scale_changes"]),
                str(row["reversals"]),
                f"{row['consumer_seconds'] / 3600:.1f}",
            )
    Console(width=140).print(table)
    png = REPO / "docs" / "img" / "autoscaler-diurnal.png"
    plot(diurnal_traces, png)
    result["median_delay_ratio_keda_over_dataworks"] = statistics.median(
        result[k]["keda"]["delay_p99_s"] / max(result[k]["dataworks"]["delay_p99_s"], 1e-9) for k in LOADS
    )
    out = REPO / "benchmarks" / "results" / "autoscaler.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)} and {png.relative_to(REPO)}")


if __name__ == "__main__":
    main()
