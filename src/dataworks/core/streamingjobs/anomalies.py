"""A StreamingJob's anomalies, detected and answered (pure layer; `now` is passed in).

Each reading of the broker (once a second) gives a `Sample`: the group's p99 latency as the
consumers report it, its processing and arrival rates, the lag, the share of messages that
were errors and of CPU periods throttled, and the consumer containers the kernel killed for
memory. `detect` keeps a short memory (the latency baseline, how long each test has held) and
says which anomalies are active, since when, and what is done about each:

| anomaly        | active when                                                   | for        | action      |
|----------------|---------------------------------------------------------------|------------|-------------|
| LatencySpike   | p99 > SPIKE_FACTOR x the baseline p99, and SPIKE_MS above it  | 5 readings | AddConsumer |
| ThroughputDrop | the lag grows while processing < DROP_SHARE of the arrivals   | 10         | AddConsumer |
| ErrorRate      | errors > ERROR_SHARE of the messages read                     | 5          | None        |
| CPUThrottled   | the consumers were throttled in > THROTTLED_SHARE of periods  | 10         | AddConsumer |
| OOMKilled      | a consumer container was killed for memory                    | at once    | None        |

The baseline is the median p99 of the last BASELINE readings that were not a spike; no
spike is judged before MIN_BASELINE of them. An anomaly clears after CLEAR readings without
its test holding, so one good second does not end it (and one bad second does not start it).

`AddConsumer` asks for one consumer more than the autoscaler would, within maxReplicas, for
as long as the anomaly lasts and HOLD seconds after it cleared: latency that rises without
lag, work the group cannot keep up with, and a CPU limit that throttles the consumers are each
relieved by one more consumer. The hold keeps the consumer that relieved it from leaving at
once and bringing the anomaly back (a cycle of about 15 s without it).
Errors and OOM kills are not: more consumers would fail the same way. Their action is None,
and the message says what a person should change.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

SPIKE_FACTOR = 3.0
SPIKE_MS = 50.0  # a spike is also this far above the baseline: 1 ms to 3 ms is not one
BASELINE = 300  # readings (5 minutes)
MIN_BASELINE = 20
DROP_SHARE = 0.5
MIN_DROP_RATE = 10.0  # messages/s: below this arrival rate no drop is judged
ERROR_SHARE = 0.05
MIN_MESSAGES = 20  # messages in a reading: fewer say nothing about an error rate
THROTTLED_SHARE = 0.5
CLEAR = 10  # readings without the test holding before an anomaly clears
HOLD = 120.0  # seconds the extra consumer of an AddConsumer anomaly stays after it cleared

FOR: dict[str, int] = {
    "LatencySpike": 5,
    "ThroughputDrop": 10,
    "ErrorRate": 5,
    "CPUThrottled": 10,
    "OOMKilled": 1,
}
ACTION: dict[str, str] = {
    "LatencySpike": "AddConsumer",
    "ThroughputDrop": "AddConsumer",
    "ErrorRate": "None",
    "CPUThrottled": "AddConsumer",
    "OOMKilled": "None",
}


@dataclass(frozen=True)
class Sample:
    """One reading's figures; None where there is no figure (no consumer reported)."""

    p99_ms: float | None = None
    processing_rate: float | None = None
    arrival_rate: float | None = None
    lag: int | None = None
    error_share: float | None = None  # errors / messages read, over the reporting consumers
    messages: int = 0  # messages read in the reports behind error_share
    throttled_share: float | None = None  # throttled CPU periods / periods
    oom_killed: frozenset[str] = frozenset()  # "<pod>#<restart>" of each OOM kill seen so far


@dataclass(frozen=True)
class Anomaly:
    kind: str
    since: datetime
    message: str
    action: str  # AddConsumer or None


@dataclass(frozen=True)
class Memory:
    baseline: tuple[float, ...] = ()  # p99s of recent readings that were not spikes
    holding: dict[str, int] = field(default_factory=dict)  # kind -> readings its test has held
    quiet: dict[str, int] = field(default_factory=dict)  # kind -> readings since it last held
    active: dict[str, Anomaly] = field(default_factory=dict)
    last_lag: int | None = None
    ooms: frozenset[str] = frozenset()
    started: bool = False  # the first sample was seen (the OOM kills before it are old news)
    relief_until: datetime | None = None  # the extra consumer stays until then (HOLD)


def _tests(s: Sample, m: Memory) -> dict[str, str]:
    """Each test that holds in this sample -> what it saw."""
    held: dict[str, str] = {}
    base = statistics.median(m.baseline) if len(m.baseline) >= MIN_BASELINE else None
    if s.p99_ms is not None and base is not None and s.p99_ms > max(SPIKE_FACTOR * base, base + SPIKE_MS):
        held["LatencySpike"] = f"p99 {s.p99_ms:.0f} ms against a baseline of {base:.0f} ms"
    arrivals, done = s.arrival_rate, s.processing_rate
    growing = s.lag is not None and m.last_lag is not None and s.lag > m.last_lag
    slow = arrivals is not None and done is not None and done < DROP_SHARE * arrivals
    if slow and growing and arrivals is not None and arrivals >= MIN_DROP_RATE:
        held["ThroughputDrop"] = (
            f"{done:.0f} messages/s processed while {arrivals:.0f}/s arrive and the lag grows"
        )
    if s.error_share is not None and s.messages >= MIN_MESSAGES and s.error_share > ERROR_SHARE:
        held["ErrorRate"] = f"{s.error_share:.0%} of the messages read were errors"
    if s.throttled_share is not None and s.throttled_share > THROTTLED_SHARE:
        held["CPUThrottled"] = f"consumers throttled in {s.throttled_share:.0%} of their CPU periods"
    new_ooms = s.oom_killed - m.ooms if m.started else frozenset()
    if new_ooms:
        pods = ", ".join(sorted(x.split("#")[0] for x in new_ooms))
        held["OOMKilled"] = f"a consumer container was killed for memory ({pods})"
    return held


def _action_text(kind: str) -> str:
    if kind == "ErrorRate":
        return (
            "none: errors are acknowledged and counted, and more consumers would fail alike; "
            "read the consumers' logs"
        )
    if kind == "OOMKilled":
        return "none: the kubelet restarted the container; raise spec.resources.limits.memory"
    return "one consumer more than the autoscaler asks, within maxReplicas, while it lasts"


def detect(m: Memory, s: Sample, now: datetime) -> tuple[Memory, list[Anomaly], list[Anomaly]]:
    """The memory after this sample, the anomalies that began, and those that cleared."""
    held = _tests(s, m)
    holding = {k: m.holding.get(k, 0) + 1 for k in held}
    quiet = {k: (0 if k in held else m.quiet.get(k, 0) + 1) for k in FOR}
    active = dict(m.active)
    began: list[Anomaly] = []
    cleared: list[Anomaly] = []
    for kind, seen in held.items():
        if kind not in active and holding[kind] >= FOR[kind]:
            a = Anomaly(kind, now, f"{seen}; action: {_action_text(kind)}", ACTION[kind])
            active[kind] = a
            began.append(a)
    relief_until = m.relief_until
    for kind in list(active):
        if quiet[kind] >= CLEAR:
            cleared.append(active.pop(kind))
            if cleared[-1].action == "AddConsumer":
                relief_until = now + timedelta(seconds=HOLD)
    baseline = m.baseline
    if s.p99_ms is not None and "LatencySpike" not in held and "LatencySpike" not in active:
        baseline = (*baseline, s.p99_ms)[-BASELINE:]
    memory = replace(
        m,
        baseline=baseline,
        holding=holding,
        quiet=quiet,
        active=active,
        last_lag=s.lag if s.lag is not None else m.last_lag,
        ooms=m.ooms | s.oom_killed,
        started=True,
        relief_until=relief_until,
    )
    return memory, began, cleared


def extra_consumers(m: Memory, now: datetime) -> int:
    """Consumers to ask for beyond the autoscaler's decision: one while any active anomaly's
    action is AddConsumer, and until HOLD seconds after the last such one cleared."""
    if any(a.action == "AddConsumer" for a in m.active.values()):
        return 1
    return 1 if m.relief_until is not None and now < m.relief_until else 0
