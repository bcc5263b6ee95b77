"""When to retry an API request, and how long to wait first (pure policy, no I/O).

A request that failed in transit (the connection broke, timed out or was
reset) or that the API server answered with a transient status (429 Too Many
Requests, 500, 502, 503, 504) is worth another try; any other answer is the
API server's verdict and is final. Waits grow exponentially up to a cap, and
each is shortened by a random fraction (jitter) so that many clients cut off
at once do not come back in lockstep. The randomness is passed in, as `now`
is elsewhere in core.

The default allows 12 tries in all, as client-go's event broadcaster does
(maxTriesPerEvent), over about half a minute at most.
"""

from __future__ import annotations

from dataclasses import dataclass

# 501 Not Implemented and 505 are not transient; the rest of these are what API
# servers, their load balancers and API Priority and Fairness answer under stress.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def transient(status_code: int) -> bool:
    """Whether an HTTP answer with this status is worth another try."""
    return status_code in TRANSIENT_STATUSES


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter."""

    tries: int = 12  # attempts in all, the first one included
    first: float = 0.1  # seconds before the first retry
    factor: float = 2.0
    cap: float = 5.0  # no single wait is longer
    jitter: float = 0.5  # each wait is shortened by up to this fraction, at random

    def __post_init__(self) -> None:
        if self.tries < 1 or self.first < 0 or self.factor < 1 or self.cap < 0 or not 0 <= self.jitter <= 1:
            raise ValueError(f"invalid backoff {self}")

    def retries_left(self, attempt: int) -> bool:
        """Whether another try may follow attempt number `attempt` (1 is the first try)."""
        return attempt < self.tries

    def wait(self, attempt: int, rand: float, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 is the first try).

        `rand` is uniform in [0, 1). A server's Retry-After, when given, is a floor
        (never above the cap: a server asking for minutes is not worth blocking on).
        """
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt}")
        base = min(self.cap, self.first * self.factor ** (attempt - 1))
        delay = base * (1 - self.jitter * rand)
        if retry_after is not None:
            delay = max(delay, min(self.cap, retry_after))
        return delay

    def longest(self) -> float:
        """The most time all retries of one request can spend waiting."""
        return sum(self.wait(a, 0.0) for a in range(1, self.tries))
