"""When the service acts next: the polling interval with jitter, and the backoff after failures."""

from __future__ import annotations

import random

JITTER = 0.10  # ±10 % so that replicas and restarts spread out
BACKOFF_FIRST = 1.0  # seconds after the first failure, doubling up to the cap


def jittered(interval: float, rng: random.Random | None = None) -> float:
    """`interval` ±10 %."""
    return interval * (1 + (rng or random).uniform(-JITTER, JITTER))


def backoff(failures: int, cap: float) -> float:
    """Seconds to wait after `failures` failures in a row (1, 2, 4, … up to `cap`); 0 after none."""
    if failures <= 0:
        return 0.0
    return min(cap, BACKOFF_FIRST * 2 ** min(failures - 1, 30))
