"""One StreamingJob reconcile, decided (pure layer; `now` is passed in).

From the spec, the last status, the Deployment, the live consumer pods and what the operator
read from the broker, `plan` decides:
- the consumer count: 0 while suspended; the spec's `replicas` when it is set (a manual
  override, as `kubectl scale` writes it); otherwise the autoscaler's decision
  (scaling.py) under the active strategy (strategies.py). While the broker cannot be read,
  the count stays as it is: a scaler must never act on figures it does not have. On Kafka,
  a consumer beyond the topic's partition count would get no partition: the count, manual
  or automatic, is capped by the partitions, and the decision's message says so;
- which gone consumers' pending entries to hand to the live ones (`reclaim`), and which gone
  consumers with nothing pending to remove from the group (`forget`);
- the status, and whether it is due: at most one write per `WRITE_EVERY` seconds, unless the
  state, a condition, the replica counts or the strategy changed;
- the Events: a scale decision that changes the count, a strategy switch, a broker that
  cannot be read (once per change of its message);
- the anomalies (anomalies.py): each that begins is an Event, the Degraded condition and an
  entry of `status.anomalies`; one whose action is AddConsumer asks for one consumer more
  than the autoscaler, within maxReplicas (and the partitions), while it lasts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta

from dataworks.api import streamingjob as api
from dataworks.core.kit import conditions
from dataworks.core.kit.clock import parse_ts, ts
from dataworks.core.kit.plan import Event, Meta
from dataworks.core.streamingjobs import anomalies, measuring, scaling, strategies
from dataworks.core.streamingjobs import lag as lags

WRITE_EVERY = 5.0  # seconds between status writes that change figures only
READ_EVERY = 1.0  # seconds between readings of the broker
DAY_INDEX = {d: i for i, d in enumerate(api.DAYS)}


@dataclass(frozen=True)
class Broker:
    """What the operator read from the stream and its group."""

    lag: lags.Lag
    pending: int  # entries delivered and not acknowledged
    consumers: dict[str, int]  # each consumer of the group -> its pending entries
    group: measuring.Group
    partitions: int | None = None  # Kafka: the topic's partitions, the most consumers that get one


@dataclass(frozen=True)
class Deployment:
    """The consumers' Deployment, as observed."""

    replicas: int  # what its spec asks for
    current: int  # pods it has
    ready: int


@dataclass(frozen=True)
class Observed:
    deployment: Deployment | None
    pods: frozenset[str] | None  # live (not terminating) consumer pods; None when not listed
    broker: Broker | None = None
    broker_error: str | None = None
    arrival_rate: float | None = None
    oom_killed: frozenset[str] = frozenset()  # "<pod>#<restart>" of consumer containers OOMKilled


@dataclass
class Plan:
    status: api.StreamingJobStatus
    write: bool
    replicas: int  # what the Deployment should ask for
    strategy: strategies.Strategy
    memory: scaling.Memory
    reclaim: list[str] = field(default_factory=list)
    forget: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue_at: datetime | None = None
    watch: anomalies.Memory = field(default_factory=anomalies.Memory)
    began: list[anomalies.Anomaly] = field(default_factory=list)


def plan(
    meta: Meta,
    spec: api.StreamingJobSpec,
    old: api.StreamingJobStatus | None,
    seen: Observed,
    *,
    memory: scaling.Memory,
    now: datetime,
    watch: anomalies.Memory | None = None,
) -> Plan:
    st = old.model_copy(deep=True) if old is not None else api.StreamingJobStatus()
    st.observed_generation = meta.generation
    st.selector = f"{api.OWNER_LABEL}={meta.name}"
    events: list[Event] = []
    dep = seen.deployment
    current = dep.replicas if dep is not None else 0
    arrivals = seen.arrival_rate or 0.0
    active = strategies.active(spec.strategy.default, _windows(spec), _rules(spec), now, arrivals)
    if active.strategy.name != st.strategy:
        if st.strategy is not None:
            message = f"{st.strategy} -> {active.strategy.name}: {active.message}"
            events.append(Event("Normal", "StrategyChanged", message))
        st.strategy = active.strategy.name
    st.strategy_reason = f"{active.reason}: {active.message}"
    b = seen.broker
    if b is not None:
        st.lag, st.lag_exact, st.pending = b.lag.entries, b.lag.exact, b.pending
        st.partitions = b.partitions
        st.processing_rate = _round(b.group.processing_rate)
        st.consumer_rate = _round(b.group.consumer_rate)
        st.latency_p50_ms, st.latency_p99_ms = b.group.p50_ms, b.group.p99_ms
    st.arrival_rate = _round(seen.arrival_rate)

    watch, began = _anomalies(watch or anomalies.Memory(), spec, seen, now, events)
    replicas, decision, memory = _decide(spec, active.strategy, seen, current, memory=memory, now=now)
    replicas, decision = _relief(spec, seen, watch, replicas, decision, now=now)
    last = st.last_decision
    if decision is not None and (
        last is None or (decision.replicas, decision.reason) != (last.replicas, last.reason)
    ):
        if decision.replicas != current and dep is not None:
            events.append(
                Event("Normal", decision.reason, f"{current} -> {decision.replicas}: {decision.message}")
            )
        st.last_decision = decision
    st.desired_replicas = replicas
    st.replicas = dep.current if dep is not None else 0
    st.ready_replicas = dep.ready if dep is not None else 0

    st.anomalies = [
        api.AnomalyStatus(type=a.kind, since=ts(a.since), action=a.action, message=a.message)
        for a in sorted(watch.active.values(), key=lambda a: (a.since, a.kind))
    ]
    reclaim, forget = gone(seen)
    _state_and_conditions(st, spec, seen, replicas, generation=meta.generation, now=now, events=events)
    write = _due(old, st, now)
    if write:
        st.last_reconcile_time = ts(now)
    elif old is not None:
        st.last_reconcile_time = old.last_reconcile_time
    return Plan(
        status=st,
        write=write,
        replicas=replicas,
        strategy=active.strategy,
        memory=memory,
        reclaim=reclaim,
        forget=forget,
        events=events,
        requeue_at=now + timedelta(seconds=READ_EVERY),
        watch=watch,
        began=began,
    )


def _anomalies(
    m: anomalies.Memory, spec: api.StreamingJobSpec, seen: Observed, now: datetime, events: list[Event]
) -> tuple[anomalies.Memory, list[anomalies.Anomaly]]:
    """This reading judged (not while suspended, nor without a reading: no figure, no anomaly)."""
    b = seen.broker
    if spec.suspend or b is None:
        return m, []
    g = b.group
    sample = anomalies.Sample(
        p99_ms=g.p99_ms,
        processing_rate=g.processing_rate,
        arrival_rate=seen.arrival_rate,
        lag=b.lag.entries,
        error_share=g.error_share,
        messages=g.messages,
        throttled_share=g.throttled_share,
        oom_killed=seen.oom_killed,
    )
    m, began, cleared = anomalies.detect(m, sample, now)
    events += [Event("Warning", a.kind, a.message) for a in began]
    for a in cleared:
        lasted = (now - a.since).total_seconds()
        events.append(Event("Normal", "AnomalyCleared", f"{a.kind} cleared after {lasted:.0f} s"))
    return m, began


def _relief(
    spec: api.StreamingJobSpec,
    seen: Observed,
    m: anomalies.Memory,
    replicas: int,
    decision: api.Decision | None,
    *,
    now: datetime,
) -> tuple[int, api.Decision | None]:
    """One consumer more than the autoscaler decided while an anomaly asks for it, and for a
    while after (never over a manual count, while suspended, or beyond maxReplicas and the
    partitions)."""
    if not anomalies.extra_consumers(m, now) or decision is None or spec.replicas is not None or spec.suspend:
        return replicas, decision
    b = seen.broker
    most = (
        min(spec.scaling.max_replicas, b.partitions)
        if b is not None and b.partitions
        else spec.scaling.max_replicas
    )
    if replicas >= most or replicas == 0:
        return replicas, decision
    kinds = ", ".join(sorted(k for k, a in m.active.items() if a.action == "AddConsumer"))
    why = f"for {kinds}" if kinds else "until the hold after an anomaly ends"
    message = f"{decision.message}; one consumer more {why}"
    return replicas + 1, decision.model_copy(
        update={"replicas": replicas + 1, "reason": "Anomaly", "message": message}
    )


def _decide(
    spec: api.StreamingJobSpec,
    strategy: strategies.Strategy,
    seen: Observed,
    current: int,
    *,
    memory: scaling.Memory,
    now: datetime,
) -> tuple[int, api.Decision | None, scaling.Memory]:
    if spec.suspend:
        return (
            0,
            api.Decision(replicas=0, reason="Suspended", message="spec.suspend is true", time=ts(now)),
            memory,
        )
    b = seen.broker
    cap = b.partitions if b is not None and b.partitions else None
    if spec.replicas is not None:
        message = "spec.replicas is set (a manual override; dataworks scale --auto removes it)"
        wanted = spec.replicas
        if cap is not None and wanted > cap:
            wanted, message = cap, f"{message}; {_capped(spec.replicas, cap)}"
        return (
            wanted,
            api.Decision(replicas=wanted, reason="Manual", message=message, time=ts(now)),
            memory,
        )
    if b is None or seen.arrival_rate is None:
        # Blind (the broker is unreadable, or only one reading so far): keep what runs, but
        # never fewer than the floor, so a new StreamingJob starts its minimum at once.
        floor = spec.scaling.min_replicas if not strategy.scale_to_zero else 0
        return max(current, floor), None, memory
    policy = strategies.policy(
        strategy,
        min_replicas=spec.scaling.min_replicas,
        max_replicas=spec.scaling.max_replicas,
        queue_delay_seconds=spec.scaling.queue_delay_seconds,
    )
    sc = spec.scaling
    policy = replace(
        policy,
        max_replicas=min(policy.max_replicas, cap) if cap is not None else policy.max_replicas,
        idle_seconds=sc.idle_seconds,
        default_consumer_rate=sc.consumer_rate,
        min_replicas=0 if sc.min_replicas == 0 else policy.min_replicas,
        catch_up_seconds=sc.catch_up_seconds or policy.catch_up_seconds,
        scale_up_window_seconds=_given(sc.scale_up_window_seconds, policy.scale_up_window_seconds),
        scale_down_window_seconds=_given(sc.scale_down_window_seconds, policy.scale_down_window_seconds),
    )
    if not memory.recommendations and current > 0:
        # A first decision (a new operator, or one restarted): as if what runs had been
        # recommended all along, so a scale-down still waits out its window.
        memory = scaling.Memory(((now, current),), memory.last_active)
    d = scaling.decide(
        policy,
        scaling.Observation(b.lag.entries, seen.arrival_rate, b.group.consumer_rate, current),
        memory,
        now,
    )
    message = d.message
    if cap is not None and d.replicas == cap < sc.max_replicas:
        message = f"{message}; {_capped(sc.max_replicas, cap)}"
    return (
        d.replicas,
        api.Decision(replicas=d.replicas, reason=d.reason, message=message, time=ts(now)),
        d.memory,
    )


def _capped(wanted: int, partitions: int) -> str:
    return f"capped at the topic's {partitions} partitions ({wanted} asked): a consumer beyond them gets none"


def gone(seen: Observed) -> tuple[list[str], list[str]]:
    """Consumers of the group with no live pod: with entries pending (to reclaim), or without
    (to remove from the group). Only known once the pods were listed."""
    if seen.pods is None or seen.broker is None:
        return [], []
    gone = {c: n for c, n in seen.broker.consumers.items() if c not in seen.pods}
    return sorted(c for c, n in gone.items() if n > 0), sorted(c for c, n in gone.items() if n == 0)


def _state_and_conditions(
    st: api.StreamingJobStatus,
    spec: api.StreamingJobSpec,
    seen: Observed,
    replicas: int,
    *,
    generation: int,
    now: datetime,
    events: list[Event],
) -> None:
    def cond(type_: str, value: bool, reason: str, message: str) -> None:
        conditions.set_condition(
            st.conditions, type_, value, reason=reason, message=message, now=now, generation=generation
        )

    ready = st.ready_replicas
    if seen.broker_error is not None:
        if st.message != seen.broker_error:
            events.append(Event("Warning", "BrokerUnreachable", seen.broker_error))
        st.state, st.message = "Degraded", seen.broker_error
        cond("Degraded", True, "BrokerUnreachable", seen.broker_error)
    elif st.anomalies:
        st.message = None
        first = st.anomalies[0]
        cond("Degraded", True, first.type, first.message)
    else:
        st.message = None
        cond("Degraded", False, "BrokerReadable", "the stream and its group were read")
    if spec.suspend:
        st.state = "Suspended"
    elif seen.broker_error is None:
        st.state = "Idle" if replicas == 0 else ("Running" if ready > 0 else "Pending")
    cond(
        "Ready",
        (ready >= replicas > 0) or (replicas == 0 and seen.broker_error is None),
        "ConsumersReady" if ready >= replicas else "ConsumersStarting",
        f"{ready} of {replicas} consumers ready",
    )
    scaling_now = st.replicas != replicas or ready != replicas
    cond(
        "Scaling",
        scaling_now,
        "Scaling" if scaling_now else "AtDesired",
        f"{st.replicas} of {replicas} consumers",
    )
    b = seen.broker
    stalled = (
        b is not None
        and b.lag.entries + b.pending > 0
        and ready > 0
        and b.group.reporting > 0
        and not b.group.processing_rate
    )
    why = "entries wait and no consumer processed any in its last second" if stalled else ""
    cond("Stalled", stalled, "NoProgress" if stalled else "Progressing", why)


def _due(old: api.StreamingJobStatus | None, new: api.StreamingJobStatus, now: datetime) -> bool:
    """Whether the status should be written now (see the module's docstring)."""
    if old is None or old.last_reconcile_time is None:
        return True
    if _shape(old) != _shape(new):
        return True
    return (now - parse_ts(old.last_reconcile_time)).total_seconds() >= WRITE_EVERY


def _shape(s: api.StreamingJobStatus) -> tuple[object, ...]:
    """What of a status is written at once when it changes."""
    decided = (s.last_decision.replicas, s.last_decision.reason) if s.last_decision else None
    counts = (s.replicas, s.ready_replicas, s.desired_replicas, s.partitions)
    conds = tuple((c.type, c.status, c.reason) for c in s.conditions)
    kinds = tuple(a.type for a in s.anomalies)
    return (s.state, counts, s.strategy, s.message, s.observed_generation, s.selector, conds, decided, kinds)


def _windows(spec: api.StreamingJobSpec) -> list[strategies.Window]:
    def clock(v: str) -> time:
        h, m = v.split(":")
        return time(int(h), int(m))

    return [
        strategies.Window(
            strategy=w.strategy,
            start=clock(w.start),
            end=clock(w.end),
            timezone=w.timezone,
            days=frozenset(DAY_INDEX[d] for d in w.days) if w.days else frozenset(range(7)),
        )
        for w in spec.strategy.schedule
    ]


def _rules(spec: api.StreamingJobSpec) -> list[strategies.LoadRule]:
    return [strategies.LoadRule(r.strategy, r.above_rate) for r in spec.strategy.load_rules]


def _given(value: float | None, default: float) -> float:
    return default if value is None else value


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)
