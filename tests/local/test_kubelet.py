"""One launcher: a local run executes the very Job manifests the operator would create.

The pipeline runs through `dataworks run --local`. A `sitecustomize` on PYTHONPATH records,
in every Python process that starts, its argv and environment: the worker of a built-in step,
and a container step that runs python3. The test then checks, without the kubelet's code:

- each Job the run kept is the one `dataworks run --dry-run` prints for the cluster, but for
  what differs between the two backends by design (store URL, namespace, uid);
- each step process got exactly that container's arguments and environment, resolved as a
  kubelet does ($(VAR) expansion, the completion index, mount paths mapped into the run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

EXE = str(Path(sys.executable).parent / "dataworks")
PROBE = """
import json, os, sys
out = os.environ.get("PROBE_OUT")
if out and os.environ.get("DATAWORKS_STEP"):
    name = f"{os.environ['DATAWORKS_STEP']}-{os.environ.get('WORKER_INDEX', '-')}-{os.getpid()}.json"
    with open(os.path.join(out, name), "w") as f:
        json.dump({"argv": sys.argv, "env": dict(os.environ)}, f)
"""

PIPELINE = {
    "apiVersion": "dataworks.io/v1",
    "kind": "Pipeline",
    "metadata": {"name": "parity"},
    "spec": {
        "steps": [
            {
                "name": "probe",
                "type": "container",
                "image": "python:3.11",
                "command": ["python3", "-c", "import sys; print(sys.argv[1:])"],
                "args": ["hello $(GREETING)", "$(UNSET)"],
                "env": [{"name": "GREETING", "value": "world"}, {"name": "MODE", "value": "test"}],
            },
            {
                "name": "numbers",
                "type": "transform",
                "dependsOn": ["probe"],
                "config": {"sql": "SELECT range AS n FROM range(10)"},
            },
            {
                "name": "split",
                "type": "fan-out",
                "dependsOn": ["numbers"],
                "config": {"parallelism": 2, "sql": "SELECT * FROM numbers"},
            },
        ]
    },
}


def test_local_steps_get_the_cluster_jobs_env_and_args(tmp_path: Path) -> None:
    probe_dir, out = tmp_path / "probe", tmp_path / "seen"
    probe_dir.mkdir()
    out.mkdir()
    (probe_dir / "sitecustomize.py").write_text(PROBE)
    path = tmp_path / "parity.yaml"
    path.write_text(yaml.safe_dump(PIPELINE))
    env = {**os.environ, "PYTHONPATH": str(probe_dir), "PROBE_OUT": str(out)}
    run = subprocess.run(
        [EXE, "run", "--local", str(path), "--name", "parity-1"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    dry = subprocess.run(
        [EXE, "run", "--dry-run", str(path), "--name", "parity-1", "-n", "local"],
        capture_output=True,
        text=True,
        check=True,
    )
    cluster = {d["metadata"]["name"]: d for d in yaml.safe_load_all(dry.stdout) if d and d["kind"] == "Job"}
    rundir = tmp_path / ".dataworks" / "runs" / "parity-1"
    kept = {p.stem: json.loads(p.read_text()) for p in (rundir / "manifests").glob("*.json")}
    store = f"file://{rundir / 'store'}"

    assert sorted(cluster) == ["parity-1-numbers", "parity-1-probe", "parity-1-split"]
    for name, job in cluster.items():
        # What differs by design: the operator's store and a real uid, versus the run's own.
        text = json.dumps(job).replace("file:///var/lib/dataworks/store", store)
        text = text.replace("00000000-0000-0000-0000-000000000000", "parity-1")
        assert kept[name] == json.loads(text), name

    seen = [json.loads(p.read_text()) for p in out.glob("*.json")]
    by_step: dict[str, list[dict[str, Any]]] = {}
    for s in seen:
        by_step.setdefault(s["env"]["DATAWORKS_STEP"], []).append(s)
    assert sorted(by_step) == ["numbers", "probe", "split"]
    assert len(by_step["split"]) == 2  # one process per completion index

    mounts = {"/etc/dataworks/steps": str(rundir / "steps")}
    for step, processes in by_step.items():
        (container,) = kept[f"parity-1-{step}"]["spec"]["template"]["spec"]["containers"]
        for proc in processes:
            index = proc["env"].get("WORKER_INDEX", "0")
            expected_env = {}
            for var in container["env"]:
                if "value" in var:
                    expected_env[var["name"]] = var["value"]
                else:  # the only valueFrom the builders use: the completion index
                    assert var["valueFrom"]["fieldRef"]["fieldPath"].endswith("job-completion-index']")
                    expected_env[var["name"]] = index
            got = {k: proc["env"].get(k) for k in expected_env}
            assert got == expected_env, step
            words = [*container.get("command", []), *container.get("args", [])]
            if step == "probe":
                # python3 -c: argv[0] is "-c"; $(GREETING) expanded, $(UNSET) left as written
                assert proc["argv"] == ["-c", "hello world", "$(UNSET)"]
                assert words == [
                    "python3",
                    "-c",
                    "import sys; print(sys.argv[1:])",
                    "hello $(GREETING)",
                    "$(UNSET)",
                ]
            else:
                assert words[0] == "dataworks-worker"  # the worker image's entrypoint, run by this Python
                mapped = [
                    w.replace("/etc/dataworks/steps", mounts["/etc/dataworks/steps"]) for w in words[1:]
                ]
                assert proc["argv"][1:] == mapped, step
                assert Path(mapped[-1]).is_file()
        if step == "split":
            assert sorted(p["env"]["JOB_COMPLETION_INDEX"] for p in processes) == ["0", "1"]


def test_a_local_job_reads_like_the_api_servers() -> None:
    """job_view() of the object a LocalJob shows is what LocalJob itself reports, in every state."""
    import threading
    import time
    from datetime import UTC, datetime

    from dataworks.core.kit.jobs import job_view, pod_failure_message
    from dataworks.local.jobs import Launcher, LocalJob

    def local(codes: list[int], indexed: bool, tmp: Path) -> LocalJob:
        spec: dict[str, Any] = {"backoffLimit": 0, "template": {"spec": {"containers": [{"name": "step"}]}}}
        if indexed:
            spec = {**spec, "completionMode": "Indexed", "completions": len(codes), "backoffLimitPerIndex": 0}
        manifest = {
            "metadata": {"name": "p-s", "labels": {"dataworks.io/step": "s", "dataworks.io/attempt": "1"}},
            "spec": spec,
        }
        launcher = Launcher(
            argv=lambda i: ["sh", "-c", f"echo 'error: worker {i} says no' >&2; exit {codes[i]}"],
            env=lambda i, t: dict(os.environ),
            cwd=tmp,
            log=lambda i, t: tmp / f"w{i}.log",
        )
        return LocalJob(manifest, launcher=launcher, wake=threading.Event())

    import tempfile

    for codes, indexed in (([0], False), ([3], False), ([0, 2, 0], True)):
        with tempfile.TemporaryDirectory() as d:
            job = local(codes, indexed, Path(d))
            job.start(datetime.now(UTC))
            assert job_view(job.as_object()).state == "Active"
            while job.running:
                time.sleep(0.02)
            job.poll(datetime.now(UTC))
            seen = job_view(job.as_object())
            own = job.view()
            assert seen == replace_pod_fields(own), (codes, seen, own)
            if any(codes):
                assert pod_failure_message(job.pods()) == own.pod_message
                assert own.pod_message is not None
                assert "says no" in own.pod_message


def replace_pod_fields(view: Any) -> Any:
    """The pod-level fields come from the pods (observe), not from the Job object."""
    import dataclasses

    return dataclasses.replace(view, pod_message=None, pod_reason=None)
