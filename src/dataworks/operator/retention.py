"""Expiring the handler's archives (I/O layer): every period, list the ConfigMaps labelled
`job-handler/created=true` and delete what `core.jobhandler.retention` says has expired."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from lightkube import AsyncClient
from lightkube.resources.core_v1 import ConfigMap

from dataworks.api import jobhandler as names
from dataworks.api.jobhandler import JobHandlerConfig
from dataworks.core.jobhandler.retention import Kept, expired
from dataworks.kube import errors

log = logging.getLogger("dataworks.operator")


async def sweep(client: AsyncClient, config: JobHandlerConfig, scope: list[str], now: datetime) -> list[Kept]:
    """Delete the expired archives in `scope` (namespaces, or ["*"]); returns them."""
    kept: list[Kept] = []
    for ns in scope:
        with errors.typed():
            async for cm in client.list(ConfigMap, namespace=ns, labels={names.CREATED: "true"}):
                md = cm.metadata
                if md is not None and md.name and md.namespace and md.creationTimestamp:
                    kept.append(Kept(md.namespace, md.name, md.creationTimestamp))
    gone = expired(kept, now, timedelta(seconds=config.retention_seconds), config.max_per_namespace)
    for a in gone:
        try:
            with errors.typed():
                await client.delete(ConfigMap, a.name, namespace=a.namespace)
        except errors.NotFound:
            pass
    if gone:
        log.info("deleted %d expired job archives", len(gone))
    return gone


async def loop(client: AsyncClient, config: JobHandlerConfig, scope: list[str], period: float) -> None:
    while True:
        try:
            await sweep(client, config, scope, datetime.now(UTC))
        except Exception:
            log.exception("expiring job archives failed")
        await asyncio.sleep(period)
