"""The bench's arrival schedules are the processes they are named for.

A Poisson schedule whose gaps were too regular would hide the bursts that make the p99 at a
real portal's rates; one whose mean were off would load the pipeline at another rate.
"""

import statistics

import pytest

from bench.arrivals import NS_PER_S, Arrivals, coefficient_of_variation, gaps_s, schedule


def test_poisson_gaps_have_the_rate_s_mean_and_the_exponential_coefficient_of_variation() -> None:
    """Random arrivals: mean gap 1/rate, coefficient of variation 1, about rate x seconds sends."""
    times = schedule(Arrivals.POISSON, rate=100, seconds=600, seed=3)
    gaps = gaps_s(times)
    # 60,000 exponential gaps: the sample mean and CV are within 1 % and 0.02 of the truth
    # with a margin of more than 4 standard errors.
    assert statistics.fmean(gaps) == pytest.approx(0.01, rel=0.02)
    assert coefficient_of_variation(gaps) == pytest.approx(1.0, abs=0.03)
    assert len(times) == pytest.approx(60_000, rel=0.02)
    # memoryless: as many gaps below the median of an exponential (ln 2 / rate) as above it
    below = sum(gap < 0.6931 / 100 for gap in gaps) / len(gaps)
    assert below == pytest.approx(0.5, abs=0.01)


def test_poisson_schedule_stays_in_the_window_in_order() -> None:
    """Send times are increasing and all fall within [0, seconds)."""
    times = schedule(Arrivals.POISSON, rate=20, seconds=30, seed=1)
    assert times == sorted(times)
    assert times[0] >= 0 and times[-1] < 30 * NS_PER_S


def test_the_same_seed_gives_rebond_and_its_baseline_the_same_schedule() -> None:
    """One seed, one schedule; another seed, another one."""
    assert schedule(Arrivals.POISSON, 1, 180, seed=11) == schedule(Arrivals.POISSON, 1, 180, 11)
    assert schedule(Arrivals.POISSON, 1, 180, seed=11) != schedule(Arrivals.POISSON, 1, 180, 12)


def test_even_arrivals_have_a_fixed_period() -> None:
    """Evenly spaced: every gap is 1/rate (coefficient of variation 0), rate x seconds sends."""
    times = schedule(Arrivals.EVEN, rate=2, seconds=60)
    assert len(times) == 120
    assert times[0] == 0
    assert set(gaps_s(times)) == {0.5}
    assert coefficient_of_variation(gaps_s(times)) == 0


@pytest.mark.parametrize("rate, seconds", [(0, 10), (10, 0), (-1, 10)])
def test_a_schedule_without_rate_or_duration_is_refused(rate: float, seconds: float) -> None:
    """A zero or negative rate or duration is an error naming both, not an empty run."""
    with pytest.raises(ValueError, match="rate and seconds must be positive"):
        schedule(Arrivals.POISSON, rate, seconds)
