"""pipeline-ctl against the real control plane, with the operator running."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.builders.completion import complete
from tests.cluster.conftest import Cluster
from tests.cluster.pipelines import FATE, manifest, step

pytestmark = pytest.mark.usefixtures("operator")
CTL = str(Path(sys.executable).parent / "dataworks")  # pipeline-ctl is the same program (tests/local)


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


def test_unknown_fields_are_refused_and_nothing_is_created(cluster: Cluster, namespace: str) -> None:
    misspelt = manifest("misspelt", [step("a"), {**step("b"), "dependOn": ["a"]}])
    out = ctl(cluster, namespace, "run", "-f", "-", stdin=yaml.safe_dump(misspelt))
    assert out.returncode == 2
    assert (
        "step 'b': spec.steps[1].dependOn: unknown field 'dependOn'; did you mean 'dependsOn'?" in out.stderr
    )
    # Deeper than the CLI's own check: the create is strict, so the API server refuses it too.
    owned = manifest("owned", [step("a")])
    owned["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "u", "cotroller": True}
    ]
    out = ctl(cluster, namespace, "run", "-f", "-", stdin=yaml.safe_dump(owned))
    assert out.returncode == 2, out.stderr
    assert "error: the API server refused to create pipelines: " in out.stderr
    assert 'unknown field "metadata.ownerReferences[0].cotroller"' in out.stderr
    listed = ctl(cluster, namespace, "status", "-o", "name")
    assert listed.stdout.strip() == "", listed.stdout


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
    import kubernetes_validate

    for d in docs:  # the schemas of the test cluster's version
        kubernetes_validate.validate(d, "1.36", strict=True)
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


def test_run_checks_the_connections_secret_before_creating(cluster: Cluster, namespace: str) -> None:
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Secret

    from dataworks.kube.resources import Pipeline

    fetch = {"name": "pull", "type": "fetch", "config": {"source": "orders_db", "query": "SELECT 1"}}
    load = {
        "name": "push",
        "type": "load",
        "dependsOn": ["pull"],
        "config": {"destination": "postgres", "connection": "warehouse", "table": "t"},
    }
    doc = yaml.safe_dump(manifest("etl", [fetch, load], connectionsSecret="etl-conns"))
    missing = ctl(cluster, namespace, "run", "-f", "-", stdin=doc)
    assert missing.returncode == 2
    assert (
        f"error: pipeline etl: spec.connectionsSecret: Secret 'etl-conns' not found in namespace {namespace}"
        in missing.stderr
    )
    assert (
        f"kubectl create secret generic etl-conns -n {namespace} --from-literal=orders_db=URI"
        in missing.stderr
    )
    secret = Secret(
        metadata=ObjectMeta(name="etl-conns"), stringData={"DATAWORKS_CONN_ORDERS_DB": "postgresql://x"}
    )
    cluster.client.create(secret, namespace=namespace)
    lacking = ctl(cluster, namespace, "run", "-f", "-", stdin=doc)
    assert lacking.returncode == 2
    assert "step push: connection 'warehouse' is not a key of Secret 'etl-conns'" in lacking.stderr
    assert "(its keys: DATAWORKS_CONN_ORDERS_DB)" in lacking.stderr
    assert "orders_db" not in lacking.stderr  # found under its variable spelling
    assert list(cluster.client.list(Pipeline, namespace=namespace)) == []  # nothing created by either
    cluster.client.patch(
        Secret, "etl-conns", {"stringData": {"warehouse": "postgresql://y"}}, namespace=namespace
    )
    ok = ctl(cluster, namespace, "run", "-f", "-", "--name", "etl", stdin=doc)
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == ""
    unset = yaml.safe_dump(manifest("etl", [fetch, load]))
    warned = ctl(cluster, namespace, "run", "-f", "-", "--name", "etl-2", stdin=unset)
    assert warned.returncode == 0
    assert (
        "warning: pipeline etl: steps name connections 'orders_db' (step pull); 'warehouse' (step push)"
        in (warned.stderr)
    )


def test_describe_says_why_a_running_step_has_not_started(cluster: Cluster, namespace: str) -> None:
    doc = manifest("nowhere", [step("a")], podDefaults={"nodeSelector": {"workload-type": "quantum"}})
    assert (
        ctl(cluster, namespace, "run", "-f", "-", "--name", "nowhere", stdin=yaml.safe_dump(doc)).returncode
        == 0
    )
    deadline = time.monotonic() + 30
    while "Step a is waiting" not in (described := ctl(cluster, namespace, "describe", "nowhere").stdout):
        assert time.monotonic() < deadline, described
        time.sleep(0.5)
    line = next(x for x in described.splitlines() if x.startswith("Step a is waiting"))
    assert re.fullmatch(
        r"Step a is waiting: pod nowhere-a-\w+: not scheduled: 0/\d+ nodes are available: .*", line
    )
    assert "node affinity/selector" in line  # the scheduler's own words
    data = json.loads(ctl(cluster, namespace, "describe", "nowhere", "-o", "json").stdout)
    assert [w["step"] for w in data["waiting"]] == ["a"]


def test_worker_table_logs_and_watch(cluster: Cluster, namespace: str) -> None:
    fan = {
        "name": "insights",
        "type": "fan-out",
        "parallelism": 3,
        "config": {"sql": "SELECT 1"},
        "annotations": {
            FATE + "outcome": "run",
            FATE + "logs": "worker {index} starting\nPROGRESS: {index}5.0%",
        },
    }
    doc = manifest("fan", [fan])
    assert (
        ctl(cluster, namespace, "run", "-f", "-", "--name", "fan", stdin=yaml.safe_dump(doc)).returncode == 0
    )
    deadline = time.monotonic() + 60
    while True:
        detail = ctl(cluster, namespace, "status", "fan").stdout
        if all(f"{10 * i + 5:.1f}%" in detail for i in range(3)) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "insights: 0/3 workers done" in detail
    assert "Progress: " in detail  # overall progress and ETA from the workers' PROGRESS lines
    for i in range(3):
        row = next(line for line in detail.splitlines() if line.split()[:1] == [str(i)])
        assert "Running" in row
        assert f"{10 * i + 5:.1f}%" in row
    logs = ctl(cluster, namespace, "logs", "fan", "--step", "insights").stdout.splitlines()
    assert "[insights/worker-1 attempt 1] worker 1 starting" in logs
    assert "[insights/worker-2 attempt 1] PROGRESS: 25.0%" in logs
    one = ctl(cluster, namespace, "logs", "fan", "--worker", "0").stdout.splitlines()
    assert one == [
        "[insights/worker-0 attempt 1] worker 0 starting",
        "[insights/worker-0 attempt 1] PROGRESS: 05.0%",
    ]
    nosuch = ctl(cluster, namespace, "logs", "fan", "--step", "nope")
    assert (nosuch.returncode, nosuch.stderr.strip()) == (
        2,
        "error: pipeline fan has no step nope (steps: insights)",
    )
    described = ctl(cluster, namespace, "describe", "fan").stdout
    assert "insights: job/fan-insights (attempt 1)" in described
    assert "insights: 0/3 workers done" in described
    events = described[described.index("Events") :]
    assert "StepStarted" in events
    assert "step insights started (attempt 1, job fan-insights)" in events
    # completion asks the cluster for pipeline and step names
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    config["contexts"][0]["context"]["namespace"] = namespace
    kubeconfig = Path(cluster.kubeconfig).with_name(f"{namespace}.kubeconfig")
    kubeconfig.write_text(yaml.safe_dump(config))
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PATH": f"{Path(CTL).parent}:{os.environ['PATH']}"}
    assert complete(["pipeline-ctl", "describe", "f"], env) == ["fan"]
    assert complete(["pipeline-ctl", "logs", "fan", "--step", "in"], env) == ["insights"]
    ctl(cluster, namespace, "cancel", "fan")
    quick = manifest("quick", [step("a"), step("b", ["a"])])
    watched = ctl(
        cluster, namespace, "run", "-f", "-", "--name", "quick", "--watch", stdin=yaml.safe_dump(quick)
    )
    assert watched.returncode == 0, watched.stderr
    assert "Phase: Completed" in watched.stdout


def test_failure_diagnosis_logs_tail_follow_and_previous(cluster: Cluster, namespace: str) -> None:
    fate = {
        "fail-if-label": "dataworks.io/attempt=1",
        "logs": "reading orders\nPROGRESS: 50.0%\nerror: step 'x': connection refused by db:5432",
    }
    doc = manifest("diag", [step("x", fate=fate, retry={"limit": 0})])
    run = ctl(cluster, namespace, "run", "-f", "-", "--name", "diag", "--wait", stdin=yaml.safe_dump(doc))
    assert run.returncode == 1
    described = ctl(cluster, namespace, "describe", "diag").stdout
    assert "Step x failed: BackoffLimitExceeded" in described
    conditions = described[described.index("Conditions") : described.index("Jobs:")].splitlines()
    failed_row = next(line.split() for line in conditions if line.split()[:1] == ["Failed"])
    assert failed_row[1:3] == ["True", "BackoffLimitExceeded"]
    assert "error: step 'x': connection refused by db:5432" in described.split("Step x failed", 1)[1]
    followed = ctl(cluster, namespace, "logs", "diag", "--step", "x", "-f")  # the pod has ended: -f returns
    assert followed.returncode == 0
    assert followed.stdout.splitlines()[-1] == "[x attempt 1] error: step 'x': connection refused by db:5432"
    last = ctl(cluster, namespace, "logs", "diag", "--tail", "1").stdout.splitlines()
    assert last == ["[x attempt 1] error: step 'x': connection refused by db:5432"]
    assert ctl(cluster, namespace, "retry", "diag").returncode == 0
    wait_until = time.monotonic() + 60
    while "Phase: Completed" not in ctl(cluster, namespace, "status", "diag").stdout:
        assert time.monotonic() < wait_until
        time.sleep(0.5)
    every = ctl(cluster, namespace, "logs", "diag").stdout.splitlines()
    assert {line.split("]")[0] for line in every} == {"[x attempt 1", "[x attempt 2"}
    as_json = [
        json.loads(line) for line in ctl(cluster, namespace, "logs", "diag", "-o", "json").stdout.splitlines()
    ]
    assert {(r["step"], r["attempt"], r["worker"]) for r in as_json} == {("x", 1, None), ("x", 2, None)}
    assert as_json[-1]["line"]
    earlier = ctl(cluster, namespace, "logs", "diag", "--previous").stdout.splitlines()
    assert earlier
    assert all(line.startswith("[x attempt 1]") for line in earlier)


def test_crds_missing_and_cluster_unreachable(tmp_path: Path) -> None:
    from tests.builders.net import free_port
    from tests.cluster import conftest

    bare = conftest._start(tmp_path)  # a second control plane, without our CRDs
    try:
        out = run_ctl("status", "--kubeconfig", bare.kubeconfig)
        assert out.returncode == 3
        assert out.stderr.strip() == (
            "error: the Pipeline CRD is not installed in this cluster: "
            "kubectl apply --server-side -k deploy/crds"
        )
    finally:
        bare.stop()
    config = yaml.safe_load(Path(bare.kubeconfig).read_text())
    closed = free_port()
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{closed}"
    gone = tmp_path / "gone.kubeconfig"
    gone.write_text(yaml.safe_dump(config))
    out = run_ctl("status", "--kubeconfig", str(gone))
    assert out.returncode == 3
    assert out.stderr.startswith(f"error: cannot reach the cluster at https://127.0.0.1:{closed}")


def test_every_verb_speaks_json(cluster: Cluster, namespace: str) -> None:
    doc = yaml.safe_dump(manifest("js", [step("a", fate={"outcome": "run"})]))
    made = json.loads(
        ctl(cluster, namespace, "run", "-f", "-", "--name", "js", "-o", "json", stdin=doc).stdout
    )
    assert made == [{"name": "js", "namespace": namespace, "action": "created"}]
    for verb, action in (("suspend", "suspended"), ("resume", "resumed"), ("cancel", "cancelled")):
        out = json.loads(ctl(cluster, namespace, verb, "js", "-o", "json").stdout)
        assert out == {"name": "js", "namespace": namespace, "action": action}
    deadline = time.monotonic() + 30
    while json.loads(ctl(cluster, namespace, "status", "js", "-o", "json").stdout)["phase"] != "Cancelled":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    retried = yaml.safe_load(ctl(cluster, namespace, "retry", "js", "-o", "yaml").stdout)
    assert retried["rerun"] == ["a"]
    assert retried["retryId"].startswith("r-")
    described = json.loads(ctl(cluster, namespace, "describe", "js", "-o", "json").stdout)
    assert described["name"] == "js"
    assert "a" in described["jobs"]
    assert "StepStarted" in [e["reason"] for e in described["events"]]
    gone = json.loads(ctl(cluster, namespace, "delete", "js", "-o", "json").stdout)
    assert gone == {"name": "js", "namespace": namespace, "action": "deleted"}
