"""A StreamingJob's rates: arrivals from the stream's entries-added counter over a window, and
the group's figures from its consumers' reports."""

from __future__ import annotations

import pytest

from dataworks.core.streamingjobs.measuring import Report, Sample, arrival_rate, group, remember


def samples(*points: tuple[float, int]) -> tuple[Sample, ...]:
    kept: tuple[Sample, ...] = ()
    for at, added in points:
        kept = remember(kept, Sample(at, added))
    return kept


@pytest.mark.parametrize(
    ("points", "rate"),
    [
        pytest.param([(0, 0)], None, id="one-reading-is-no-rate"),
        pytest.param([(0, 0), (0.2, 100)], None, id="too-close-together"),
        pytest.param([(0, 0), (1, 1000), (2, 2000)], 1000.0, id="steady"),
        pytest.param([(t, 100 * t) for t in range(20)], 100.0, id="window-slides"),
        pytest.param([(0, 0), (1, 5000), (2, 10)], None, id="a-counter-that-went-back-starts-over"),
        pytest.param([(0, 0), (1, 0), (2, 0)], 0.0, id="nothing-arrives"),
    ],
)
def test_arrival_rate(points: list[tuple[float, int]], rate: float | None) -> None:
    assert arrival_rate(samples(*points)) == rate


def test_the_window_keeps_one_reading_older_than_it() -> None:
    kept = samples(*[(t, t) for t in range(20)])
    assert kept[0].at == 14
    assert kept[-1].at == 19


def test_group_figures_leave_out_stale_reports() -> None:
    reports = [
        Report("a", at=100.0, processed=1000, busy=0.5, p50_ms=2.0, p99_ms=8.0),
        Report("b", at=99.5, processed=500, busy=0.25, p50_ms=4.0, p99_ms=20.0, seconds=0.5),
        Report("gone", at=90.0, processed=9999, busy=1.0, p50_ms=99.0, p99_ms=999.0),
    ]
    g = group(reports, now=100.5)
    assert g.reporting == 2
    assert g.processing_rate == 2000.0  # 1000/1 s + 500/0.5 s
    assert g.consumer_rate == 2000.0  # 1000/0.5 and 500/0.25, while busy
    assert (g.p50_ms, g.p99_ms) == (3.0, 20.0)


def test_an_idle_consumer_does_not_measure_a_rate() -> None:
    g = group([Report("a", at=10.0, processed=0, busy=0.0)], now=10.0)
    assert (g.processing_rate, g.consumer_rate) == (0.0, None)
