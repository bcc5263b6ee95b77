"""`dataworks logs job/NAME` (edge layer): a Job's live logs while its pods exist, its archive after.

The job-completion handler keeps the logs of Jobs labelled
`job-handler/enabled: "true"` in a ConfigMap labelled with the Job's name
(docs/jobhandler.md). While the Job's pods exist their logs are read live,
as `kubectl logs` would; once they are gone, the newest archive is printed,
decompressed when it was kept as gzip.
"""

from __future__ import annotations

import base64
import gzip
import sys
from typing import Any

from dataworks.api import jobhandler as names
from dataworks.cli.context import EXIT_OK, Cluster, fail


def logs(cluster: Cluster, name: str) -> int:
    from lightkube.resources.core_v1 import ConfigMap, Pod

    pods = cluster.call(
        "list pods",
        lambda: list(cluster.client.list(Pod, namespace=cluster.namespace, labels={names.JOB_NAME: name})),
    )
    live = [p for p in pods if (p.status and p.status.phase) not in (None, "Pending")]
    if live:
        for pod in sorted(live, key=lambda p: p.metadata.creationTimestamp):
            spec = pod.spec
            for c in [*(spec.initContainers or []), *spec.containers]:
                print(f"==> pod/{pod.metadata.name}/{c.name} <==")
                for line in cluster.call(
                    "read pod logs",
                    lambda p=pod.metadata.name, c=c.name: list(
                        cluster.client.log(p, namespace=cluster.namespace, container=c)
                    ),
                ):
                    print(line, end="")
        return EXIT_OK
    archives = cluster.call(
        "list configmaps",
        lambda: list(
            cluster.client.list(
                ConfigMap, namespace=cluster.namespace, labels={names.CREATED: "true", names.JOB_NAME: name}
            )
        ),
    )
    if not archives:
        fail(
            f"no pods of Job {name} and no archive of it in namespace {cluster.namespace}: the "
            f'job-completion handler archives Jobs labelled {names.ENABLED}: "true" (docs/jobhandler.md)'
        )
    newest = max(archives, key=lambda cm: cm.metadata.creationTimestamp)
    data = newest.data or {}
    print(
        f"(archived in ConfigMap {newest.metadata.name}: Job {data.get(names.KEY_STATUS, '?')} at "
        f"{data.get(names.KEY_COMPLETION, '?')})",
        file=sys.stderr,
    )
    sys.stdout.write(text_of(newest.data or {}, newest.binaryData or {}))
    return EXIT_OK


def text_of(data: dict[str, Any], binary: dict[str, Any]) -> str:
    """An archive's logs as text (binaryData logs.gz decompressed)."""
    if names.KEY_LOGS_GZ in binary:
        return gzip.decompress(base64.b64decode(binary[names.KEY_LOGS_GZ])).decode("utf-8", "replace")
    return str(data.get(names.KEY_LOGS, ""))
