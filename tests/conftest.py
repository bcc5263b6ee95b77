"""Test-suite policy: tiers come from directories, and under CI nothing is skipped.

Each test directory is a tier (unit, cluster, services); its tests get that
marker. With CI set, a skipped test fails the run and every tier that has
tests must run at least one, so a missing service can never pass silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TIERS = {"unit": "unit", "cluster": "cluster", "services": "services", "local": "services"}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        rel = Path(str(item.fspath)).relative_to(root)
        tier = TIERS.get(rel.parts[0]) if len(rel.parts) > 1 else None
        if tier:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped under CI=true, which is not allowed: {reason}"
