"""A benchmark's StreamingJob on a cluster (edge layer): `dataworks bench stream --cluster`.

The scenario's StreamingJob is created in the namespace as `bench-<scenario>`, its source the
benchmark's broker, which the cluster's pods must reach (`--redis URL` or `--kafka HOST:PORT`).
The operator already running there does the rest: its autoscaler starts and stops the
consumers, under the scenario's strategy. The StreamingJob carries the annotation
`dataworks.io/consumer-reports: broker`, so each consumer commits its report (what it
processed, by sequence number) to the broker before it acknowledges; the loss check reads them
there, since a pod's files are out of reach. A Redis password in the URL goes to a Secret the
benchmark creates, never into the spec.

Once a second the benchmark lists the consumer pods (the live count) and reads the
StreamingJob's desired replicas. `killConsumer` deletes a pod with no grace period, as a node
that dies would take it. At the end the StreamingJob is suspended, so each consumer commits its
last report and leaves, then deleted with its Secret.
"""

from __future__ import annotations

import base64
import re
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dataworks.api import streamingjob as api
from dataworks.kube import resources

BENCH_LABEL = "dataworks.io/bench"
STOP_SECONDS = 120  # for every consumer to commit its last report and leave


def job_name(scenario: str) -> str:
    """`bench-<scenario>`, made a valid StreamingJob name."""
    slug = re.sub(r"[^a-z0-9-]+", "-", scenario.lower()).strip("-")
    return f"bench-{slug}"[: api.MAX_NAME].rstrip("-")


class ClusterStreamingJob:
    """One StreamingJob on the cluster, from `start` until `stop`."""

    reports_in_broker = True

    def __init__(
        self,
        spec: dict[str, Any],
        source: dict[str, Any],
        workdir: Path,
        commit_every: float,
        *,
        cluster: Any,
        scenario: str,
    ) -> None:
        self.cluster, self.client, self.ns = cluster, cluster.client, cluster.namespace
        self.name = job_name(scenario)
        self.labels = {BENCH_LABEL: self.name}
        self.spec, self.source = spec, source
        self._desired: int | None = None
        self.secret = f"{self.name}-redis"  # created only when the Redis URL holds a password

    # ConsumerJob

    def start(self) -> None:
        from lightkube import codecs

        self._remove_leftover()
        source = self._without_password(self.source)
        body = {
            "apiVersion": api.INFO.api_version,
            "kind": api.KIND,
            "metadata": {
                "name": self.name,
                "labels": self.labels,
                "annotations": {api.CONSUMER_REPORTS: "broker"},
            },
            "spec": {**self.spec, "source": source},
        }
        self.cluster.call(
            "create streamingjobs", self.client.create, codecs.from_dict(body), namespace=self.ns
        )

    def stop(self) -> None:
        """Suspend (every consumer commits its last report on SIGTERM and leaves), wait for the
        pods to be gone, then delete the StreamingJob and its Secret."""
        from lightkube.types import PatchType

        kind = resources.of(api.INFO)
        self.client.patch(
            kind, self.name, {"spec": {"suspend": True}}, namespace=self.ns, patch_type=PatchType.MERGE
        )
        deadline = time.monotonic() + STOP_SECONDS
        while self._pods() and time.monotonic() < deadline:
            time.sleep(0.5)
        if left := self._pods():
            raise RuntimeError(
                f"streamingjob {self.ns}/{self.name}: consumers {', '.join(p.metadata.name for p in left)} "
                f"still there {STOP_SECONDS} s after the suspend (is the operator running?)"
            )
        self._delete()

    def abort(self) -> None:
        """Delete at once: the garbage collector takes the Deployment and its pods."""
        self._delete()

    def live(self) -> list[str]:
        return sorted(
            p.metadata.name
            for p in self._pods()
            if p.metadata.deletionTimestamp is None and p.status is not None and p.status.phase == "Running"
        )

    def kill(self, name: str) -> None:
        from lightkube.resources.core_v1 import Pod

        self.client.delete(Pod, name, namespace=self.ns, grace_period=0)

    def processes(self) -> dict[str, subprocess.Popen[bytes]]:
        return {}  # the consumers run in pods: psutil cannot see them

    @property
    def desired(self) -> int | None:
        """The status's desiredReplicas; the last one read once the StreamingJob is gone."""
        from dataworks.kube import errors

        try:
            with errors.typed():
                got = self.client.get(resources.of(api.INFO), self.name, namespace=self.ns)
        except errors.NotFound:
            return self._desired
        value = (got.to_dict().get("status") or {}).get("desiredReplicas")
        self._desired = None if value is None else int(value)
        return self._desired

    # the rest

    def _pods(self) -> list[Any]:
        from lightkube.resources.core_v1 import Pod

        return list(self.client.list(Pod, namespace=self.ns, labels={api.OWNER_LABEL: self.name}))

    def _without_password(self, source: dict[str, Any]) -> dict[str, Any]:
        """The source, its Redis password moved from the URL to a Secret of the benchmark's."""
        redis = source.get("redis")
        if redis is None:
            return source
        url = urlsplit(redis["address"])
        if not url.password:
            return source
        from lightkube.models.meta_v1 import ObjectMeta
        from lightkube.resources.core_v1 import Secret

        data = {"password": base64.b64encode(url.password.encode()).decode()}
        meta = ObjectMeta(name=self.secret, labels=self.labels)
        self.cluster.call(
            "create secrets", self.client.create, Secret(metadata=meta, data=data), namespace=self.ns
        )
        host = url.hostname or "" if url.port is None else f"{url.hostname}:{url.port}"
        address = urlunsplit((url.scheme, host, url.path, url.query, ""))
        return {
            "redis": {**redis, "address": address, "passwordSecret": {"name": self.secret, "key": "password"}}
        }

    def _remove_leftover(self) -> None:
        """A StreamingJob of an earlier run of this benchmark (interrupted) is deleted first;
        one of the same name that the benchmark did not create is left alone, and refused."""
        from dataworks.kube import errors

        kind = resources.of(api.INFO)
        try:
            with errors.typed():
                old = self.client.get(kind, self.name, namespace=self.ns)
        except errors.NotFound:
            old = None
        if old is not None:
            if (old.metadata.labels or {}).get(BENCH_LABEL) != self.name:
                raise ValueError(
                    f"streamingjob {self.ns}/{self.name} exists and is not a benchmark's: "
                    "delete it, or run the benchmark in another namespace (-n)"
                )
            self._delete()
        deadline = time.monotonic() + STOP_SECONDS
        while self._pods() and time.monotonic() < deadline:  # the old consumers must not join
            time.sleep(0.5)

    def _delete(self) -> None:
        from lightkube.resources.core_v1 import Secret

        from dataworks.kube import errors

        for kind, name in ((resources.of(api.INFO), self.name), (Secret, self.secret)):
            try:
                with errors.typed():
                    self.client.delete(kind, name, namespace=self.ns)
            except errors.NotFound:
                pass
