"""pipeline-ctl against the real control plane, with the operator running."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cluster.conftest import Cluster
from tests.cluster.pipelines import manifest, step

pytestmark = pytest.mark.usefixtures("operator")
CTL = str(Path(sys.executable).parent / "pipeline-ctl")


def run_ctl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CTL, *args], capture_output=True, text=True, input=stdin, timeout=120, check=False)


def ctl(
    cluster: Cluster, namespace: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run_ctl(*args, "--kubeconfig", cluster.kubeconfig, "-n", namespace, stdin=stdin)


def test_run_wait_status_and_json(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(manifest("two-steps", [step("a"), step("b", ["a"])])))
    run = ctl(cluster, namespace, "run", "-f", str(path), "--name", "nightly", "--wait")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["pipeline.dataworks.io/nightly created", "pipeline nightly: Completed"]
    table = ctl(cluster, namespace, "status").stdout.splitlines()
    assert table[0].split() == ["Pipeline", "Phase", "Steps", "Duration", "Started"]
    assert table[1].split()[:3] == ["nightly", "Completed", "2/2"]
    detail = ctl(cluster, namespace, "status", "nightly").stdout
    assert "✅ a (completed in" in detail
    data = json.loads(ctl(cluster, namespace, "status", "nightly", "-o", "json").stdout)
    assert [(s["name"], s["phase"]) for s in data["steps"]] == [("a", "Completed"), ("b", "Completed")]
    again = ctl(cluster, namespace, "run", "-f", str(path))  # each run gets a unique name
    assert again.stdout.startswith("pipeline.dataworks.io/two-steps-")


def test_failed_run_exits_1_and_retry_of_one_step(cluster: Cluster, namespace: str) -> None:
    doc = manifest("flaky", [step("x", fate={"fail-if-label": "dataworks.io/attempt=1"}, retry={"limit": 0})])
    run = ctl(cluster, namespace, "run", "-f", "-", "--name", "flaky", "--wait", stdin=yaml.safe_dump(doc))
    assert run.returncode == 1
    assert run.stdout.splitlines()[-1] == "pipeline flaky: Failed"
    wrong = ctl(cluster, namespace, "retry", "flaky", "--step", "y")
    assert (wrong.returncode, wrong.stderr.strip()) == (
        2,
        'error: pipeline flaky has no step "y"; its steps: x',
    )
    retry = ctl(cluster, namespace, "retry", "flaky", "--step", "x")
    assert retry.returncode == 0, retry.stderr
    assert retry.stdout.strip().endswith("will re-run: x")


def test_cancel_and_errors_a_user_will_hit(cluster: Cluster, namespace: str) -> None:
    doc = manifest("forever", [step("x", fate={"outcome": "run"})])
    assert (
        ctl(cluster, namespace, "run", "-f", "-", "--name", "forever", stdin=yaml.safe_dump(doc)).returncode
        == 0
    )
    cancel = ctl(cluster, namespace, "cancel", "forever")
    assert cancel.stdout.strip() == "pipeline.dataworks.io/forever cancelled"
    missing = ctl(cluster, namespace, "status", "forevr")
    assert missing.returncode == 2
    assert (
        missing.stderr.strip()
        == f'error: pipeline "forevr" not found in namespace {namespace}; did you mean forever?'
    )
    bad = ctl(
        cluster,
        namespace,
        "run",
        "-f",
        "-",
        stdin=yaml.safe_dump(manifest("cyc", [step("a", ["b"]), step("b", ["a"])])),
    )
    assert bad.returncode == 2
    assert "forms a cycle: a -> b -> a" in bad.stderr
    unreachable = run_ctl(
        "status", "--kubeconfig", str(Path(cluster.kubeconfig).with_name("missing.kubeconfig"))
    )
    assert unreachable.returncode == 3
    assert "cannot load a kubeconfig" in unreachable.stderr


def test_dry_run_needs_no_cluster_and_the_server_accepts_its_jobs(cluster: Cluster, namespace: str) -> None:
    seed = Path(__file__).resolve().parents[2] / "examples" / "seed" / "marketing-q1-analysis.yaml"
    out = subprocess.run(
        [CTL, "run", "--dry-run", "-f", str(seed), "-n", namespace],
        capture_output=True,
        text=True,
        check=True,
    )
    docs = list(yaml.safe_load_all(out.stdout))
    assert [d["kind"] for d in docs] == ["ConfigMap", "Job", "Job", "Job"]
    for d in docs:  # strip the placeholder owner, then let the API server validate (and admit) it
        d["metadata"].pop("ownerReferences")
    checked = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", check=False, input=yaml.safe_dump_all(docs)
    )
    assert checked.returncode == 0, checked.stderr


def test_forbidden_names_the_verb_and_resource(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    from lightkube.models.authentication_v1 import TokenRequestSpec
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import ServiceAccount

    # A real identity with no RBAC role: a ServiceAccount token from the TokenRequest API.
    cluster.client.create(ServiceAccount(metadata=ObjectMeta(name="nobody")), namespace=namespace)
    token = cluster.client.create(
        ServiceAccount.Token(
            metadata=ObjectMeta(), spec=TokenRequestSpec(audiences=[], expirationSeconds=600)
        ),
        "nobody",
        namespace=namespace,
    ).status.token
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    admin["users"] = [{"name": "nobody", "user": {"token": token}}]
    admin["contexts"][0]["context"]["user"] = "nobody"
    kubeconfig = tmp_path / "nobody.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(admin))
    out = run_ctl("status", "--kubeconfig", str(kubeconfig), "-n", namespace)
    assert out.returncode == 3
    assert "error: forbidden:" in out.stderr
    assert (
        f'cannot list resource "pipelines" in API group "dataworks.io" in the namespace "{namespace}"'
        in out.stderr
    )
    assert "(ask for RBAC permission to list pipelines)" in out.stderr
