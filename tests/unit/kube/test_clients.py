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


def test_kubeconfig_is_chosen_as_kubectl_chooses_it(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert clients.kubeconfig_path() is None  # nothing: in-cluster
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text("{}")
    assert clients.kubeconfig_path() == str(tmp_path / ".kube" / "config")
    monkeypatch.setenv("KUBECONFIG", "/from/env")
    assert clients.kubeconfig_path() == "/from/env"
    assert clients.kubeconfig_path("/from/flag") == "/from/flag"


def test_in_cluster_reads_the_service_environment_and_account(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    (tmp_path / "token").write_text("t")
    assert clients.in_cluster(tmp_path) is None  # not a pod: no service environment
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    pod = clients.in_cluster(tmp_path)
    assert pod is not None
    assert (pod.server, pod.namespace) == ("https://[fd00::1]:443", None)
    (tmp_path / "namespace").write_text("dataworks-system\n")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    pod = clients.in_cluster(tmp_path)
    assert pod is not None
    assert (pod.server, pod.namespace) == ("https://10.96.0.1:443", "dataworks-system")
    (tmp_path / "token").unlink()
    assert clients.in_cluster(tmp_path) is None  # no ServiceAccount token mounted


def test_no_kubeconfig_and_not_a_pod_says_what_was_tried(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(Exception, match=r"\$KUBECONFIG is unset.*not a pod"):
        clients.load_config()


def test_strict_field_validation_rides_on_every_write_with_a_body() -> None:
    for method in ("POST", "PUT", "PATCH", "GET", "DELETE"):
        request = httpx2.Request(
            method, "https://example.invalid/apis/dataworks.io/v1/pipelines?fieldManager=m"
        )
        clients._prepare(request, None, None, "Strict")
        expected = "Strict" if method in {"POST", "PUT", "PATCH"} else None
        assert request.url.params.get("fieldValidation") == expected, method
        assert request.url.params["fieldManager"] == "m"
