"""Timestamps as a status spells them (pure layer): one format for every kind, `now` passed in."""

from __future__ import annotations

from datetime import UTC, datetime

from dataworks.api.meta import TIMESTAMP_FORMAT


def ts(now: datetime) -> str:
    """`now` as a status timestamp, e.g. 2026-12-01T10:26:18Z."""
    return now.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_ts(value: str) -> datetime:
    """A status timestamp back as an aware UTC datetime."""
    return datetime.strptime(value, TIMESTAMP_FORMAT).replace(tzinfo=UTC)


def seconds_between(start: str, end: str) -> float:
    return (parse_ts(end) - parse_ts(start)).total_seconds()
