"""PipelineTemplates on this machine: `dataworks run --local` expands a template from the run's
file or from `--template-file`, with the operator's own code, and refuses bad parameters (naming
them) and a template it was not given before anything runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CTL = str(Path(sys.executable).parent / "dataworks")
EXAMPLE = str(ROOT / "examples" / "template.yaml")


def dataworks(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CTL, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def status(cwd: Path, name: str) -> dict[str, object]:
    out = dataworks(cwd, "status", "--local", name, "-o", "json")
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def run_name(out: subprocess.CompletedProcess[str]) -> str:
    return out.stdout.split("run ", 1)[1].split()[0]


def test_the_example_template_runs_from_its_file(tmp_path: Path) -> None:
    out = dataworks(tmp_path, "run", "--local", EXAMPLE)
    assert out.returncode == 0, out.stdout + out.stderr
    st = status(tmp_path, run_name(out))
    assert st["phase"] == "Completed"
    steps = {s["name"]: s for s in st["steps"]}  # type: ignore[attr-defined]
    assert list(steps) == ["fetch-orders", "fetch-customers", "report-enterprise", "check-report"]
    assert steps["report-enterprise"]["outputs"]["rows"] > 0


def test_a_template_run_by_name_with_parameters(tmp_path: Path) -> None:
    out = dataworks(
        tmp_path,
        "run",
        "--local",
        "--template",
        "orders-report",
        "--template-file",
        EXAMPLE,
        "-p",
        "segment=smb",
        "-p",
        "check=false",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    st = status(tmp_path, run_name(out))
    steps = {s["name"]: s for s in st["steps"]}  # type: ignore[attr-defined]
    assert steps["report-smb"]["phase"] == "Completed"  # relative paths read from the template's file
    assert steps["check-report"]["phase"] == "Skipped"
    assert steps["check-report"]["message"] == "when: false is false"


def test_bad_parameters_are_refused_naming_them(tmp_path: Path) -> None:
    out = dataworks(
        tmp_path,
        "run",
        "--local",
        "--template",
        "orders-report",
        "--template-file",
        EXAMPLE,
        "-p",
        "segment=gold",
        "-p",
        "min_total=lots",
        "-p",
        "colour=red",
    )
    assert out.returncode != 0
    assert out.stderr.splitlines() == [
        "error: pipeline orders-report: template orders-report:",
        "  - parameters.colour: is not a parameter of template orders-report; its parameters are segment, "
        "min_total, check, report_date",
        "  - parameters.segment: must be one of consumer, enterprise, smb, got 'gold'",
        "  - parameters.min_total: must be a number, got 'lots'",
    ]
    assert not (tmp_path / ".dataworks").exists()


def test_a_template_not_given_is_named(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(
        "apiVersion: dataworks.io/v1\nkind: Pipeline\nmetadata: {name: p}\n"
        "spec: {template: orders-report, parameters: {segment: smb}}\n"
    )
    out = dataworks(tmp_path, "run", "--local", str(pipeline))
    assert out.returncode != 0
    assert (
        "PipelineTemplate 'orders-report' is not found here; give its file with --template-file" in out.stderr
    )


def test_the_seeds_template_example_is_expanded_and_its_sketched_steps_are_named(tmp_path: Path) -> None:
    out = dataworks(tmp_path, "run", "--local", str(ROOT / "examples" / "seed" / "standard-etl.yaml"))
    assert out.returncode != 0
    assert "pipeline salesforce-daily-sync is invalid" in out.stderr
    assert "step 'validate-data': config.sql" in out.stderr
    assert "step 'load-warehouse': config.sql" in out.stderr
