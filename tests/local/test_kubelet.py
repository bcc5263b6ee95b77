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
