"""The `dataworks-operator` command: kopf wiring for its controllers (I/O layer).

The controllers are Pipeline, SequentialJob, TrainingJob, StreamingJob and the job-completion handler
(`--controllers` picks some).
Handlers are registered on an explicit registry here, not at import time.
Every event of an object and every event of a Job labelled with its owner
triggers a reconcile of that object; a periodic resync is only a safety net.
No finalizers are used, so deleting a Pipeline never waits for the operator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kopf
import pydantic
import yaml

from dataworks import __version__
from dataworks.api import pipeline as api
from dataworks.api.config import OperatorConfig
from dataworks.api.meta import KindInfo
from dataworks.controllers.base import Controller
from dataworks.controllers.jobhandler import JobHandlerController
from dataworks.controllers.pipelines import PipelineController
from dataworks.controllers.scheduledpipelines import ScheduledPipelineController
from dataworks.controllers.sequentialjobs import SequentialJobController
from dataworks.controllers.streamingjobs import StreamingJobController
from dataworks.controllers.trainingjobs import TrainingJobController
from dataworks.core.kit import backoffs
from dataworks.core.kit.clock import parse_ts
from dataworks.kube import clients, errors, resources
from dataworks.observability import serving
from dataworks.observability.metrics import Metrics
from dataworks.operator import logstore, retention
from dataworks.operator.logcapture import LogCapture
from dataworks.operator.notifying import Notifier
from dataworks.operator.runtime import runtime as rtmod
from dataworks.operator.runtime.eventing import EventSender
from dataworks.operator.runtime.runtime import Runtime

VERSION = __version__

log = logging.getLogger("dataworks.operator")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with kopf's object context when present."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        k8s = getattr(record, "k8s_ref", None)
        if isinstance(k8s, dict):
            out.update({k: v for k, v in k8s.items() if k in {"namespace", "name"}})
        out.update(rtmod.context.get() or {})  # namespace, pipeline, reconcile id of this reconcile
        for key in ("step", "reason"):
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out)


class NoDiffBase(kopf.DiffBaseStorage):
    """Keeps no "last handled" state: we register no change handlers.

    kopf otherwise deep-copies every object on every event to detect changes
    for such handlers; profiling showed those copies as the operator's largest
    CPU cost (a quarter of it under 10 concurrent pipelines).
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def load_config(path: str | None) -> OperatorConfig:
    """The configuration file, or the defaults; exits naming the file and each bad key."""
    if not path:
        return OperatorConfig()
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        return OperatorConfig.model_validate(raw)
    except (OSError, yaml.YAMLError) as e:
        raise SystemExit(f"dataworks-operator: cannot read --config {path}: {e}") from e
    except pydantic.ValidationError as e:
        lines = [f"  {'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()]
        raise SystemExit(
            f"dataworks-operator: invalid --config {path} (see docs/operations.md, Configuration):\n"
            + "\n".join(lines)
        ) from e


def _login(kubeconfig: str | None, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf connects exactly where our own client does (clients.load_config's choice)."""
    if clients.kubeconfig_path(kubeconfig) is not None:
        return kopf.login_with_kubeconfig(**kwargs)
    pod = clients.in_cluster()
    if pod is None:
        return None
    # kopf's own login_with_service_account dials https://kubernetes.default.svc, which
    # needs cluster DNS; the service environment works in every pod. kopf calls this
    # again on a 401, so a rotated projected token is read again.
    return kopf.ConnectionInfo(
        server=pod.server,
        ca_path=str(pod.ca_file) if pod.ca_file.is_file() else None,
        token=pod.token_file.read_text().strip(),
        default_namespace=pod.namespace,
    )


# The controllers this operator can run, by the name --controllers takes.
def _pipelines(config: OperatorConfig, metrics: Metrics, notifier: Notifier | None) -> Controller:
    return PipelineController(config, metrics=metrics, notifier=notifier)


def _scheduledpipelines(config: OperatorConfig, metrics: Metrics, notifier: Notifier | None) -> Controller:
    return ScheduledPipelineController()


def _sequentialjobs(config: OperatorConfig, metrics: Metrics, notifier: Notifier | None) -> Controller:
    return SequentialJobController()


def _trainingjobs(config: OperatorConfig, metrics: Metrics, notifier: Notifier | None) -> Controller:
    return TrainingJobController(config.training_jobs.image_pattern, metrics=metrics.training)


def _streamingjobs(config: OperatorConfig, metrics: Metrics, notifier: Notifier | None) -> Controller:
    return StreamingJobController(config.streaming_jobs.image, metrics=metrics.streaming, notifier=notifier)


def _jobhandler(config: OperatorConfig, metrics: Metrics, notifier: Notifier | None) -> Controller:
    handler = config.job_handler
    capture = LogCapture(handler, logstore.sink(handler), metrics.handler)
    return JobHandlerController(capture, handler, metrics=metrics.handler)


CONTROLLERS: dict[str, Callable[[OperatorConfig, Metrics, Notifier | None], Controller]] = {
    "pipelines": _pipelines,
    "scheduledpipelines": _scheduledpipelines,
    "sequentialjobs": _sequentialjobs,
    "trainingjobs": _trainingjobs,
    "streamingjobs": _streamingjobs,
    "jobhandler": _jobhandler,
}


def default_controllers(config: OperatorConfig) -> list[str]:
    """Every controller, but the job-completion handler only while its config enables it."""
    return [name for name in CONTROLLERS if name != "jobhandler" or config.job_handler.enabled]


def build_registry(
    config: OperatorConfig,
    kubeconfig: str | None,
    stats_path: str | None = None,
    *,
    health_port: int = 0,
    namespaces: list[str] | None = None,
    controllers: list[str] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> kopf.OperatorRegistry:
    """The operator's handlers: one watch per reconciled kind and per child kind, all feeding
    one runtime. `namespaces` limits every list to those namespaces (the namespaced install,
    with Roles instead of a ClusterRole); None means all of them. `controllers` names the
    controllers to run (default: every one)."""
    scope = namespaces or ["*"]
    registry = kopf.OperatorRegistry()
    counter = clients.RequestCounter()
    metrics = Metrics(version=__version__)
    metrics.watch_requests(lambda: dict(counter.counts))
    health = serving.Health()
    state: dict[str, Any] = {}
    enabled = controllers or default_controllers(config)
    # Built here, before any client exists, so a bad selection fails at start-up.
    stubs = [CONTROLLERS[name](config, metrics, None) for name in enabled]
    runtime_checks(stubs)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return _login(kubeconfig, **kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        _kopf_settings(settings)
        # Every request is retried while it fails in transit or with a transient status,
        # up to 12 tries (client-go's count for Events); every write here is idempotent.
        client = clients.async_client(kubeconfig, counter=counter, retry=backoffs.Backoff())
        notifier = Notifier(client, config)
        notifier.start()
        state["notifier"] = notifier
        events = EventSender(client, counted=lambda result: metrics.events.labels(result=result).inc())
        events.start()
        state["events"] = events
        hosted = [CONTROLLERS[name](config, metrics, notifier) for name in enabled]
        rt = Runtime(client, hosted, events=events, metrics=metrics, **({"clock": clock} if clock else {}))
        metrics.active.set_function(lambda: rt.active_count(api.KIND))
        state["runtime"] = rt
        _background(state, config, scope, expire="jobhandler" in enabled)
        if health_port:
            state["http"] = await serving.start(health_port, metrics, health)
        state["ready"] = asyncio.create_task(_become_ready(rt, health, scope))
        # kopf's own discovery then finds every kind; its CRD watch (which needs a cluster-wide
        # list of CRDs, a right we do not ask for) is off: reinstalled CRDs need a restart.
        await _served(rt, scope)
        settings.scanning.disabled = True

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        for name in ("resync", "ready", "retention"):
            task = state.get(name)
            if task is not None:
                task.cancel()
        if state.get("http") is not None:
            await state["http"].cleanup()
        if state.get("notifier") is not None:
            await state["notifier"].stop()
        if state.get("events") is not None:
            await state["events"].stop()
        rt = state.get("runtime")
        if rt is not None:
            await rt.client.close()
        if stats_path:
            rows = [{"verb": v, "resource": r, "count": n} for (v, r), n in sorted(counter.counts.items())]
            await asyncio.to_thread(Path(stats_path).write_text, json.dumps(rows, indent=1))

    for c in _one_per_kind(stubs):
        _watch_objects(registry, state, c.info)
    for kind, owner_labels in _child_watches(stubs).items():
        _watch_children(registry, state, kind, owner_labels)
    return registry


def _background(state: dict[str, Any], config: OperatorConfig, scope: list[str], *, expire: bool) -> None:
    """The safety-net resync, and (with the job-completion handler) the archives' expiry."""
    rt: Runtime = state["runtime"]
    state["resync"] = asyncio.create_task(rt.resync(config.resync_seconds, scope))
    if expire:
        state["retention"] = asyncio.create_task(
            retention.loop(rt.client, config.job_handler, scope, config.resync_seconds)
        )


def _kopf_settings(settings: kopf.OperatorSettings) -> None:
    settings.posting.enabled = False  # we post our own events, once per transition
    settings.watching.server_timeout = 300
    settings.persistence.finalizer = "dataworks.io/unused-finalizer"
    settings.persistence.diffbase_storage = NoDiffBase()


def runtime_checks(controllers: list[Controller]) -> None:
    """Refuse controllers that would fight over objects (start-up error naming both)."""
    try:
        rtmod.check(controllers)
    except (ValueError, KeyError) as e:
        raise SystemExit(f"dataworks-operator: {e}") from e


def _one_per_kind(controllers: list[Controller]) -> list[Controller]:
    seen: dict[str, Controller] = {}
    for c in controllers:
        seen.setdefault(c.info.kind, c)
    return list(seen.values())


def _child_watches(controllers: list[Controller]) -> dict[str, set[str]]:
    """Child kind -> the owner labels of the controllers that watch it."""
    out: dict[str, set[str]] = {}
    for c in controllers:
        for kind in c.watches:
            out.setdefault(kind, set()).add(c.info.owner_label)
    return out


def _watch_objects(registry: kopf.OperatorRegistry, state: dict[str, Any], info: KindInfo) -> None:
    @kopf.on.event(info.group, info.version, info.plural, registry=registry)
    async def object_event(*, body: kopf.Body, type: str, **_: Any) -> None:
        await state["runtime"].object_event(info.kind, dict(body), deleted=type == "DELETED")


def _watch_children(
    registry: kopf.OperatorRegistry, state: dict[str, Any], kind: str, owners: set[str]
) -> None:
    """Each child kind is watched once; with one owner label, the server filters by it."""
    resource = resources.child(kind)
    group, version = (resource._api_info.resource.group or ""), resource._api_info.resource.version
    plural = resource._api_info.plural
    labels = {next(iter(owners)): kopf.PRESENT} if len(owners) == 1 else None

    @kopf.on.event(group or None, version, plural, labels=labels, registry=registry)
    async def child_event(*, body: kopf.Body, type: str, **_: Any) -> None:
        await state["runtime"].child_event(kind, dict(body), deleted=type == "DELETED")


async def _served(rt: Runtime, scope: list[str]) -> None:
    """Wait until the API serves every kind we reconcile (their CRDs may be applied with us)."""
    waited = False
    for c in rt.kinds():
        while True:
            try:
                await rt.can_list_kind(c.info, scope)
                break
            except errors.NotFound:
                if not waited:
                    log.warning(
                        "waiting for the API to serve %s (kubectl apply -k deploy/crds installs it)",
                        c.info.crd_name,
                    )
                waited = True
                await asyncio.sleep(1)
            except errors.KubeError:
                break  # not a missing CRD: readiness reports it until it is fixed


async def _become_ready(rt: Runtime, health: serving.Health, scope: list[str]) -> None:
    """Ready once every watched kind can be listed with our own credentials."""
    what = ", ".join([c.info.plural for c in rt.kinds()] + [k.lower() + "s" for k in rt.child_kinds()])
    while not health.ready:
        try:
            await rt.can_list(scope)
            health.ready, health.why = True, ""
        except Exception as e:  # not yet: the API is unreachable or RBAC is missing
            health.why = f"cannot list {what}: {e}"
            await asyncio.sleep(2)


def _file_clock(path: str) -> Callable[[], datetime]:
    """A clock that reads the time from a file (a test's injected clock), else the system's."""

    def now() -> datetime:
        try:
            return parse_ts(Path(path).read_text().strip())
        except (OSError, ValueError):
            return datetime.now(UTC)

    return now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dataworks-operator",
        description="Runs the dataworks operator: Pipelines, ScheduledPipelines, SequentialJobs, "
        "TrainingJobs, StreamingJobs, and the job handler.",
    )
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster)"
    )
    parser.add_argument("--config", help="operator configuration YAML (workload classes, images, defaults)")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    scope.add_argument("-n", "--namespace", action="append", help="watch this namespace (repeatable)")
    parser.add_argument(
        "--health-port", type=int, default=8080, help="port of /healthz, /readyz and /metrics (0 disables it)"
    )
    parser.add_argument(
        "--log-format", choices=["json", "text"], default="json" if not sys.stderr.isatty() else "text"
    )
    parser.add_argument(
        "--controllers",
        type=lambda text: [c.strip() for c in text.split(",") if c.strip()],
        help=f"comma-separated controllers to run (default: all of {', '.join(CONTROLLERS)})",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument(
        "--request-stats",
        metavar="PATH",
        help="on shutdown, write API request counts by verb and resource (JSON)",
    )
    parser.add_argument(
        "--clock-file",
        metavar="PATH",
        help="for tests of schedules: read the time the operator takes as now from this file "
        "(RFC 3339), at every reconcile, instead of the system clock",
    )
    args = parser.parse_args(argv)

    handler = logging.StreamHandler()
    if args.log_format == "json":
        handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler], force=True)
    if not args.verbose:  # one line per HTTP request or handler call is noise in production
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    config = load_config(args.config)
    try:  # fail now, in one line, rather than inside kopf's start-up retries
        clients.load_config(args.kubeconfig)
    except Exception as e:
        raise SystemExit(f"dataworks-operator: no cluster credentials: {e}; pass --kubeconfig") from e
    unknown = [c for c in args.controllers or [] if c not in CONTROLLERS]
    if unknown:
        raise SystemExit(
            f"dataworks-operator: unknown controller {unknown[0]!r}; "
            f"--controllers takes {', '.join(CONTROLLERS)}"
        )
    registry = build_registry(
        config,
        args.kubeconfig,
        args.request_stats,
        health_port=args.health_port,
        namespaces=args.namespace,
        controllers=args.controllers,
        clock=_file_clock(args.clock_file) if args.clock_file else None,
    )
    kopf.run(
        registry=registry,
        standalone=True,
        clusterwide=not args.namespace,
        namespaces=args.namespace or (),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
