"""A consumer's per-second row: the errors among the messages it read, and the share of its
CPU periods the kernel throttled, read from a cgroup v2 `cpu.stat` (here a file the test
writes, as the kernel would)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dataworks.streams.brokering import report_of
from dataworks.streams.processing import Stats, Throttling, own_cpu_stat, resident_bytes


def cpu_stat(path: Path, periods: int, throttled: int) -> None:
    path.write_text(f"usage_usec 1000\nnr_periods {periods}\nnr_throttled {throttled}\nthrottled_usec 5\n")


def test_the_throttled_share_of_the_periods_since_the_last_reading(tmp_path: Path) -> None:
    stat = tmp_path / "cpu.stat"
    cpu_stat(stat, 100, 10)
    t = Throttling(str(stat))
    cpu_stat(stat, 110, 18)
    assert t.share() == 0.8
    assert t.share() is None  # no period passed: no figure
    cpu_stat(stat, 120, 18)
    assert t.share() == 0.0


def test_no_cpu_limit_or_no_cgroup_is_no_figure(tmp_path: Path) -> None:
    assert Throttling(str(tmp_path / "absent")).share() is None
    stat = tmp_path / "cpu.stat"
    stat.write_text("usage_usec 1000\nuser_usec 600\nsystem_usec 400\n")  # no limit: no nr_periods
    assert Throttling(str(stat)).share() is None


def test_a_row_counts_the_errors_and_the_operator_reads_them(tmp_path: Path) -> None:
    stat = tmp_path / "cpu.stat"
    cpu_stat(stat, 0, 0)
    rows: list[dict[str, object]] = []
    s = Stats(None, rows.append, cpu_stat=str(stat))
    s.add([1_000_000] * 90, 0.01, 2.0, errors=10)
    cpu_stat(stat, 10, 5)
    s.flush(force=True)
    [row] = rows
    assert (row["processed"], row["errors"], row["throttled"]) == (90, 10, 0.5)
    report = report_of("c1", row)
    assert report is not None
    assert (report.errors, report.throttled) == (10, 0.5)


@pytest.mark.parametrize(
    ("proc_cgroup", "v1", "expected"),
    [
        ("0::/\n", False, "cpu.stat"),  # a container's own view, cgroup v2
        ("0::/dataworks/c1-42\n", False, "dataworks/c1-42/cpu.stat"),  # a group of this machine's
        ("4:memory:/dataworks/c1-42\n1:cpu:/dataworks/c1-42\n0::/\n", True, "cpu/dataworks/c1-42/cpu.stat"),
        ("2:cpu,cpuacct:/kubepods/pod9\n0::/\n", True, "cpu/kubepods/pod9/cpu.stat"),
        ("1:cpu:/\n0::/\n", True, "cpu/cpu.stat"),  # v1, in the root group: no limit
        (None, False, "cpu.stat"),  # no /proc here
    ],
)
def test_the_cpu_stat_read_is_the_own_cgroups(
    tmp_path: Path, proc_cgroup: str | None, v1: bool, expected: str
) -> None:
    where = tmp_path / "cgroup"
    if proc_cgroup is not None:
        where.write_text(proc_cgroup)
    root = tmp_path / "sys"
    (root / "cpu").mkdir(parents=True) if v1 else root.mkdir()
    assert own_cpu_stat(str(where), str(root)) == f"{root}/{expected}"


def test_a_row_carries_the_consumers_own_cpu_and_memory(tmp_path: Path) -> None:
    rows: list[dict[str, object]] = []
    s = Stats(None, rows.append, cpu_stat=str(tmp_path / "absent"))
    end = time.process_time() + 0.2
    while time.process_time() < end:  # work, so that the row has CPU seconds to show
        pass
    s.flush(force=True)
    [row] = rows
    assert 0.15 < float(row["cpuUser"]) + float(row["cpuSystem"]) < 2.0  # type: ignore[arg-type]
    assert 10 * 2**20 < int(row["rss"]) < 4 * 2**30  # type: ignore[call-overload]
    report = report_of("c1", row)
    assert report is not None
    assert report.rss == row["rss"]
    assert report.cpu_user == row["cpuUser"]
    assert resident_bytes(str(tmp_path / "absent")) is None
