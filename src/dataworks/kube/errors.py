"""Typed Kubernetes API errors (I/O edge): what a failed call means, not its status number.

lightkube raises `ApiError` carrying a Status; httpx2 raises transport errors
and, for an API group the server does not serve, a bare 404 response. `of`
turns any of them into one of the classes below, so callers write
`except errors.NotFound` and never compare codes. `crd_missing` recognises a
missing CRD for any registered kind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx2
from lightkube import ApiError

from dataworks.api import kinds
from dataworks.api.meta import KindInfo


class KubeError(Exception):
    """A failed API call: its HTTP code (0 when the server was not reached), reason and message."""

    code = 0

    def __init__(
        self, message: str, *, reason: str = "", kind: str = "", name: str = "", url: str = ""
    ) -> None:
        super().__init__(message)
        self.message, self.reason, self.kind, self.name, self.url = message, reason, kind, name, url

    @property
    def retriable(self) -> bool:
        """Worth trying again unchanged: the server was unreachable, overloaded or failed."""
        return False


class NotFound(KubeError):
    code = 404


class Conflict(KubeError):
    """409: AlreadyExists on create, or a stale resourceVersion on update."""

    code = 409

    @property
    def already_exists(self) -> bool:
        return self.reason == "AlreadyExists"


class Forbidden(KubeError):
    code = 403


class Invalid(KubeError):
    """422: the object breaks the schema, a CEL rule or admission."""

    code = 422


class Gone(KubeError):
    code = 410


class TooManyRequests(KubeError):
    code = 429

    @property
    def retriable(self) -> bool:
        return True


class ServerError(KubeError):
    code = 500

    @property
    def retriable(self) -> bool:
        return True


class Unreachable(KubeError):
    """The connection failed or broke: the server may or may not have acted."""

    @property
    def retriable(self) -> bool:
        return True


class Other(KubeError):
    pass


_BY_CODE: dict[int, type[KubeError]] = {
    404: NotFound,
    409: Conflict,
    403: Forbidden,
    422: Invalid,
    410: Gone,
    429: TooManyRequests,
}


def of(exc: BaseException) -> KubeError:
    """The typed error of an exception a client call raised (Other when it is no API error)."""
    if isinstance(exc, KubeError):
        return exc
    if isinstance(exc, ApiError):
        status = exc.status
        code = int(status.code or 0)
        cls = _BY_CODE.get(code) or (ServerError if code >= 500 else Other)
        details = status.details
        err = cls(
            status.message or str(exc),
            reason=status.reason or "",
            kind=(details.kind or "") if details else "",
            name=(details.name or "") if details else "",
        )
        if cls is ServerError or cls is Other:
            err.code = code
        return err
    if isinstance(exc, httpx2.HTTPStatusError):
        code = exc.response.status_code
        cls = _BY_CODE.get(code) or (ServerError if code >= 500 else Other)
        err = cls(f"{code} {exc.response.reason_phrase}", url=str(exc.request.url))
        err.code = code
        return err
    if isinstance(exc, httpx2.TransportError):
        return Unreachable(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return Other(str(exc))


@contextlib.contextmanager
def typed() -> Iterator[None]:
    """Raise the typed error of any API or transport failure inside the block."""
    try:
        yield
    except (ApiError, httpx2.HTTPError) as e:
        raise of(e) from e


def crd_missing(err: KubeError, registry: kinds.Registry | None = None) -> KindInfo | None:
    """The registered kind whose CRD is not installed, if that is what `err` says.

    A served group with no such resource answers 404 with the plural in the
    Status details and no name; a group the server does not serve at all
    answers a bare 404 page for its URL.
    """
    if not isinstance(err, NotFound):
        return None
    for info in registry or kinds.default():
        if err.kind == info.plural and not err.name:
            return info
        if err.url and f"/apis/{info.group}/{info.version}/" in err.url and f"/{info.plural}" in err.url:
            return info
    return None
