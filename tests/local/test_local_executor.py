"""`pipeline-ctl run --local`: the quickstart, DAG semantics shared with the operator's planner,
Ctrl-C and `retry --local` (real processes, real files)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.builders.badinput import INVALID_SPEC, REJECTED, UNKNOWN_FIELDS
from tests.builders.pipelines import Sim, make_pipeline

ROOT = Path(__file__).resolve().parents[2]
CTL = [str(Path(sys.executable).parent / "pipeline-ctl")]  # the installed command, as users run it


def ctl(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: PLW1510 (the exit code is part of the result)
        [*CTL, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "EVENTS": str(cwd / "events")},
    )


def status(cwd: Path, run: str | None = None) -> dict[str, Any]:
    out = ctl("status", "--local", *([run] if run else []), "-o", "json", cwd=cwd)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def write(path: Path, steps: list[dict[str, Any]], **spec: Any) -> Path:
    doc = {
        "apiVersion": "dataworks.io/v1",
        "kind": "Pipeline",
        "metadata": {"name": path.stem},
        "spec": {"steps": steps, **spec},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def test_quickstart_runs_every_step_type(tmp_path: Path) -> None:
    out = ctl("run", "--local", str(ROOT / "examples" / "quickstart.yaml"), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    st = status(tmp_path)
    assert st["phase"] == "Completed"
    assert {s["name"]: s["phase"] for s in st["steps"]} == dict.fromkeys(
        [
            "fetch-orders",
            "fetch-customers",
            "clean-orders",
            "check-orders",
            "revenue-by-country",
            "segment-stats",
            "publish",
            "export-segments",
        ],
        "Completed",
    )
    run = next((tmp_path / ".dataworks" / "runs").iterdir())
    lines = (run / "exports" / "segment_stats.csv").read_text().splitlines()
    assert lines[0] == "segment,worker,orders,revenue,average_order"
    assert len(lines) == 1 + 3 * 2  # three segments from each of two workers
    import duckdb

    rows = (
        duckdb.connect(str(run / "warehouse.duckdb"))
        .execute("SELECT sum(orders) FROM revenue_by_country")
        .fetchone()
    )
    assert rows == (3000 - 3000 // 97,)  # every order but the refunds


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def step(name: str, deps: list[str] | None = None, script: str = "true", **kw: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "container",
        "image": "busybox",
        "dependsOn": deps or [],
        "command": sh(
            f"echo start {name} $(date +%s.%N) >> $EVENTS; ({script}); rc=$?; "
            f"echo end {name} $(date +%s.%N) >> $EVENTS; exit $rc"
        ),
        **kw,
    }


CASES: dict[str, tuple[list[dict[str, Any]], set[str]]] = {
    "diamond": ([step("a"), step("b", ["a"]), step("c", ["a"]), step("d", ["b", "c"])], set()),
    "fail": ([step("a", script="exit 3", retry={"limit": 0}), step("b", ["a"]), step("c")], {"a"}),
    "skip-dependents": (
        [
            step("a", script="exit 3", retry={"limit": 0}, onFailure="skip-dependents"),
            step("b", ["a"]),
            step("c"),
        ],
        {"a"},
    ),
    "continue": (
        [step("a", script="exit 3", retry={"limit": 0}, onFailure="continue"), step("b", ["a"])],
        {"a"},
    ),
    # the first try fails, the Job's retry succeeds: the planner sees one succeeded Job
    "retry-succeeds": (
        [
            step("flaky", script="test -f tried || { touch tried; exit 1; }", retry={"limit": 2}),
            step("b", ["flaky"]),
        ],
        set(),
    ),
    "fan-out-worker-fails": (
        [
            step("a"),
            {
                "name": "fan",
                "type": "fan-out",
                "parallelism": 3,
                "dependsOn": ["a"],
                "retry": {"limit": 0},
                "config": {"script": "sh -c 'test $WORKER_INDEX != 1'"},
            },
            step("after", ["fan"]),
        ],
        {"fan"},
    ),
    "concurrency-limit": ([step(f"s{i}", script="sleep 0.3") for i in range(5)], set()),
}
LIMITS = {"concurrency-limit": 2}


@pytest.mark.parametrize("case", sorted(CASES))
def test_dag_cases_agree_with_the_operator_planner(case: str, tmp_path: Path) -> None:
    steps, failing = CASES[case]
    limit = {"maxParallel": LIMITS[case]} if case in LIMITS else {}
    out = ctl("run", "--local", str(write(tmp_path / f"{case}.yaml", steps, **limit)), cwd=tmp_path)
    st = status(tmp_path)
    builder = make_pipeline(case).set(**limit)
    for s in steps:
        extra = {k: v for k, v in s.items() if k in {"onFailure", "retry", "parallelism", "config"}}
        builder.step(s["name"], s["type"], depends_on=s.get("dependsOn"), **extra)
    sim = Sim(builder, fail={name: {1} for name in failing})
    expected = sim.run()
    assert st["phase"] == expected.phase
    assert {s["name"]: s["phase"] for s in st["steps"]} == {s.name: s.phase for s in expected.step_statuses}
    assert out.returncode == (0 if expected.phase == "Completed" else 1)
    events = [line.split() for line in (tmp_path / "events").read_text().splitlines()]
    at = {(kind, name): float(t) for kind, name, t in events}
    for s in steps:  # nothing starts before everything it depends on has ended
        for d in s.get("dependsOn", []):
            if ("start", s["name"]) in at and ("end", d) in at:
                assert at[("start", s["name"])] >= at[("end", d)]
    running = peak = 0
    for _, kind in sorted((t, kind) for (kind, _), t in at.items()):
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    sim_peak = (
        max(  # the planner's own concurrency, round by round
            sum(1 for n in names if n) for names in sim.running_by_round
        )
        if sim.running_by_round
        else 0
    )
    assert peak <= (LIMITS.get(case) or len(steps))
    if case in LIMITS:
        assert peak == sim_peak == LIMITS[case]


def test_retry_succeeds_on_a_later_attempt_and_fan_out_worker_failure(tmp_path: Path) -> None:
    flaky = step("flaky", script="test -f tried || { touch tried; exit 1; }", retry={"limit": 2})
    fan = {
        "name": "fan",
        "type": "fan-out",
        "parallelism": 3,
        "retry": {"limit": 0},
        "config": {"script": "sh -c 'test $WORKER_INDEX != 1'"},
    }
    out = ctl("run", "--local", str(write(tmp_path / "r.yaml", [flaky, fan])), cwd=tmp_path)
    assert out.returncode == 1
    st = status(tmp_path)
    phases = {s["name"]: (s["phase"], s["message"]) for s in st["steps"]}
    assert phases["flaky"] == ("Completed", None)
    assert phases["fan"] == (
        "Failed",
        "1 of 3 workers failed (FailedIndexes): step 'fan' worker 1: script sh -c 'test $WORKER_INDEX != 1' "
        "exited with 1",
    )
    log = next((tmp_path / ".dataworks" / "runs").iterdir()) / "logs" / "flaky" / "attempt-1" / "worker-0.log"
    assert log.exists()


def test_ctrl_c_cancels_stops_children_and_commits_nothing(tmp_path: Path) -> None:
    (tmp_path / "work.sh").write_text("echo $$ > pid-$WORKER_INDEX\necho 'PROGRESS: 10.0%'\nsleep 60\n")
    fan = {"name": "fan", "type": "fan-out", "parallelism": 3, "config": {"script": "sh work.sh"}}
    proc = subprocess.Popen(
        [*CTL, "run", "--local", str(write(tmp_path / "x.yaml", [fan]))],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("pid-*"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = [int(p.read_text()) for p in tmp_path.glob("pid-*")]
    assert len(pids) == 3
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    st = status(tmp_path)
    assert st["phase"] == "Cancelled"
    run = next((tmp_path / ".dataworks" / "runs").iterdir())
    assert not list(run.glob("store/**/_manifest/*.json"))


def test_retry_local_reruns_only_the_failed_steps(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("id\n1\n2\n")
    steps = [
        {"name": "fetch", "type": "fetch", "config": {"path": "data.csv", "table": "ids"}},
        {
            "name": "gate",
            "type": "container",
            "image": "busybox",
            "dependsOn": ["fetch"],
            "command": sh(f"test -f {tmp_path}/open"),
            "retry": {"limit": 0},
        },
        {
            "name": "sum",
            "type": "transform",
            "dependsOn": ["gate", "fetch"],
            "config": {"sql": "SELECT sum(id) AS total FROM ids"},
        },
    ]
    first = ctl("run", "--local", "--name", "r1", str(write(tmp_path / "g.yaml", steps)), cwd=tmp_path)
    assert first.returncode == 1
    run = tmp_path / ".dataworks" / "runs" / "r1"
    manifest = next(run.glob("store/**/fetch/_manifest/00000.json"))
    before = (manifest.read_bytes(), manifest.stat().st_mtime_ns)
    (tmp_path / "open").touch()
    again = ctl("retry", "--local", "r1", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "retrying gate, sum" in again.stdout
    st = status(tmp_path, "r1")
    assert {s["name"]: (s["phase"], s["attempt"]) for s in st["steps"]} == {
        "fetch": ("Completed", 1),
        "gate": ("Completed", 2),
        "sum": ("Completed", 1),
    }
    assert (manifest.read_bytes(), manifest.stat().st_mtime_ns) == before
    assert not (run / "logs" / "fetch" / "attempt-2").exists()


def test_bad_input_gives_the_operator_messages(tmp_path: Path) -> None:
    bad = write(
        tmp_path / "bad.yaml",
        [
            {"name": "load", "type": "load", "config": {"destination": "bigquery"}},
            {"name": "x", "type": "transform", "dependsOn": ["nope"], "config": {"sql": "SELECT 1"}},
        ],
    )
    out = ctl("run", "--local", str(bad), cwd=tmp_path)
    assert out.returncode == 2
    assert "'bigquery' is not supported; supported destinations: postgres, file, duckdb, sqlite" in out.stderr
    assert "nope" in out.stderr
    assert not (tmp_path / ".dataworks").exists()
    missing = ctl(
        "run", "--local", str(ROOT / "examples" / "quickstart.yaml"), "--param", "oops", cwd=tmp_path
    )
    assert missing.returncode == 2
    assert "--param 'oops' must look like name=value" in missing.stderr


@pytest.mark.parametrize("case", [c[0] for c in INVALID_SPEC])
def test_the_operators_adversarial_specs_give_the_same_messages_locally(case: str, tmp_path: Path) -> None:
    _, steps, message = next(c for c in INVALID_SPEC if c[0] == case)
    out = ctl("run", "--local", str(write(tmp_path / f"{case}.yaml", steps)), cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr
    assert not (tmp_path / ".dataworks").exists()


@pytest.mark.parametrize("case", [c[0] for c in REJECTED + UNKNOWN_FIELDS])
def test_specs_the_api_server_rejects_are_rejected_locally_too(case: str, tmp_path: Path) -> None:
    _, steps, _ = next(c for c in REJECTED + UNKNOWN_FIELDS if c[0] == case)
    out = ctl("run", "--local", str(write(tmp_path / f"{case}.yaml", steps)), cwd=tmp_path)
    assert out.returncode == 2, out.stdout
    assert f"pipeline {case} is invalid" in out.stderr
    assert not (tmp_path / ".dataworks").exists()


def test_a_misspelt_field_is_an_error_before_anything_runs(tmp_path: Path) -> None:
    # The review's reproduction: `dependOn` was dropped, so b ran before a.
    steps = [step("a", script="sleep 0.3"), {**step("b"), "dependOn": ["a"]}]
    del steps[1]["dependsOn"]
    path = write(tmp_path / "misspelt.yaml", steps)
    message = "step 'b': spec.steps[1].dependOn: unknown field 'dependOn'; did you mean 'dependsOn'?"
    for args in (["run", "--local", str(path)], ["run", "--dry-run", str(path)]):
        out = ctl(*args, cwd=tmp_path)
        assert (out.returncode, out.stdout) == (2, ""), args
        assert out.stderr == f"error: {path}: pipeline misspelt is invalid:\n  - {message}\n", args
    assert not (tmp_path / ".dataworks").exists()
    assert not (tmp_path / "events").exists()  # no step started


def test_a_join_of_249_steps_completes(tmp_path: Path) -> None:
    # dependsOn had maxItems 100: a step could not wait for more than 100 others.
    true = {"type": "container", "image": "busybox", "command": ["true"]}
    branches = [{"name": f"s{n:03d}", **true} for n in range(249)]
    join = {"name": "join", **true, "dependsOn": [b["name"] for b in branches]}
    out = ctl("run", "--local", str(write(tmp_path / "wide.yaml", [*branches, join])), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    st = status(tmp_path)
    assert (st["phase"], st["progress"]) == ("Completed", "250/250")


def test_a_killed_step_exits_137_and_no_retry_exit_codes_stops_it_at_once(tmp_path: Path) -> None:
    # As in a container: killed by SIGKILL (an OOM kill) is exit code 137, so the rule
    # that replaces noRetryReasons (`noRetryExitCodes: [137]`) fails the step without a retry.
    killed = step("big", script="kill -9 $$", retry={"limit": 2, "noRetryExitCodes": [137]})
    out = ctl("run", "--local", str(write(tmp_path / "oom.yaml", [killed])), cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    st = status(tmp_path)
    assert st["message"].startswith("step big failed: PodFailurePolicy (container step exited with code 137")
    assert (tmp_path / "events").read_text().count("start big") == 1  # one try, no retry
