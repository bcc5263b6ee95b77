"""API failures become typed errors; a missing CRD is recognised for any registered kind."""

from __future__ import annotations

import httpx2
import pytest
from lightkube import ApiError

from dataworks.kube import errors
from tests.builders import widgets


def api_error(code: int, reason: str = "", kind: str = "", name: str = "") -> ApiError:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": f"m{code}",
        "reason": reason,
        "code": code,
    }
    if kind or name:
        body["details"] = {"kind": kind, "name": name}
    request = httpx2.Request("GET", "https://k/apis/dataworks.io/v1/namespaces/n/pipelines")
    return ApiError(request=request, response=httpx2.Response(code, json=body, request=request))


@pytest.mark.parametrize(
    ("code", "reason", "cls", "retriable"),
    [
        pytest.param(404, "NotFound", errors.NotFound, False, id="404"),
        pytest.param(409, "AlreadyExists", errors.Conflict, False, id="409"),
        pytest.param(403, "Forbidden", errors.Forbidden, False, id="403"),
        pytest.param(422, "Invalid", errors.Invalid, False, id="422"),
        pytest.param(410, "Expired", errors.Gone, False, id="410"),
        pytest.param(429, "TooManyRequests", errors.TooManyRequests, True, id="429"),
        pytest.param(500, "InternalError", errors.ServerError, True, id="500"),
        pytest.param(503, "ServiceUnavailable", errors.ServerError, True, id="503"),
        pytest.param(400, "BadRequest", errors.Other, False, id="400"),
    ],
)
def test_status_codes_become_types(
    code: int, reason: str, cls: type[errors.KubeError], retriable: bool
) -> None:
    err = errors.of(api_error(code, reason))
    assert type(err) is cls
    assert (err.code, err.reason, err.message, err.retriable) == (code, reason, f"m{code}", retriable)


def test_already_exists_is_a_conflict_that_says_so() -> None:
    assert isinstance(errors.of(api_error(409, "AlreadyExists")), errors.Conflict)
    assert errors.of(api_error(409, "AlreadyExists")).already_exists  # type: ignore[attr-defined]
    assert not errors.of(api_error(409, "Conflict")).already_exists  # type: ignore[attr-defined]


def test_transport_errors_are_unreachable_and_retriable() -> None:
    err = errors.of(httpx2.ConnectError("connection refused"))
    assert isinstance(err, errors.Unreachable)
    assert err.retriable
    assert "refused" in err.message


def test_typed_raises_the_typed_error_from_the_original() -> None:
    with pytest.raises(errors.NotFound) as caught, errors.typed():
        raise api_error(404, "NotFound")
    assert isinstance(caught.value.__cause__, ApiError)


def missing(err: BaseException) -> str | None:
    info = errors.crd_missing(errors.of(err), widgets.registry())
    return info.kind if info else None


def test_a_missing_crd_is_recognised_for_any_registered_kind() -> None:
    assert missing(api_error(404, "NotFound", kind="pipelines")) == "Pipeline"
    assert missing(api_error(404, "NotFound", kind="widgets")) == "Widget"
    assert missing(api_error(404, "NotFound", kind="widgets", name="w")) is None  # an object, not the CRD
    assert missing(api_error(403)) is None
    request = httpx2.Request("GET", "https://k/apis/dataworks.io/v1/namespaces/n/widgets")
    bare = httpx2.HTTPStatusError("404", request=request, response=httpx2.Response(404, request=request))
    assert missing(bare) == "Widget"
