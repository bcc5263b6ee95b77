"""Builds lightkube clients for every part of dataworks (I/O layer).

The operator, the CLI and the tests all get their clients here, so that
kubeconfig handling, impersonation and request accounting are done once.
Impersonation, accounting and `fieldValidation` (lightkube 1.0's create has
no parameter for it) ride on an httpx transport that wraps the one lightkube
would use, so the TLS setup stays lightkube's own.
"""

from __future__ import annotations

import collections
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from lightkube import AsyncClient, Client, KubeConfig
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core import decoders
from lightkube.core.exceptions import ConfigError

from dataworks.core.kit import backoffs
from dataworks.kube import retrying

WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The verbs whose body the API server decodes, and so can refuse for unknown fields.
BODY_VERBS = frozenset({"POST", "PUT", "PATCH"})


@dataclass
class RequestCounter:
    """Counts API requests by (HTTP method, resource path kind); thread-safe."""

    counts: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self.counts[(method, resource_of(path))] += 1

    def writes(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return {k: v for k, v in self.counts.items() if k[0] in WRITE_VERBS}


def resource_of(path: str) -> str:
    """The resource (and subresource) a request path names.

    >>> resource_of("/apis/batch/v1/namespaces/ns/jobs/j1/status")
    'jobs/status'
    >>> resource_of("/api/v1/namespaces/ns/pods")
    'pods'
    """
    parts = [p for p in path.split("?", maxsplit=1)[0].split("/") if p]
    if parts and parts[0] == "api":
        parts = parts[2:]
    elif parts and parts[0] == "apis":
        parts = parts[3:]
    if len(parts) >= 2 and parts[0] == "namespaces":
        parts = parts[2:] if len(parts) > 2 else ["namespaces"]
    if not parts:
        return ""
    if len(parts) >= 3:
        return f"{parts[0]}/{parts[2]}"
    return parts[0]


@dataclass(frozen=True)
class Identity:
    """An identity to impersonate, such as system:serviceaccount:NS:NAME."""

    user: str
    groups: tuple[str, ...] = ()

    @classmethod
    def service_account(cls, namespace: str, name: str) -> Identity:
        return cls(
            user=f"system:serviceaccount:{namespace}:{name}",
            groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
        )

    def headers(self) -> list[tuple[str, str]]:
        return [("Impersonate-User", self.user)] + [("Impersonate-Group", g) for g in self.groups]


class _Transport(httpx2.HTTPTransport):
    def __init__(
        self,
        verify: object,
        identity: Identity | None,
        counter: RequestCounter | None,
        field_validation: str | None = None,
    ) -> None:
        super().__init__(verify=verify)  # type: ignore[arg-type]
        self._identity, self._counter, self._field_validation = identity, counter, field_validation

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        _prepare(request, self._identity, self._counter, self._field_validation)
        return super().handle_request(request)


class _AsyncTransport(httpx2.AsyncHTTPTransport):
    def __init__(self, verify: object, identity: Identity | None, counter: RequestCounter | None) -> None:
        super().__init__(verify=verify)  # type: ignore[arg-type]
        self._identity, self._counter = identity, counter

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        _prepare(request, self._identity, self._counter)
        return await super().handle_async_request(request)


def _prepare(
    request: httpx2.Request,
    identity: Identity | None,
    counter: RequestCounter | None,
    field_validation: str | None = None,
) -> None:
    if field_validation is not None and request.method in BODY_VERBS:
        request.url = request.url.copy_set_param("fieldValidation", field_validation)
    if identity is not None:
        # Impersonate-Group may repeat, so the headers are rebuilt from raw pairs.
        raw = [(k, v) for k, v in request.headers.raw if not k.lower().startswith(b"impersonate-")]
        raw += [(k.encode(), v.encode()) for k, v in identity.headers()]
        request.headers = httpx2.Headers(raw)
    if counter is not None:
        counter.record(request.method, request.url.path)


SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = "~/.kube/config"


@dataclass(frozen=True)
class InCluster:
    """The API endpoint and credentials a pod is given (what client-go's InClusterConfig reads)."""

    server: str
    token_file: Path
    ca_file: Path
    namespace: str | None


def in_cluster(sa_dir: Path = SERVICE_ACCOUNT_DIR) -> InCluster | None:
    """The pod's API server, from KUBERNETES_SERVICE_HOST/PORT and its ServiceAccount's files;
    None outside a pod. The service's environment, not the DNS name kubernetes.default.svc,
    so that hostNetwork pods and clusters without DNS work too."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    token = sa_dir / "token"
    if not host or not port or not token.is_file():
        return None
    ns = sa_dir / "namespace"
    return InCluster(
        server=f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}",
        token_file=token,
        ca_file=sa_dir / "ca.crt",
        namespace=ns.read_text().strip() if ns.is_file() else None,
    )


def kubeconfig_path(kubeconfig: str | None = None) -> str | None:
    """The kubeconfig file to use, as kubectl chooses it: the flag, then $KUBECONFIG, then
    ~/.kube/config if it exists; None means in-cluster."""
    if kubeconfig:
        return kubeconfig
    if os.environ.get("KUBECONFIG"):
        return os.environ["KUBECONFIG"]
    default = Path(DEFAULT_KUBECONFIG).expanduser()
    return str(default) if default.is_file() else None


def load_config(kubeconfig: str | None = None, context: str | None = None) -> SingleConfig:
    """The selected context of the kubeconfig file kubeconfig_path() chooses, or in-cluster."""
    path = kubeconfig_path(kubeconfig)
    if path is not None:
        config = KubeConfig.from_file(path)
    else:
        pod = in_cluster()
        if pod is None:
            raise ConfigError(
                f"no kubeconfig: none given, $KUBECONFIG is unset, {DEFAULT_KUBECONFIG} does not exist,"
                " and this is not a pod (no KUBERNETES_SERVICE_HOST or ServiceAccount token)"
            )
        config = KubeConfig.from_service_account(pod.token_file.parent)
    single = config.get(context_name=context)
    if single is None:
        raise ValueError(f"kubeconfig {kubeconfig or '$KUBECONFIG'} has no current context; pass --context")
    return single


def _verify(config: SingleConfig) -> object:
    assert config.user is not None, "kubeconfig context has no user"
    return client_adapter.verify_cluster(config.cluster, config.user, config.abs_file)


def sync_client(
    kubeconfig: str | None = None,
    *,
    context: str | None = None,
    namespace: str | None = None,
    impersonate: Identity | None = None,
    counter: RequestCounter | None = None,
    field_manager: str = "dataworks",
    field_validation: str | None = None,
) -> Client:
    """A synchronous client (the CLI and tests). `field_validation="Strict"` makes the API
    server refuse a write whose body has an unknown field, instead of dropping it."""
    config = load_config(kubeconfig, context)
    transport = None
    if impersonate is not None or counter is not None or field_validation is not None:
        transport = _Transport(_verify(config), impersonate, counter, field_validation)
    return Client(config, namespace=namespace, field_manager=field_manager, transport=transport)


def async_client(
    kubeconfig: str | None = None,
    *,
    context: str | None = None,
    namespace: str | None = None,
    impersonate: Identity | None = None,
    counter: RequestCounter | None = None,
    field_manager: str = "dataworks",
    retry: backoffs.Backoff | None = None,
) -> AsyncClient:
    """An asynchronous client (the operator). With `retry`, every request that fails in
    transit or with a transient status is sent again (kube/retrying.py): only for callers
    whose writes are idempotent."""
    config = load_config(kubeconfig, context)
    transport: httpx2.AsyncBaseTransport | None = None
    if impersonate is not None or counter is not None:
        transport = _AsyncTransport(_verify(config), impersonate, counter)
    if retry is not None:
        inner = transport or httpx2.AsyncHTTPTransport(verify=_verify(config))  # type: ignore[arg-type]
        transport = retrying.RetryingTransport(inner, retry)
    return AsyncClient(config, namespace=namespace, field_manager=field_manager, transport=transport)


def prime_decoders(*resources: type[Any]) -> None:
    """Decode each resource type once on this thread.

    lightkube decodes with msgspec, which prepares a type's decoder lazily on
    first use; two threads decoding the same type for the first time at once
    crashed the interpreter here (lightkube 1.0.1, msgspec 0.22). Call this
    before starting threads that share resource types.
    """
    for res in resources:
        api_version = getattr(res, "_api_info", None)
        kind = res.__name__
        version = api_version.resource.version if api_version else "v1"
        group = api_version.resource.group if api_version else ""
        body = {
            "apiVersion": f"{group}/{version}" if group else version,
            "kind": kind,
            "metadata": {"name": "x"},
        }
        decoders.decode_object(json.dumps(body).encode(), res)
