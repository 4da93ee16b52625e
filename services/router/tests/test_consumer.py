"""Retries: transient failures are retried with capped backoff, then given up; others are not."""

import pytest
from sqlalchemy.exc import OperationalError

from rebond_router.consumer import GaveUp, with_retries


class Flaky:
    """Fails `failures` times with `error`, then succeeds."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error


class FakeSleep(list[float]):
    """Records the backoff delays asked for, without waiting for them."""

    async def __call__(self, delay: float) -> None:
        self.append(delay)


@pytest.fixture
def sleeps() -> FakeSleep:
    return FakeSleep()


async def test_a_transient_failure_is_retried_with_growing_capped_backoff(
    sleeps: FakeSleep,
) -> None:
    """A database hiccup is retried; delays double up to the cap, each within ±20 %."""
    work = Flaky(3, OperationalError("select", {}, Exception("database is locked")))
    await with_retries(
        work, attempts=5, backoff_s=1.0, backoff_max_s=3.0, what="test", sleep=sleeps
    )
    assert work.calls == 4 and len(sleeps) == 3
    steps = [1.0, 2.0, 3.0]
    assert all(0.8 * s <= d <= min(3.0, 1.2 * s) for d, s in zip(sleeps, steps, strict=True))


async def test_the_delays_of_retries_started_together_spread_out() -> None:
    """Ten records failing together do not all retry at the same instant."""
    firsts = []
    for _ in range(10):
        sleeps = FakeSleep()
        await with_retries(
            Flaky(1, OSError()), attempts=2, backoff_s=1.0, backoff_max_s=3.0, what="t",
            sleep=sleeps,
        )  # fmt: skip
        firsts += sleeps
    assert len(set(firsts)) == 10


async def test_after_the_cap_the_work_is_given_up(sleeps: FakeSleep) -> None:
    """No hot loop: after `attempts` tries it stops and says why (the caller dead-letters)."""
    work = Flaky(10, OSError("broker unreachable"))
    with pytest.raises(GaveUp, match="OSError after 3 attempts"):
        await with_retries(
            work, attempts=3, backoff_s=0.1, backoff_max_s=1.0, what="test", sleep=sleeps
        )
    assert work.calls == 3 and len(sleeps) == 2


async def test_a_permanent_failure_is_not_retried(sleeps: FakeSleep) -> None:
    """A bug or a bad value fails at once (the caller dead-letters it)."""
    work = Flaky(1, ValueError("bad"))
    with pytest.raises(ValueError):
        await with_retries(
            work, attempts=5, backoff_s=0.1, backoff_max_s=1.0, what="test", sleep=sleeps
        )
    assert work.calls == 1 and sleeps == []
