"""Helpers for SequentialJob tests on the cluster: build, create, patch, wait, read Jobs and Events."""

from __future__ import annotations

from typing import Any

from lightkube import Client, codecs
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event
from lightkube.types import PatchType

from dataworks.api import sequentialjob as api
from dataworks.kube import resources
from tests.builders.sequentialjobs import FATE
from tests.cluster import helpers

SequentialJob = resources.of(api.INFO)


def container(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox:1.36", "command": ["sh", "-c", "true"], **kw}


def manifest(
    name: str, containers: list[str | dict[str, Any]], *, fate: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    """A SequentialJob; `fate` keys (without prefix) set every step's pod fate on the test cluster
    (template annotations; `fail-if-label: dataworks.io/step=NAME` picks one step)."""
    annotations = {FATE + "duration": "300ms", **{FATE + k: v for k, v in (fate or {}).items()}}
    template = spec.pop("template", {})
    template.setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)
    return {
        "apiVersion": "dataworks.io/v1",
        "kind": "SequentialJob",
        "metadata": {"name": name},
        "spec": {
            "containers": [container(c) if isinstance(c, str) else c for c in containers],
            "template": template,
            **spec,
        },
    }


def create(client: Client, namespace: str, obj: dict[str, Any]) -> Any:
    return client.create(codecs.from_dict(obj), namespace=namespace)


def patch_spec(client: Client, namespace: str, name: str, spec: dict[str, Any]) -> None:
    client.patch(SequentialJob, name, {"spec": spec}, namespace=namespace, patch_type=PatchType.MERGE)


def status(obj: Any) -> dict[str, Any]:
    return (obj.to_dict().get("status") or {}) if obj is not None else {}


def wait_phase(
    client: Client, namespace: str, name: str, *phases: str, timeout: float = 90
) -> dict[str, Any]:
    got = helpers.wait_for(
        client,
        SequentialJob,
        name,
        namespace,
        lambda o: status(o).get("phase") in phases,
        timeout=timeout,
        what=f"phase in {phases}",
    )
    return status(got)


def steps(st: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["phase"] for s in st.get("steps", [])}


def jobs(client: Client, namespace: str, name: str) -> list[str]:
    """The names of the SequentialJob's Jobs, sorted."""
    return sorted(
        j.metadata.name for j in client.list(Job, namespace=namespace, labels={api.OWNER_LABEL: name})
    )


def events(client: Client, namespace: str, name: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events on the SequentialJob, in the order they were queued."""
    found = [
        e
        for e in client.list(Event, namespace=namespace)
        if e.involvedObject.kind == api.KIND and e.involvedObject.name == name
    ]
    found.sort(key=lambda e: e.eventTime or e.firstTimestamp)
    return [(e.type, e.reason, e.message) for e in found]


def reasons(client: Client, namespace: str, name: str) -> list[str]:
    return [reason for _, reason, _ in events(client, namespace, name)]
