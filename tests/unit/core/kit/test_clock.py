"""Pins the one timestamp spelling of every status (core/kit/clock.py): RFC 3339 in UTC to the
second, whatever the time zone of `now`, read back as an aware UTC datetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dataworks.core.kit import clock

CET = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(datetime(2026, 12, 1, 10, 26, 18, tzinfo=UTC), "2026-12-01T10:26:18Z", id="utc"),
        pytest.param(datetime(2026, 1, 1, 0, 30, tzinfo=CET), "2025-12-31T23:30:00Z", id="other-zone"),
        pytest.param(
            datetime(2026, 1, 1, 0, 0, 5, 999_999, tzinfo=UTC), "2026-01-01T00:00:05Z", id="no-micros"
        ),
    ],
)
def test_ts(now: datetime, expected: str) -> None:
    assert clock.ts(now) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2026-12-01T10:26:18Z", datetime(2026, 12, 1, 10, 26, 18, tzinfo=UTC), id="utc"),
        pytest.param("2024-02-29T23:59:59Z", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC), id="leap-day"),
    ],
)
def test_parse_ts(text: str, expected: datetime) -> None:
    parsed = clock.parse_ts(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)
    assert clock.ts(parsed) == text


@pytest.mark.parametrize(
    "text", [pytest.param("2026-12-01 10:26:18", id="no-t-no-z"), pytest.param("2026-12-01", id="date-only")]
)
def test_parse_ts_rejects_other_spellings(text: str) -> None:
    with pytest.raises(ValueError, match="does not match format"):
        clock.parse_ts(text)


@pytest.mark.parametrize(
    ("start", "end", "seconds"),
    [
        pytest.param("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", 0, id="same"),
        pytest.param("2026-01-01T23:59:30Z", "2026-01-02T00:01:00Z", 90, id="across-midnight"),
        pytest.param("2026-01-01T00:01:00Z", "2026-01-01T00:00:00Z", -60, id="negative"),
    ],
)
def test_seconds_between(start: str, end: str, seconds: float) -> None:
    assert clock.seconds_between(start, end) == seconds
