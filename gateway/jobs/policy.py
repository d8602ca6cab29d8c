"""Retries: exponential backoff with jitter, up to a number of attempts."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]  # seconds since the epoch; tests inject their own
Random = Callable[[], float]  # uniform in [0, 1)


@dataclass(frozen=True)
class RetryPolicy:
    """A job runs at most `max_attempts` times; before attempt n+1 it waits
    `base_delay_s * multiplier**(n-1)`, capped at `max_delay_s`, of which the upper half is
    random ("equal jitter"), so that jobs failing together do not retry together."""

    max_attempts: int = 8
    base_delay_s: float = 2.0
    multiplier: float = 2.0
    max_delay_s: float = 600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0 or self.multiplier < 1:
            raise ValueError("delays must be non-negative and the multiplier at least 1")

    def delay_s(self, attempt: int, rand: Random = random.random) -> float:
        """How long to wait after failed attempt `attempt` (1-based)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * self.multiplier ** (attempt - 1))
        return ceiling / 2 + rand() * ceiling / 2
