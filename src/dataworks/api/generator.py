"""The stream generator's configuration (pure layer): `dataworks generate --config FILE`.

One pydantic model, documented field by field, read from YAML in camelCase. The rate at
schedule time t is `rate * diurnal(t) * trend(t) * bursts(t)`, with `steps` replacing the
base rate from their time on and an outage silencing a window (core/streams/rates.py).
Everything random is drawn from `seed`, so one configuration is one byte-identical stream.
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from dataworks.api.meta import Model

FAMILIES = ("price", "trade", "news", "book")


class Diurnal(Model):
    """Peaks in market hours: a bump around `peakHour` on the clock of `timezone`."""

    peak_hour: float = Field(10.5, ge=0, lt=24, description="Local hour of the peak (10.5 is 10:30).")
    peak_multiplier: float = Field(4.0, ge=1, description="Rate at the peak relative to the night.")
    width_hours: float = Field(2.5, gt=0, description="Standard deviation of the bump, in hours.")
    timezone: str = Field("America/New_York", description="IANA time zone of the market's clock.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}: use an IANA name such as America/New_York") from None
        return v


class Trend(Model):
    """A slow seasonal swing: `1 + amplitude * sin(2π t / periodHours + phase)`."""

    amplitude: float = Field(0.2, ge=0, lt=1, description="Relative swing, below 1.")
    period_hours: float = Field(168.0, gt=0, description="Length of one cycle (a week by default).")
    phase: float = Field(0.0, description="Phase in radians at the schedule's start.")


class Bursts(Model):
    """News-driven spikes, market-wide: every symbol's rate rises together, news the most."""

    probability: float = Field(0.01, ge=0, le=1, description="Chance that a burst starts in a given second.")
    duration_seconds: float = Field(5.0, gt=0, description="How long a burst lasts.")
    multiplier: float = Field(5.0, ge=1, description="Rate multiplier during a burst (news: its square).")


class Step(Model):
    """From `at` seconds into the schedule on, the base rate is `rate` (a benchmark's ramp)."""

    at: float = Field(ge=0, description="Schedule seconds since the start.")
    rate: float = Field(ge=0, description="Messages per schedule second from then on.")


class Patterns(Model):
    """Rate shapes; each present one multiplies the base rate."""

    diurnal: Diurnal | None = None
    trend: Trend | None = None
    bursts: Bursts | None = None
    steps: list[Step] = Field(default_factory=list, description="A schedule of base rates, in time order.")

    @field_validator("steps")
    @classmethod
    def _in_order(cls, v: list[Step]) -> list[Step]:
        if any(b.at <= a.at for a, b in pairwise(v)):
            raise ValueError("steps must be in increasing order of `at`")
        return v


class Symbols(Model):
    """The instruments: prices follow a random walk with one shared factor per sector."""

    count: int = Field(20, ge=1, le=10_000, description="Number of symbols (SYM000, SYM001, ...).")
    sectors: int = Field(4, ge=1, description="Symbols are dealt into this many sectors.")
    sector_correlation: float = Field(
        0.6, ge=0, le=1, description="Correlation of two same-sector symbols' returns (block scale)."
    )
    start_price: float = Field(100.0, gt=0)
    volatility: float = Field(0.002, ge=0, description="Standard deviation of a log-return over 1 s.")
    exchanges: list[str] = Field(default_factory=lambda: ["XNYS", "XNAS", "ARCX", "BATS"], min_length=1)


class Families(Model):
    """Message families: shares of the rate, and the periodic order-book snapshots."""

    price: float = Field(0.8, ge=0, description="Share of the rate that is price updates (small).")
    trade: float = Field(0.18, ge=0, description="Share that is trades (small).")
    news: float = Field(0.02, ge=0, description="Share that is news (about 0.5-4 KB, bursty).")
    book_every_seconds: float = Field(
        0.0, ge=0, description="Each symbol's order-book snapshot period (0: none; large messages)."
    )
    book_levels: int = Field(10, ge=1, le=100, description="Bid and ask levels in a snapshot.")

    @model_validator(mode="after")
    def _some_share(self) -> Families:
        if self.price + self.trade + self.news <= 0:
            raise ValueError("price, trade and news shares are all 0: give one of them a share")
        return self


class Late(Model):
    """A share of messages arrives late: delayed by an exponential draw, so out of order."""

    fraction: float = Field(0.0, ge=0, le=1, description="Share of messages that are late.")
    mean_delay_ms: float = Field(500.0, gt=0, description="Mean extra delay of a late message.")


SchemaChange = Literal["addField", "renameField", "widenType"]


class SchemaVersion(Model):
    """From `at` on, messages carry `version`, changed from the previous one by `change`:
    addField adds `currency`, renameField renames `volume` to `quantity`, widenType
    turns `price` into a decimal string."""

    version: int = Field(ge=2)
    at: float = Field(ge=0, description="Schedule seconds since the start.")
    change: SchemaChange


class Outage(Model):
    """Upstream silence: no message is produced in this window."""

    at: float = Field(ge=0, description="Schedule seconds since the start.")
    seconds: float = Field(gt=0)


class Failures(Model):
    """Faults the generator injects itself."""

    outages: list[Outage] = Field(default_factory=list)
    duplicates: float = Field(0.0, ge=0, le=1, description="Share of messages sent twice (same id).")
    malformed: float = Field(0.0, ge=0, le=1, description="Share of messages whose JSON is cut short.")


class GeneratorConfig(Model):
    """Everything that defines one generated stream."""

    seed: int = Field(0, ge=0, description="The one source of randomness.")
    count: int | None = Field(None, ge=1, description="Stop after this many messages.")
    duration_seconds: float | None = Field(None, gt=0, description="Or stop at this schedule time.")
    start: datetime = Field(
        datetime.fromisoformat("2026-12-01T09:00:00-05:00"),
        description="Schedule time zero (timestamps count from here, not from the wall clock).",
    )
    rate: float = Field(10_000.0, ge=0, description="Base rate: messages per schedule second.")
    time_multiplier: float = Field(
        1.0, gt=0, description="Schedule seconds per wall second under --realtime (1440: a day in a minute)."
    )
    symbols: Symbols = Field(default_factory=Symbols)
    patterns: Patterns = Field(default_factory=Patterns)
    families: Families = Field(default_factory=Families)
    late: Late = Field(default_factory=Late)
    schema_versions: list[SchemaVersion] = Field(default_factory=list, description="Later schema versions.")
    failures: Failures = Field(default_factory=Failures)

    @field_validator("start")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("start needs a UTC offset, for example 2026-12-01T09:00:00-05:00")
        return v

    @model_validator(mode="after")
    def _bounded(self) -> GeneratorConfig:
        if self.count is None and self.duration_seconds is None:
            raise ValueError("give count or durationSeconds: a stream without an end never finishes")
        versions = [v.version for v in self.schema_versions]
        if versions != sorted(set(versions)) or any(b.at < a.at for a, b in pairwise(self.schema_versions)):
            raise ValueError("schemaVersions must rise in version and in `at`")
        return self
