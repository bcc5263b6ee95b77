"""pipelineDependencies on this machine: a dependency is the newest local run of the pipeline it
names, in the same directory. Nothing else runs while a local run would wait, so a run whose
dependencies do not hold is refused before it starts, saying which and why."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

CTL = str(Path(sys.executable).parent / "dataworks")


def pipeline(path: Path, name: str, deps: list[dict[str, object]] | None = None) -> Path:
    step = {"name": "s", "type": "container", "image": "busybox", "command": ["echo", name]}
    spec: dict[str, object] = {"steps": [step]}
    if deps:
        spec["pipelineDependencies"] = deps
    path.write_text(
        yaml.safe_dump(
            {"apiVersion": "dataworks.io/v1", "kind": "Pipeline", "metadata": {"name": name}, "spec": spec}
        )
    )
    return path


def run(cwd: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CTL, "run", "--local", str(path)], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_run_waits_for_nothing_it_refuses_then_runs_after_its_dependency(tmp_path: Path) -> None:
    report = pipeline(tmp_path / "report.yaml", "report", [{"name": "orders", "max_age_hours": 1}])
    out = run(tmp_path, report)
    assert out.returncode != 0
    assert "pipeline report waits for pipelineDependencies: pipeline orders does not exist" in out.stderr
    assert not (tmp_path / ".dataworks" / "runs").exists() or not list(
        (tmp_path / ".dataworks" / "runs").glob("report-*")
    )
    assert run(tmp_path, pipeline(tmp_path / "orders.yaml", "orders")).returncode == 0
    out = run(tmp_path, report)
    assert out.returncode == 0, out.stdout + out.stderr
    status = subprocess.run(
        [CTL, "status", "--local", "-o", "json"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert json.loads(status.stdout)["phase"] == "Completed"


def test_a_dependency_too_old_is_named(tmp_path: Path) -> None:
    assert run(tmp_path, pipeline(tmp_path / "orders.yaml", "orders")).returncode == 0
    time.sleep(2.2)
    out = run(
        tmp_path, pipeline(tmp_path / "report.yaml", "report", [{"name": "orders", "maxAgeHours": 0.0005}])
    )
    assert out.returncode != 0
    assert "more than maxAgeHours 0.0005" in out.stderr, out.stderr
