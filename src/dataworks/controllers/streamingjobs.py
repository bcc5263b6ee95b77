"""The StreamingJob controller: what a runtime needs to reconcile StreamingJobs.

It owns the consumers' Deployment and watches it and its pods (routed by the owner label:
their controller is the Deployment's ReplicaSet). Every reconcile runs again a second later
(`planning.READ_EVERY`), so the broker is read about once per second per StreamingJob.

- **observe** reads the stream and its group through a `RedisBroker`, or the topic and its
  group through a `KafkaBroker` (a Redis password from the Secret the spec names: get, by
  name), measures the arrival rate over the last readings,
  folds the consumers' reports, and hands the pending entries of consumers whose pods are
  gone to the live ones (the broker write `planning.gone` decides; core never writes).
- **plan** validates the spec, calls `core.streamingjobs.planning`, and turns its Plan into
  Actions: the Deployment created, or patched when its replica count or template changed;
  the status when it is due; the Events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from dataworks import __version__
from dataworks.api import streamingjob as api
from dataworks.controllers.base import Children, Controller, Reader, meta_of, read_status
from dataworks.core.kit import conditions
from dataworks.core.kit.clock import ts
from dataworks.core.kit.plan import Actions, Event, Meta
from dataworks.core.streamingjobs import anomalies, measuring, planning, scaling
from dataworks.core.streams import alerts
from dataworks.kube import errors
from dataworks.manifests import streamingjobs as manifests
from dataworks.manifests.owner import Owner

log = logging.getLogger("dataworks.operator")
DEFAULT_IMAGE = f"ghcr.io/dataworks/worker:{__version__}"


class Broker(Protocol):
    """What the controller reads from and does to a stream or a topic (streams/brokering.py,
    streams/kafkabrokering.py)."""

    async def read(self, stream: str, group: str, *, start_from: str) -> Any: ...
    async def reclaim(self, stream: str, group: str, consumer: str) -> int: ...
    async def forget(self, stream: str, group: str, consumer: str) -> None: ...


Credentials = tuple[tuple[str, str], ...]  # (environment variable, value) of each, as the consumers get them


def open_broker(kind: str, address: str, credentials: Credentials) -> Broker:
    given = dict(credentials)
    if kind == "kafka":
        from dataworks.streams import kafkaconf
        from dataworks.streams.kafkabrokering import KafkaBroker

        return KafkaBroker(address, kafkaconf.from_env(given))
    from dataworks.streams.brokering import RedisBroker

    return RedisBroker(address, given.get("REDIS_PASSWORD"))


FIELD = {  # the spec field that names each credential's Secret, for the message when it is unreadable
    "REDIS_PASSWORD": "spec.source.redis.passwordSecret",
    "KAFKA_SASL_USERNAME": "spec.source.kafka.sasl.secretName",
    "KAFKA_SASL_PASSWORD": "spec.source.kafka.sasl.secretName",
    "KAFKA_SSL_CA_PEM": "spec.source.kafka.tls.caSecret",
}


class SecretUnreadable(Exception):
    """A credential's Secret, or its key, cannot be read: the message names the field."""


class Observer(Protocol):
    """The StreamingJob metrics (observability/streaming.py)."""

    def observe(
        self,
        key: tuple[str, str],
        spec: Any,
        st: Any,
        *,
        decided: str | None,
        reclaimed: int,
        began: Sequence[tuple[str, str]] = (),
    ) -> None: ...
    def forget(self, key: tuple[str, str]) -> None: ...


class Notifier(Protocol):
    """The operator's webhooks (operator/notifying.py): told of each anomaly that begins."""

    def anomaly(
        self, where: tuple[str, str], kind: str, message: str, action: str, now: datetime
    ) -> None: ...


@dataclass(frozen=True)
class Observed:
    seen: planning.Observed
    reclaimed: dict[str, int]  # gone consumer -> entries handed to the live ones


class StreamingJobController(Controller):
    info = api.INFO
    owns = ("Deployment",)
    grandchildren = ("Pod",)

    @property
    def watches(self) -> tuple[str, ...]:
        return ("Deployment", "Pod")

    def __init__(
        self,
        image: str = DEFAULT_IMAGE,
        brokers: Callable[[str, str, Credentials], Broker] = open_broker,
        clock: Callable[[], float] = time.time,
        metrics: Observer | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.image, self.brokers, self.clock, self.metrics = image, brokers, clock, metrics
        self.notifier = notifier
        self._watch: dict[tuple[str, str], anomalies.Memory] = {}
        self._brokers: dict[tuple[str, str, Credentials], Broker] = {}
        self._samples: dict[tuple[str, str], tuple[measuring.Sample, ...]] = {}
        self._memory: dict[tuple[str, str], scaling.Memory] = {}

    def active(self, obj: dict[str, Any]) -> bool:
        return True  # a StreamingJob never finishes

    def child_fingerprint(self, kind: str, body: dict[str, Any]) -> Hashable:
        meta, spec, status = body.get("metadata") or {}, body.get("spec") or {}, body.get("status") or {}
        if kind == "Pod":
            return (status.get("phase"), bool(meta.get("deletionTimestamp")), _ready(body))
        hashed = manifests.template_hash(body)
        return (spec.get("replicas"), status.get("replicas"), status.get("readyReplicas"), hashed)

    def forget(self, key: tuple[str, str]) -> None:
        self._samples.pop(key, None)
        self._memory.pop(key, None)
        self._watch.pop(key, None)
        if self.metrics is not None:
            self.metrics.forget(key)

    async def observe(self, obj: dict[str, Any], children: Children, reader: Reader) -> Any:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        deployment = _deployment(children)
        # A terminating pod still runs its consumer (acknowledging its batch in hand): it is
        # gone once its pod object is, or once it ended.
        pods = frozenset(
            p["metadata"]["name"]
            for p in children.get("Pod", [])
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        )
        seen = planning.Observed(deployment=deployment, pods=pods, oom_killed=_oom_killed(children))
        try:
            spec = api.StreamingJobSpec.model_validate(obj.get("spec") or {})
        except ValidationError:
            return Observed(seen, {})
        src = spec.source.target()
        try:
            broker = await self._broker(reader, meta["namespace"], src)
            reading = await broker.read(src.stream, src.group, start_from=src.start_from)
        except Exception as e:  # any failure to read is reported, never fatal
            return Observed(replace(seen, broker_error=_why(spec, e)), {})
        samples = measuring.remember(
            self._samples.get(key, ()), measuring.Sample(time.monotonic(), reading.added)
        )
        self._samples[key] = samples
        group = measuring.group(reading.reports, self.clock())
        seen = replace(
            seen,
            broker=planning.Broker(
                reading.lag, reading.pending, reading.consumers, group, partitions=reading.partitions
            ),
            arrival_rate=measuring.arrival_rate(samples),
        )
        reclaimed: dict[str, int] = {}
        gone_pending, gone_idle = planning.gone(seen) if deployment is not None else ([], [])
        try:
            for consumer in gone_pending:
                reclaimed[consumer] = await broker.reclaim(src.stream, src.group, consumer)
            for consumer in gone_idle:
                await broker.forget(src.stream, src.group, consumer)
        except Exception as e:
            log.warning("StreamingJob %s/%s: reclaiming from gone consumers failed: %s", *key, e)
        return Observed(seen, reclaimed)

    async def _broker(self, reader: Reader, namespace: str, src: api.Target) -> Broker:
        """The broker's reader, with the same settings and credentials as the consumers get."""
        credentials = list(src.kafka_settings().items())
        for env, secret in src.secret_keys():
            secret_value = getattr(reader, "secret_value", None)
            if secret_value is None:
                raise RuntimeError("this runtime cannot read Secrets")
            try:
                credentials.append((env, await secret_value(namespace, secret.name, secret.key)))
            except (errors.KubeError, KeyError) as e:
                raise SecretUnreadable(
                    f"{FIELD[env]}: cannot read key {secret.key!r} of Secret {secret.name}: {e}"
                ) from e
        key = (src.broker, src.address, tuple(credentials))
        found = self._brokers.get(key)
        if found is None:
            found = self._brokers[key] = self.brokers(*key)
        return found

    def plan(self, obj: dict[str, Any], children: Children, observed: Any, now: datetime) -> Actions:
        m = meta_of(obj)
        old_raw = obj.get("status") or None
        old = read_status(api.StreamingJobStatus, old_raw)
        try:
            spec = api.StreamingJobSpec.model_validate(obj.get("spec") or {})
        except ValidationError as e:
            return _invalid(m, old, [_where(err) for err in e.errors()], now)
        if spec.processing.alert is not None:  # each rule's CEL, compiled before any consumer starts
            raw = spec.processing.alert.model_dump(by_alias=True, exclude_none=True)
            if bad := alerts.problems(raw["rules"]):
                return _invalid(m, old, bad, now)
        got = (
            observed
            if isinstance(observed, Observed)
            else Observed(planning.Observed(_deployment(children), None), {})
        )
        key = (m.namespace, m.name)
        memory, watch = self._memory.get(key, scaling.Memory()), self._watch.get(key)
        p = planning.plan(m, spec, old, got.seen, memory=memory, now=now, watch=watch)
        self._memory[key], self._watch[key] = p.memory, p.watch
        if self.notifier is not None:
            for a in p.began:
                self.notifier.anomaly(key, a.kind, a.message, a.action, now)
        actions = Actions(events=list(p.events), requeue_at=p.requeue_at)
        if got.reclaimed:
            total = sum(got.reclaimed.values())
            p.status.reclaimed += total
            names = ", ".join(f"{c} ({n})" for c, n in sorted(got.reclaimed.items()))
            actions.events.append(
                Event("Normal", "Reclaimed", f"{total} pending entries of gone consumers: {names}")
            )
            p.write = True
        owner = Owner(info=api.INFO, name=m.name, namespace=m.namespace, uid=m.uid)
        image = spec.image or self.image
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        reports = annotations.get(api.CONSUMER_REPORTS) == "broker"
        current = _deployment_body(children)
        if current is None:
            actions.create = [
                manifests.deployment(owner, spec, p.strategy, image, p.replicas, reports=reports)
            ]
        else:
            patch: dict[str, Any] = {}
            if (current.get("spec") or {}).get("replicas") != p.replicas:
                patch["replicas"] = p.replicas
            wanted = manifests.template(owner, spec, p.strategy, image, reports=reports)
            if manifests.template_hash(current) != wanted["metadata"]["annotations"][manifests.TEMPLATE_HASH]:
                patch["template"] = wanted
            if patch:
                actions.patch.append(("Deployment", manifests.deployment_name(m.name), {"spec": patch}))
        if p.write:
            actions.status = p.status.model_dump(by_alias=True, mode="json")
        if self.metrics is not None:
            before, after = old.last_decision if old else None, p.status.last_decision
            decided = after.reason if after is not None and after != before else None
            began = [(a.kind, a.action) for a in p.began]
            reclaimed = sum(got.reclaimed.values())
            self.metrics.observe(key, spec, p.status, decided=decided, reclaimed=reclaimed, began=began)
        return actions


def _deployment_body(children: Children) -> dict[str, Any] | None:
    found = children.get("Deployment") or []
    return found[0] if found else None


def _deployment(children: Children) -> planning.Deployment | None:
    body = _deployment_body(children)
    if body is None:
        return None
    spec, status = body.get("spec") or {}, body.get("status") or {}
    return planning.Deployment(
        replicas=int(spec.get("replicas") or 0),
        current=int(status.get("replicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
    )


def _oom_killed(children: Children) -> frozenset[str]:
    """ "<pod>#<restart count>" of each consumer container whose last end was an OOM kill."""
    out = set()
    for p in children.get("Pod", []):
        for c in (p.get("status") or {}).get("containerStatuses") or []:
            ended = ((c.get("lastState") or {}).get("terminated")) or {}
            if ended.get("reason") == "OOMKilled":
                out.add(f"{p['metadata']['name']}#{c.get('restartCount', 0)}")
    return frozenset(out)


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _why(spec: api.StreamingJobSpec, e: Exception) -> str:
    src = spec.source.target()
    if isinstance(e, SecretUnreadable):
        return str(e)
    what = "topic" if src.broker == "kafka" else "stream"
    return f"cannot read {what} {src.stream} (group {src.group}) at {src.address}: {type(e).__name__}: {e}"


def _where(err: Any) -> str:
    return f"spec.{'.'.join(str(x) for x in err['loc'])}: {err['msg']}"


def _invalid(m: Meta, old: api.StreamingJobStatus | None, problems: list[str], now: datetime) -> Actions:
    """A spec the CRD's schema let through but the models (or a rule's CEL) refuse: Failed,
    naming the field."""
    message = "; ".join(problems[:5])
    st = old.model_copy(deep=True) if old is not None else api.StreamingJobStatus()
    if st.state == "Failed" and st.message == message:
        return Actions()
    st.state, st.message, st.last_reconcile_time = "Failed", message, ts(now)
    st.observed_generation = m.generation
    conditions.set_condition(
        st.conditions,
        "Ready",
        False,
        reason="ValidationFailed",
        message=message,
        now=now,
        generation=m.generation,
    )
    return Actions(
        status=st.model_dump(by_alias=True, mode="json"),
        events=[Event("Warning", "ValidationFailed", message)],
    )
