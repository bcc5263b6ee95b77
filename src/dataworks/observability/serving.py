"""The operator's HTTP endpoints (edge layer): /healthz, /readyz and /metrics on one port.

/healthz answers while the event loop runs. /readyz answers 200 once the
operator has started and has listed Pipelines and Jobs through the API with its
own credentials (so its watches can be established); 503 before. /metrics is
the Prometheus text format of the operator's own registry.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dataworks.observability.metrics import Metrics


class Health:
    def __init__(self) -> None:
        self.ready = False
        self.why = "starting"


async def start(port: int, metrics: Metrics, health: Health) -> web.AppRunner:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if health.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text=f"not ready: {health.why}\n")

    async def scrape(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", scrape)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    # All interfaces: the kubelet probes the pod's IP and Prometheus scrapes it.
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner
