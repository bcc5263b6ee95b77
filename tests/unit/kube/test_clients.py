"""Pure parts of the client edge: request accounting and impersonation headers."""

from __future__ import annotations

import httpx2
import pytest

from dataworks.kube import clients


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/api/v1/namespaces/ns/pods", "pods"),
        ("/api/v1/namespaces/ns/pods/p1/log", "pods/log"),
        ("/apis/batch/v1/namespaces/ns/jobs/j1/status", "jobs/status"),
        ("/apis/dataworks.io/v1/namespaces/ns/pipelines/p?watch=true", "pipelines"),
        ("/api/v1/namespaces/ns", "namespaces"),
        ("/api/v1/nodes", "nodes"),
        ("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x", "customresourcedefinitions"),
    ],
)
def test_resource_of(path: str, resource: str) -> None:
    assert clients.resource_of(path) == resource


def test_counter_reports_writes_only() -> None:
    counter = clients.RequestCounter()
    counter.record("GET", "/apis/batch/v1/namespaces/a/jobs")
    counter.record("POST", "/apis/batch/v1/namespaces/a/jobs")
    counter.record("POST", "/apis/batch/v1/namespaces/b/jobs")
    counter.record("PATCH", "/apis/dataworks.io/v1/namespaces/a/pipelines/p/status")
    assert counter.writes() == {("POST", "jobs"): 2, ("PATCH", "pipelines/status"): 1}


def test_service_account_identity_sets_every_impersonation_header() -> None:
    request = httpx2.Request("GET", "https://example.invalid/api", headers={"Impersonate-Group": "stale"})
    identity = clients.Identity.service_account("ns", "robot")
    clients._prepare(request, identity, None)
    assert request.headers["Impersonate-User"] == "system:serviceaccount:ns:robot"
    assert request.headers.get_list("Impersonate-Group") == [
        "system:serviceaccounts",
        "system:serviceaccounts:ns",
        "system:authenticated",
    ]
