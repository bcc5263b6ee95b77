"""A consumer's per-second row: the errors among the messages it read, and the share of its
CPU periods the kernel throttled, read from a cgroup v2 `cpu.stat` (here a file the test
writes, as the kernel would)."""

from __future__ import annotations

from pathlib import Path

from dataworks.streams.brokering import report_of
from dataworks.streams.processing import Stats, Throttling


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
