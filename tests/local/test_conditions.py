"""Conditional steps on this machine (`dataworks run --local`): the same pipeline as the cluster
test (tests/builders/pipelines.conditional_manifest) ends the same way. The check step's shell
writes its outputs to /dev/termination-log, which the local kubelet gives each pod as a file; the
condition reads them from the status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.builders.pipelines import CONDITIONAL_PHASES, conditional_manifest

CTL = str(Path(sys.executable).parent / "dataworks")


def test_a_conditional_pipeline_runs_locally_as_on_the_cluster(tmp_path: Path) -> None:
    path = tmp_path / "conditional.yaml"
    path.write_text(yaml.safe_dump(conditional_manifest()))
    out = subprocess.run(
        [CTL, "run", "--local", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    status = subprocess.run(
        [CTL, "status", "--local", "-o", "json"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    st = json.loads(status.stdout)
    assert st["phase"] == "Completed", st
    by = {s["name"]: s for s in st["steps"]}
    assert {n: s["phase"] for n, s in by.items()} == CONDITIONAL_PHASES
    assert by["check"]["outputs"] == {"result": "warned", "rows": 3}
    assert by["publish"]["reason"] == "ConditionFalse"
    assert by["publish"]["message"] == (
        'when: steps.check.outputs.result == "passed" is false (steps.check.outputs.result = "warned")'
    )
    assert by["report"]["message"] == (
        'when: steps["check"].outputs.result == "passed" is false (steps["check"].outputs.result = "warned")'
    )


def test_a_condition_that_does_not_compile_is_refused_before_any_step_runs(tmp_path: Path) -> None:
    obj = conditional_manifest()
    obj["spec"]["steps"][1]["when"] = "steps.check.outputs.result =="
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(obj))
    out = subprocess.run(
        [CTL, "run", "--local", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode != 0
    assert "step 'publish': when: line 1, column 30: Syntax error" in out.stdout + out.stderr
    assert not (tmp_path / ".dataworks" / "runs").exists() or not any(
        (tmp_path / ".dataworks" / "runs").rglob("logs/*")
    )
