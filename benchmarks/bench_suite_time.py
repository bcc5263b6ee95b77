"""Benchmark: the test suite's run time, like for like, against the commit before the
restructure (issue 12: apart from the new tests, within 10% of before).

Test files moved in the restructure, so test ids do not match across the two commits. A
test is matched by its name (the function's name with its parameters), which the move kept.
The old commit (env BENCH_OLD, default cbe43d2, the last before the restructure) is checked
out in a temporary worktree with its own test control plane binary, and its suite runs with
this venv's Python and the old `src/` first on the path; then this checkout's suite runs.
Each run writes JUnit XML. The table gives both suites' totals and, for the tests that passed
in both and whose names appear exactly once in each, the sum of their times and the ratio;
benchmarks/results/suite_time.json is written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
OLD = os.environ.get("BENCH_OLD", "cbe43d2")
TARGET = 1.10


def times(xml: Path) -> dict[str, float]:
    """Test name -> seconds, for passed tests whose names occur once (a name in two files is
    ambiguous; a failure's or a skip's time says nothing about the suite's speed)."""
    cases = list(ET.parse(xml).iter("testcase"))
    once = {n for n, k in Counter(c.get("name", "") for c in cases).items() if k == 1}
    return {
        c.get("name", ""): float(c.get("time", "0"))
        for c in cases
        if c.get("name", "") in once and not any(x.tag in {"failure", "error", "skipped"} for x in c)
    }


def run_suite(root: Path, xml: Path, env: dict[str, str]) -> float:
    cmd = [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}"]
    t0 = time.monotonic()
    subprocess.run(cmd, cwd=root, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t0


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        old = tmp / "old"
        subprocess.run(["git", "worktree", "add", "-f", "--detach", str(old), OLD], cwd=REPO, check=True)
        try:
            subprocess.run(["make", "-s", "testcluster"], cwd=old, check=True)
            old_env = {**os.environ, "CI": "true", "PYTHONPATH": f"{old / 'src'}:{old}"}
            old_wall = run_suite(old, tmp / "old.xml", old_env)
            new_wall = run_suite(REPO, tmp / "new.xml", {**os.environ, "CI": "true"})
            before, after = times(tmp / "old.xml"), times(tmp / "new.xml")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=REPO, check=False)
    both = sorted(set(before) & set(after))
    old_sum, new_sum = sum(before[n] for n in both), sum(after[n] for n in both)
    result = {
        "old_commit": OLD,
        "old_tests": len(before),
        "new_tests": len(after),
        "matched_tests": len(both),
        "old_wall_s": old_wall,
        "new_wall_s": new_wall,
        "matched_old_s": old_sum,
        "matched_new_s": new_sum,
        "matched_ratio": new_sum / old_sum if old_sum else float("nan"),
        "target_ratio": TARGET,
        "slowest_growth": sorted(((after[n] - before[n], n) for n in both), reverse=True)[:10],
    }
    table = Table(title=f"The test suite, {OLD} vs this checkout (one run each)")
    for col in ("measure", OLD, "now", "ratio"):
        table.add_column(col)
    table.add_row(
        "whole suite, wall", f"{old_wall:.0f} s", f"{new_wall:.0f} s", f"{new_wall / old_wall:.2f}x"
    )
    table.add_row(
        f"the {len(both)} tests in both (JUnit times)",
        f"{old_sum:.0f} s",
        f"{new_sum:.0f} s",
        f"{result['matched_ratio']:.2f}x (target <= {TARGET}x)",
    )
    Console().print(table)
    out = REPO / "benchmarks" / "results" / "suite_time.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
