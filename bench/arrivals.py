"""When each request of an open-loop run is due: evenly spaced, or random (Poisson) arrivals.

A schedule is the list of send times, in nanoseconds from the start of the run, decided before
the first request leaves: the load does not slow down when the server does (open loop), and
each latency is counted from its request's scheduled time, so time spent queueing behind a
slow reply is counted too (no coordinated omission).

People do not arrive evenly spaced: independent visitors make a Poisson process, whose gaps
are exponential (mean `1/rate`, coefficient of variation 1) and which sometimes brings several
requests within a few milliseconds. Evenly spaced arrivals have a fixed period (coefficient of
variation 0): a period that happens to fall in step with a consumer's timer shows only that
timer's best or worst case, which is why round 2's latency targets are set on random arrivals.
A `seed` makes a Poisson schedule reproducible, so Rebond and its baseline see the same one.
"""

import itertools
import random
import statistics
from enum import StrEnum

NS_PER_S = 1_000_000_000


class Arrivals(StrEnum):
    EVEN = "even"
    POISSON = "poisson"


def schedule(arrivals: Arrivals, rate: float, seconds: float, seed: int = 1) -> list[int]:
    """Send times (ns from the start, increasing) of the requests due within `[0, seconds)`."""
    if rate <= 0 or seconds <= 0:
        raise ValueError(f"rate and seconds must be positive (rate={rate}, seconds={seconds})")
    if arrivals is Arrivals.EVEN:
        return [round(i * NS_PER_S / rate) for i in range(round(rate * seconds))]
    rng = random.Random(seed)
    times: list[int] = []
    at = rng.expovariate(rate)
    while at < seconds:
        times.append(round(at * NS_PER_S))
        at += rng.expovariate(rate)
    return times


def gaps_s(times_ns: list[int]) -> list[float]:
    """The gaps between successive send times, in seconds."""
    return [(b - a) / NS_PER_S for a, b in itertools.pairwise(times_ns)]


def coefficient_of_variation(values: list[float]) -> float:
    """Standard deviation over mean: 1 for exponential gaps, 0 for a fixed period."""
    return statistics.pstdev(values) / statistics.fmean(values)
