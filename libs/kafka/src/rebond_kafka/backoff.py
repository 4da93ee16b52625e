"""The delay before the next try of something that failed: growing, capped and jittered.

Growing, so that a dependency that stays down is asked less and less often (and a process does
not spend its CPU knocking on a closed door while the dependency needs that CPU to recover);
capped, so that it is noticed back within seconds; jittered, so that the many clients of one
restarted broker (four services, a dozen consumers each) do not all knock at the same instant.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """`next_delay()` gives `first_s`, then twice that, and so on up to `cap_s`, each moved by
    up to ±`jitter` of itself (never above `cap_s`); `reset()` after a success starts again
    from `first_s`. `rng` (uniform in [0, 1)) is injectable so tests see exact delays."""

    first_s: float = 0.25
    cap_s: float = 5.0
    factor: float = 2.0
    jitter: float = 0.2
    rng: Callable[[], float] = field(default=random.random, repr=False)
    _base: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.first_s <= self.cap_s:
            raise ValueError(f"backoff: need 0 < first_s ({self.first_s}) <= cap_s ({self.cap_s})")
        if self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError("backoff: need factor >= 1 and 0 <= jitter < 1")
        self._base = self.first_s

    def next_delay(self) -> float:
        """The delay to wait now; the following one will be longer, up to the cap."""
        base = self._base
        self._base = min(self.cap_s, base * self.factor)
        return min(self.cap_s, base * (1 + self.jitter * (2 * self.rng() - 1)))

    def reset(self) -> None:
        self._base = self.first_s
