"""The generator's rate shape (pure layer): messages per schedule second, second by second.

`rate(s) = base(s) * diurnal(s) * trend(s) * burst(s)` where `base` is the configured rate or
the `steps` schedule, diurnal and trend are evaluated at the middle of the second, and bursts
are seeded coin flips, one per second, that last `durationSeconds`. The rate is constant within
a second: a second is the generator's block, the unit of its determinism.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np

from dataworks.api.generator import GeneratorConfig

BURST_STREAM = 1  # the seed sequence's second word, one per independent stream of draws
CHUNK = 4096  # burst coin flips are drawn this many seconds at a time


@dataclass
class Schedule:
    """The rate of every schedule second of one configuration."""

    config: GeneratorConfig
    _flips: dict[int, np.ndarray] = field(default_factory=dict)

    def rate(self, second: int) -> float:
        """Messages per second in [second, second + 1) of schedule time."""
        p = self.config.patterns
        r = self.base(second)
        mid = second + 0.5
        if p.diurnal is not None:
            r *= self.diurnal(mid)
        if p.trend is not None:
            r *= 1 + p.trend.amplitude * math.sin(
                2 * math.pi * mid / (p.trend.period_hours * 3600) + p.trend.phase
            )
        if self.bursting(second):
            assert p.bursts is not None
            r *= p.bursts.multiplier
        return max(r, 0.0)

    def base(self, second: int) -> float:
        steps = self.config.patterns.steps
        i = bisect.bisect_right([s.at for s in steps], second + 0.5) - 1
        return steps[i].rate if i >= 0 else self.config.rate

    def diurnal(self, t: float) -> float:
        """1 at night, `peakMultiplier` at the peak hour, a Gaussian bump on a 24 h circle."""
        d = self.config.patterns.diurnal
        assert d is not None
        local = (self.config.start + timedelta(seconds=t)).astimezone(ZoneInfo(d.timezone))
        hour = local.hour + local.minute / 60 + local.second / 3600
        gap = min(abs(hour - d.peak_hour), 24 - abs(hour - d.peak_hour))
        return 1 + (d.peak_multiplier - 1) * math.exp(-(gap**2) / (2 * d.width_hours**2))

    def bursting(self, second: int) -> bool:
        """Whether a burst that started in one of the last `durationSeconds` seconds is on."""
        b = self.config.patterns.bursts
        if b is None or b.probability == 0:
            return False
        span = max(1, math.ceil(b.duration_seconds))
        return any(self._started(s) for s in range(max(0, second - span + 1), second + 1))

    def _started(self, second: int) -> bool:
        chunk = second // CHUNK
        flips = self._flips.get(chunk)
        if flips is None:
            rng = np.random.Generator(
                np.random.PCG64(np.random.SeedSequence([self.config.seed, BURST_STREAM, chunk]))
            )
            flips = self._flips[chunk] = rng.random(CHUNK)
        assert self.config.patterns.bursts is not None
        return bool(flips[second % CHUNK] < self.config.patterns.bursts.probability)

    def silent(self, t: np.ndarray) -> np.ndarray:
        """Which of the schedule times `t` fall into an upstream outage."""
        out = np.zeros(t.shape, dtype=bool)
        for o in self.config.failures.outages:
            out |= (t >= o.at) & (t < o.at + o.seconds)
        return out
