"""Container limits as cgroup files, on a fake /sys/fs/cgroup of each version (the real
hierarchy is written by tests/local/test_cgroups.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataworks.local import cgroups
from dataworks.local.cgroups import Hierarchy, Limiter, Limits


def v2(tmp_path: Path) -> Path:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    return tmp_path


def v1(tmp_path: Path) -> Path:
    for controller in ("cpu", "memory"):
        (tmp_path / controller).mkdir()
    return tmp_path


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ({"limits": {"cpu": "500m", "memory": "256Mi"}}, Limits(0.5, 256 * 2**20)),
        ({"limits": {"cpu": 2}}, Limits(2.0, None)),
        ({"limits": {"memory": "1G"}}, Limits(None, 10**9)),
        ({"requests": {"cpu": "1"}}, Limits()),  # requests are for scheduling, never enforced
        (None, Limits()),
    ],
)
def test_a_containers_limits(resources: dict[str, object] | None, expected: Limits) -> None:
    assert Limits.of({"name": "c", "resources": resources}) == expected


@pytest.mark.parametrize(
    ("make", "limits", "files"),
    [
        (
            v2,
            Limits(0.5, 2**28),
            {"cpu.max": "50000 100000", "memory.max": str(2**28), "memory.swap.max": "0"},
        ),
        (v2, Limits(0.0001, None), {"cpu.max": "1000 100000"}),  # the kernel's least quota
        (v1, Limits(1.5, None), {"cpu/cpu.cfs_quota_us": "150000", "cpu/cpu.cfs_period_us": "100000"}),
        (v1, Limits(None, 2**26), {"memory/memory.limit_in_bytes": str(2**26)}),
    ],
)
def test_limits_become_the_groups_files(
    tmp_path: Path, make: object, limits: Limits, files: dict[str, str]
) -> None:
    root = make(tmp_path)  # type: ignore[operator]
    hierarchy = Hierarchy.detect(root)
    assert hierarchy is not None
    group = hierarchy.group("c1-42", limits)
    for name, content in files.items():
        where = name.split("/")
        base = root / where[0] / cgroups.PARENT if len(where) == 2 else root / cgroups.PARENT
        assert (base / "c1-42" / where[-1]).read_text() == content
    if hierarchy.version == 2:
        assert (root / "cgroup.subtree_control").read_text() == "+cpu +memory"  # handed down
    group.add(4242)
    procs = "cgroup.procs" if hierarchy.version == 2 else "tasks"
    assert (group.cpu / procs).read_text() == "4242"


@pytest.mark.parametrize(
    ("make", "events", "kills"),
    [
        (v2, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n", 1),
        (v1, "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", 2),
        (v2, None, 0),
    ],
)
def test_oom_kills_are_read_from_the_group(
    tmp_path: Path, make: object, events: str | None, kills: int
) -> None:
    hierarchy = Hierarchy.detect(make(tmp_path))  # type: ignore[operator]
    assert hierarchy is not None
    group = hierarchy.group("c1-7", Limits(None, 2**26))
    if events is not None:
        name = "memory.events" if hierarchy.version == 2 else "memory.oom_control"
        (group.memory / name).write_text(events)
    assert group.oom_kills() == kills


def test_without_a_writable_hierarchy_limits_are_not_enforced_and_it_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert Hierarchy.detect(tmp_path) is None  # neither v2's root file nor v1's trees
    (tmp_path / "cgroup.controllers").write_text("pids\n")
    assert Hierarchy.detect(tmp_path) is None  # v2 without the cpu and memory controllers
    limiter = Limiter(None)
    assert limiter.start("c1-1", Limits(0.5, None), 1) is None
    assert limiter.start("c1-2", Limits(0.5, None), 2) is None
    assert limiter.start("c1-3", Limits(), 3) is None
    assert [r.message for r in caplog.records].count(
        "resources.limits are not enforced on this machine: no writable cgroup hierarchy "
        "(run as root, or delegate a cgroup v2 subtree)"
    ) == 1
