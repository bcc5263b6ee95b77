"""A SequentialJob runs on this machine with `dataworks run --local`: the seed's example, through the
same controller and Job manifests as on a cluster, its shared volume a folder of the run, its Secret
key from the environment; a failed step stops the run, and `retry --local` re-runs from it while the
steps before it keep their results; status and logs read the run; bad input names its field."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.builders import sequentialjobs as matrix

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sequentialjob" / "data-processing-pipeline.yaml"
CTL = str(Path(sys.executable).parent / "dataworks")
SEED_EVENTS = ["JobStarted", "JobCompleted"] * 3 + ["SequenceCompleted"]

# The seed's three tools, as this machine's programs (a local run ignores images): each reads
# --source and writes --target, paths inside the pod that the local kubelet maps into the run.
TOOLS = {
    "extract": """
for a in "$@"; do case $a in --target=*) dst=${a#--target=};; esac; done
mkdir -p "$dst" && printf 'a,1\\nb,2\\n' > "$dst/rows.csv" && echo "extracted 2 rows"
""",
    "transform": """
for a in "$@"; do case $a in --source=*) src=${a#--source=};; --target=*) dst=${a#--target=};; esac; done
test -e "$TOOLS_BROKEN" && { echo "error: transform is broken"; exit 3; }
mkdir -p "$dst" && tr a-z A-Z < "$src/rows.csv" > "$dst/rows.csv" && echo "transformed"
""",
    "load": """
for a in "$@"; do
  case $a in --source=*) src=${a#--source=};; --db-connection=*) db=${a#--db-connection=};; esac
done
cat "$src/rows.csv" >> "$db" && echo "loaded"
""",
}


def tools(tmp_path: Path) -> dict[str, str]:
    """The tools on PATH, and DB_CONN (the Secret's key, from this machine's environment)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in TOOLS.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "DB_CONN": str(tmp_path / "warehouse.csv"),
        "TOOLS_BROKEN": str(tmp_path / "broken"),
    }


def ctl(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: PLW1510 (callers check, with the output in the message)
        [CTL, *args, "--workdir", str(tmp_path / "wd")],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def reasons(stdout: str) -> list[str]:
    """The Event reasons a local run printed, in order ("   0.01s JobStarted: Started job 0 ...")."""
    return re.findall(r"^\s*[0-9.]+s (\w+): ", stdout, flags=re.M)


def test_the_seed_example_runs_locally(tmp_path: Path) -> None:
    env = tools(tmp_path)
    out = ctl(tmp_path, env, "run", "--local", str(EXAMPLE), "--name", "seed")
    assert out.returncode == 0, out.stdout + out.stderr
    assert reasons(out.stdout) == SEED_EVENTS
    assert "seed:  Completed  3 of 3 jobs completed" in out.stdout
    run = tmp_path / "wd" / "runs" / "seed"
    # The shared volume is a folder of the run: what extract wrote, transform read.
    claim = run / "claims" / "pipeline-data"
    assert (claim / "raw" / "rows.csv").read_text() == "a,1\nb,2\n"
    assert (claim / "transformed" / "rows.csv").read_text() == "A,1\nB,2\n"
    assert (tmp_path / "warehouse.csv").read_text() == "A,1\nB,2\n"
    status = json.loads((run / "status.json").read_text())
    assert status["phase"] == "Completed"
    assert status["progress"] == {"currentIndex": 2, "completedIndices": [0, 1, 2], "step": "3/3"}
    # The Jobs it ran are the ones `run --dry-run` prints for the cluster, but for their names.
    dry = ctl(tmp_path, env, "run", "--dry-run", str(EXAMPLE), "--name", "seed", "-n", "local")
    printed = {j["metadata"]["name"]: j for j in yaml.safe_load_all(dry.stdout)}
    for name, job in printed.items():
        ran = json.loads((run / "manifests" / f"{name}.json").read_text())
        assert ran["spec"] == job["spec"]
        assert ran["metadata"]["labels"] == job["metadata"]["labels"]
    assert sorted(printed) == ["seed-extract", "seed-load", "seed-transform"]
    detail = ctl(tmp_path, env, "status", "--local", "seed")
    assert "SequentialJob: seed" in detail.stdout
    assert "Step: 3/3" in detail.stdout
    listing = ctl(tmp_path, env, "status", "--local")
    assert "sequentialjob.dataworks.io/seed" in listing.stdout
    logs = ctl(tmp_path, env, "logs", "--local", "seed", "--step", "transform")
    assert logs.stdout.strip() == "transformed"


def test_a_failed_step_stops_the_run_and_retry_reruns_from_it(tmp_path: Path) -> None:
    env = tools(tmp_path)
    (tmp_path / "broken").touch()
    out = ctl(tmp_path, env, "run", "--local", str(EXAMPLE), "--name", "flaky")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "flaky:  Failed  job 1 (transform) failed:" in out.stdout
    assert "transform is broken" in out.stdout
    run = tmp_path / "wd" / "runs" / "flaky"
    status = json.loads((run / "status.json").read_text())
    assert [(s["name"], s["phase"]) for s in status["steps"]] == [
        ("extract", "Completed"),
        ("transform", "Failed"),
        ("load", "Skipped"),
    ]
    (tmp_path / "broken").unlink()  # fixed
    again = ctl(tmp_path, env, "retry", "--local", "flaky")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "re-running run flaky from step transform" in again.stdout
    assert reasons(again.stdout) == [
        "Rerun",
        "JobStarted",
        "JobCompleted",
        "JobStarted",
        "JobCompleted",
        "SequenceCompleted",
    ]
    status = json.loads((run / "status.json").read_text())
    assert [(s["name"], s["phase"], s["attempt"]) for s in status["steps"]] == [
        ("extract", "Completed", 1),
        ("transform", "Completed", 2),
        ("load", "Completed", 1),
    ]
    assert sorted(p.name for p in (run / "logs" / "extract").iterdir()) == ["attempt-1"]  # not run again
    assert sorted(p.name for p in (run / "logs" / "transform").iterdir()) == ["attempt-1", "attempt-2"]
    assert (tmp_path / "warehouse.csv").read_text() == "A,1\nB,2\n"


def test_bad_input_names_the_field_before_anything_runs(tmp_path: Path) -> None:
    for name, spec, message in matrix.INVALID:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**matrix.make_sqj(name).manifest(), "spec": spec}))
        out = ctl(tmp_path, {}, "run", "--local", str(path))
        assert out.returncode == 2, (name, out.stdout)
        assert f"sequentialjob {name} is invalid" in out.stderr
        assert message in out.stderr, (name, out.stderr)
    assert not (tmp_path / "wd" / "runs").exists()
