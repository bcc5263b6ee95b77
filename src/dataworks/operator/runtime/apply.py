"""Applying Actions to the API server (I/O layer): create-or-adopt, delete, patch, write status.

Children have deterministic names, so a create that answers AlreadyExists
is an adoption when the existing object carries our owner uid, and an error
naming the object otherwise. A delete of something already gone is done.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping
from typing import Any

from lightkube import AsyncClient, codecs
from lightkube.resources.core_v1 import PodLog, Secret
from lightkube.types import CascadeType, PatchType

from dataworks.api import kinds
from dataworks.api.meta import KindInfo
from dataworks.kube import errors, resources


class NotOurs(Exception):
    """A child's deterministic name is taken by an object someone else owns."""


class Applier:
    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def create_or_adopt(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """Create a child; returns what the server stored (None when an existing one was adopted)."""
        try:
            with errors.typed():
                created = await self.client.create(codecs.from_dict(manifest))
            return dict(created.to_dict())  # type: ignore[no-untyped-call]
        except errors.Conflict as e:
            md = manifest["metadata"]
            with errors.typed():
                existing = await self.client.get(
                    resources.child(manifest["kind"]), md["name"], namespace=md["namespace"]
                )
            if not md.get("ownerReferences"):  # owned by nothing: ours if it carries our labels
                labels = (existing.metadata.labels if existing.metadata else None) or {}
                if any(labels.get(k) != v for k, v in (md.get("labels") or {}).items()):
                    raise NotOurs(
                        f"{manifest['kind']} {md['name']} exists with other labels than ours"
                    ) from e
                return None
            refs = (existing.metadata.ownerReferences if existing.metadata else None) or []
            mine = md["ownerReferences"][0]["uid"]
            if not any(r.uid == mine for r in refs):
                owner = md["ownerReferences"][0]
                raise NotOurs(
                    f"{manifest['kind']} {md['name']} exists but is not owned by "
                    f"{owner['kind']} {owner['name']}"
                ) from e
            return None

    async def delete(self, kind: str, name: str, namespace: str) -> None:
        try:
            with errors.typed():
                await self.client.delete(
                    resources.child(kind), name, namespace=namespace, cascade=CascadeType.BACKGROUND
                )
        except errors.NotFound:
            pass

    async def patch(self, kind: str, name: str, namespace: str, patch: dict[str, Any]) -> None:
        with errors.typed():
            await self.client.patch(
                resources.child(kind), name, patch, namespace=namespace, patch_type=PatchType.MERGE
            )

    async def write_status(
        self, info: KindInfo, name: str, namespace: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch the status subresource; returns the stored object."""
        with errors.typed():
            written = await self.client.patch(
                resources.of(info).Status,
                name,
                {"status": status},
                namespace=namespace,
                patch_type=PatchType.MERGE,
            )
        return dict(written.to_dict())

    async def get(self, info: KindInfo, name: str, namespace: str) -> dict[str, Any]:
        with errors.typed():
            obj = await self.client.get(resources.of(info), name, namespace=namespace)
        return dict(obj.to_dict())

    async def delete_object(self, info: KindInfo, name: str, namespace: str, uid: str | None = None) -> None:
        """Delete the object (its children in the background), only if it is still the one
        with `uid`: a new object created under the same name is never deleted by mistake."""
        gc = self.client._client  # lightkube's delete takes no DeleteOptions body
        br = gc.prepare_request("delete", resources.of(info), name=name, namespace=namespace)
        options: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Background",
        }
        if uid:
            options["preconditions"] = {"uid": uid}
        br.data = options
        try:
            with errors.typed():
                gc.raise_for_status(await gc.send(gc.build_adapter_request(br)))  # type: ignore[no-untyped-call]
        except (errors.NotFound, errors.Conflict):
            pass  # gone, or another object of that name now (the precondition failed)

    async def tail(self, pod: str, namespace: str, container: str, lines: int) -> str:
        """The last `lines` lines of a container's log."""
        with errors.typed():
            return "".join(
                [
                    line
                    async for line in self.client.log(
                        pod, namespace=namespace, container=container, tail_lines=lines
                    )
                ]
            )

    async def log(self, pod: str, namespace: str, container: str, previous: bool) -> AsyncIterator[bytes]:
        """A container's log as it streams in (kubectl logs [--previous]), in bounded memory."""
        gc = self.client._client
        params = {"container": container, "previous": "true" if previous else None}
        br = gc.prepare_request("get", PodLog, name=pod, namespace=namespace, params=params)
        with errors.typed():
            resp = await gc.send(gc.build_adapter_request(br), stream=True)  # type: ignore[no-untyped-call]
            try:
                if resp.is_error:
                    await resp.aread()
                gc.raise_for_status(resp)  # type: ignore[no-untyped-call]
                async for chunk in resp.aiter_bytes():
                    yield chunk
            finally:
                await resp.aclose()

    async def secret_value(self, namespace: str, name: str, key: str) -> str:
        """One key of a Secret, decoded (a StreamingJob's broker password: get, by name)."""
        with errors.typed():
            secret = await self.client.get(Secret, name, namespace=namespace)
        data = secret.data or {}
        if key not in data:
            raise KeyError(f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data[key]).decode()

    async def find(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One dataworks object by kind and name (a Pipeline's template); None if there is none."""
        info = kinds.default().by_kind(kind)
        try:
            with errors.typed():
                found = await self.client.get(resources.of(info), name, namespace=namespace)
        except errors.NotFound:
            return None
        return dict(found.to_dict())

    async def list(self, kind: str, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        with errors.typed():
            return [
                dict(o.to_dict())
                async for o in self.client.list(
                    resources.child(kind), namespace=namespace, labels=dict(labels)
                )
            ]
