"""The `dataworks-operator` command: kopf wiring for the Pipeline controller (I/O layer).

Handlers are registered on an explicit registry here, not at import time.
Every Pipeline event and every event of a Job labelled with a pipeline
triggers a reconcile of that pipeline; a periodic resync is only a safety net.
No finalizers are used, so deleting a Pipeline never waits for the operator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx2
import kopf
import pydantic
import yaml

from dataworks.api import pipeline as api
from dataworks.api.config import OperatorConfig
from dataworks.core import backoffs, observations
from dataworks.kube import clients, resources
from dataworks.observability import serving
from dataworks.observability.metrics import Metrics
from dataworks.operator import reconciling
from dataworks.operator.eventing import EventSender
from dataworks.operator.notifying import Notifier

VERSION = "0.1.0"

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
        out.update(reconciling.context.get() or {})  # namespace, pipeline, reconcile id of this reconcile
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


def build_registry(
    config: OperatorConfig,
    kubeconfig: str | None,
    stats_path: str | None = None,
    health_port: int = 0,
    namespaces: list[str] | None = None,
) -> kopf.OperatorRegistry:
    """The operator's handlers. `namespaces` limits every list to those namespaces (the
    namespaced install, with Roles instead of a ClusterRole); None means all of them."""
    scope = namespaces or ["*"]
    registry = kopf.OperatorRegistry()
    counter = clients.RequestCounter()
    metrics = Metrics(version=VERSION)
    metrics.watch_requests(lambda: dict(counter.counts))
    health = serving.Health()
    state: dict[str, Any] = {}

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return _login(kubeconfig, **kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False  # we post our own events, once per transition
        settings.watching.server_timeout = 300
        settings.persistence.finalizer = "dataworks.io/unused-finalizer"
        settings.persistence.diffbase_storage = NoDiffBase()
        # Every request is retried while it fails in transit or with a transient status,
        # up to 12 tries (client-go's count for Events); every write here is idempotent.
        client = clients.async_client(kubeconfig, counter=counter, retry=backoffs.Backoff())
        notifier = Notifier(client, config)
        notifier.start()
        state["notifier"] = notifier
        events = EventSender(client, counted=lambda result: metrics.events.labels(result=result).inc())
        events.start()
        state["events"] = events
        state["reconciler"] = reconciling.Reconciler(
            client, config, metrics=metrics, notifier=notifier, events=events
        )
        state["resync"] = asyncio.create_task(
            _resync(state["reconciler"], client, config.resync_seconds, scope)
        )
        if health_port:
            state["http"] = await serving.start(health_port, metrics, health)
        state["ready"] = asyncio.create_task(_become_ready(client, health, scope))

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        for name in ("resync", "ready"):
            task = state.get(name)
            if task is not None:
                task.cancel()
        if state.get("http") is not None:
            await state["http"].cleanup()
        if state.get("notifier") is not None:
            await state["notifier"].stop()
        if state.get("events") is not None:
            await state["events"].stop()
        reconciler = state.get("reconciler")
        if reconciler is not None:
            await reconciler.client.close()
        if stats_path:
            rows = [{"verb": v, "resource": r, "count": n} for (v, r), n in sorted(counter.counts.items())]
            await asyncio.to_thread(Path(stats_path).write_text, json.dumps(rows, indent=1))

    @kopf.on.event(api.GROUP, api.VERSION, api.PLURAL, registry=registry)
    async def pipeline_event(
        *, body: kopf.Body, name: str, namespace: str | None, type: str, **_: Any
    ) -> None:
        news = state["reconciler"].observe_pipeline(dict(body), deleted=type == "DELETED")
        if news and namespace:
            await state["reconciler"].trigger(namespace, name)

    @kopf.on.event(
        "batch", "v1", "jobs", labels={observations.LABEL_PIPELINE: kopf.PRESENT}, registry=registry
    )
    async def job_event(
        *, body: kopf.Body, labels: Mapping[str, str], namespace: str | None, type: str, **_: Any
    ) -> None:
        changed = state["reconciler"].observe_job(dict(body), deleted=type == "DELETED")
        if changed and namespace:
            await state["reconciler"].trigger(namespace, labels[observations.LABEL_PIPELINE])

    return registry


async def _become_ready(client: Any, health: serving.Health, scope: list[str]) -> None:
    """Ready once Pipelines and Jobs can be listed with our own credentials."""
    from lightkube.resources.batch_v1 import Job

    while not health.ready:
        try:
            for ns in scope:
                async for _ in client.list(resources.Pipeline, namespace=ns, chunk_size=1):
                    break
                async for _ in client.list(Job, namespace=ns, chunk_size=1):
                    break
            health.ready, health.why = True, ""
        except Exception as e:  # not yet: the API is unreachable or RBAC is missing
            health.why = f"cannot list pipelines and jobs: {e}"
            await asyncio.sleep(2)


async def _resync(reconciler: reconciling.Reconciler, client: Any, period: float, scope: list[str]) -> None:
    while True:
        await asyncio.sleep(period)
        try:
            for ns in scope:
                async for p in client.list(resources.Pipeline, namespace=ns):
                    phase = ((p.to_dict().get("status") or {}).get("phase")) or "Pending"
                    if phase not in {"Completed", "Failed", "Cancelled"}:
                        await reconciler.trigger(p.metadata.namespace, p.metadata.name)
        except httpx2.HTTPError as e:  # the API was unreachable through every retry: next period
            log.warning("resync failed: %s: %s", type(e).__name__, e)
        except Exception:
            log.exception("resync failed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dataworks-operator", description="Runs the dataworks Pipeline operator."
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
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument(
        "--request-stats",
        metavar="PATH",
        help="on shutdown, write API request counts by verb and resource (JSON)",
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
    registry = build_registry(config, args.kubeconfig, args.request_stats, args.health_port, args.namespace)
    kopf.run(
        registry=registry,
        standalone=True,
        clusterwide=not args.namespace,
        namespaces=args.namespace or (),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
