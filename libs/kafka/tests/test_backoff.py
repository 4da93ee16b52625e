"""Backoff: the delay grows from the first to the cap, each delay jittered, reset after a success."""

import random

import pytest

from rebond_kafka.backoff import Backoff


def test_without_jitter_the_delay_doubles_up_to_the_cap() -> None:
    """0.25 s, 0.5 s, 1 s ... then the cap for good."""
    backoff = Backoff(first_s=0.25, cap_s=3.0, jitter=0)
    assert [backoff.next_delay() for _ in range(7)] == [0.25, 0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_each_delay_moves_by_at_most_the_jitter_and_never_passes_the_cap() -> None:
    """Clients restarted together spread out: ±20 % around each step, never above the cap."""
    backoff = Backoff(first_s=1.0, cap_s=4.0, jitter=0.2, rng=random.Random(7).random)
    delays = [backoff.next_delay() for _ in range(200)]
    steps = [1.0, 2.0] + [4.0] * 198
    assert all(
        0.8 * step <= d <= min(4.0, 1.2 * step) for d, step in zip(delays, steps, strict=True)
    )
    assert len({round(d, 6) for d in delays}) > 100  # really jittered, not one value


def test_reset_starts_again_from_the_first_delay() -> None:
    """After a success, the next failure waits the first delay again, not the cap."""
    backoff = Backoff(first_s=0.5, cap_s=8.0, jitter=0)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 0.5


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"first_s": 0}, "first_s"), ({"first_s": 9, "cap_s": 1}, "cap_s"), ({"jitter": 1}, "jitter")],
)
def test_nonsense_parameters_are_refused_naming_them(kwargs: dict[str, float], named: str) -> None:
    """A delay of zero (a spin) or a first delay above the cap is a configuration error."""
    with pytest.raises(ValueError, match=named):
        Backoff(**kwargs)
