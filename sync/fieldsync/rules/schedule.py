"""When the service acts next: the polling interval with jitter, and the backoff after failures."""

from __future__ import annotations

import random
from dataclasses import dataclass

JITTER = 0.10  # ±10 % so that replicas and restarts spread out
BACKOFF_FIRST = 1.0  # seconds after the first failure, doubling up to the cap
RETRY_CAP = 30.0  # seconds: the longest wait between attempts while something fails, unless the interval is longer
INTERVAL, EXTRACT, RETRY = "interval", "extract", "retry"  # the triggers timers pull


def jittered(interval: float, rng: random.Random | None = None) -> float:
    """`interval` ±10 %."""
    return interval * (1 + (rng or random).uniform(-JITTER, JITTER))


def backoff(failures: int, cap: float) -> float:
    """Seconds to wait after `failures` failures in a row (1, 2, 4, … up to `cap`); 0 after none."""
    if failures <= 0:
        return 0.0
    return min(cap, BACKOFF_FIRST * 2 ** min(failures - 1, 30))


@dataclass(frozen=True)
class Timers:
    """When the service's own triggers fall due (monotonic seconds). After a failure nothing runs before `retry_at`,
    whatever else is due: what arrives meanwhile waits, coalesced, for the retry."""

    next_fetch: float
    next_extract: float
    retry_at: float | None = None

    def wait(self, now: float) -> float:
        """Seconds until something falls due."""
        if self.retry_at is not None:
            return max(0.0, self.retry_at - now)
        return max(0.0, min(self.next_fetch, self.next_extract) - now)

    def held(self, now: float) -> bool:
        """Backing off: no run now."""
        return self.retry_at is not None and now < self.retry_at

    def due(self, now: float) -> set[str]:
        """The reasons that have fallen due: interval (fetch), extract, retry."""
        return {name for name, at in ((INTERVAL, self.next_fetch), (EXTRACT, self.next_extract),
                                      (RETRY, self.retry_at)) if at is not None and now >= at}

    def ran(self, now: float, interval: float, extract_interval: float, failures: int,
            rng: random.Random | None = None) -> Timers:
        """After a run (failed when `failures` > 0): the next fetch and extraction count from now; a failure sets the
        retry at the backoff (capped at the interval, or RETRY_CAP when that is longer)."""
        retry = now + backoff(failures, max(interval, RETRY_CAP)) if failures else None
        return Timers(now + jittered(interval, rng), now + extract_interval, retry)
