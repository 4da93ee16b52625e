"""Retries: transient failures are retried with capped backoff, then given up; others are not;
a retry's log line names the error's type, never its text; work that succeeds at once costs no
retry context."""

from collections.abc import Iterator

import pytest
import stamina
import structlog
from sqlalchemy.exc import OperationalError
from stamina.instrumentation import RetryDetails, set_on_retry_hooks

from rebond_router.consumer import GaveUp, Retries, log_retry


class Flaky:
    """Fails `failures` times with `error`, then succeeds."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error


@pytest.fixture
def delays() -> Iterator[list[float]]:
    """The backoff delays stamina waited, in order (its retry hooks see each one)."""
    waited: list[float] = []

    def record(details: RetryDetails) -> None:
        waited.append(details.wait_for)

    set_on_retry_hooks([record])
    yield waited
    set_on_retry_hooks(None)


async def test_a_transient_failure_is_retried_with_growing_capped_backoff(
    delays: list[float],
) -> None:
    """A database hiccup is retried; delays double up to the cap, each at most 20 % of the
    first delay longer (10 ms, 20 ms, 30 ms here, so that the test waits for real)."""
    work = Flaky(3, OperationalError("select", {}, Exception("database is locked")))
    await Retries(attempts=5, first_s=0.01, cap_s=0.03).run(work, "test")
    assert work.calls == 4 and len(delays) == 3
    steps = [0.01, 0.02, 0.03]
    # pytest.approx: the capped delay may come out as 0.029999999999999992.
    assert all(
        d == pytest.approx(s) or s <= d <= min(0.03, s + 0.2 * 0.01) + 1e-3
        for d, s in zip(delays, steps, strict=True)
    ), delays


async def test_the_delays_of_retries_started_together_spread_out(delays: list[float]) -> None:
    """Ten records failing together do not all retry at the same instant."""
    for _ in range(10):
        await Retries(attempts=2, first_s=0.01, cap_s=0.03).run(Flaky(1, OSError()), "t")
    assert len(set(delays)) == 10


async def test_after_the_last_attempt_the_work_is_given_up(delays: list[float]) -> None:
    """No hot loop: after `attempts` tries it stops and says why (the caller dead-letters)."""
    work = Flaky(10, OSError("broker unreachable"))
    with pytest.raises(GaveUp, match="OSError after 3 attempts"):
        await Retries(attempts=3, first_s=0.001, cap_s=0.01).run(work, "test")
    assert work.calls == 3 and len(delays) == 2


async def test_a_permanent_failure_is_not_retried(delays: list[float]) -> None:
    """A bug or a bad value fails at once (the caller dead-letters it)."""
    work = Flaky(1, ValueError("bad"))
    with pytest.raises(ValueError):
        await Retries(attempts=5, first_s=0.001, cap_s=0.01).run(work, "test")
    assert work.calls == 1 and delays == []


async def test_stamina_s_testing_mode_skips_the_waits() -> None:
    """Tests may turn the waits off (`stamina.set_testing`): a minute's backoff takes none."""
    work = Flaky(10, OSError("broker unreachable"))
    with stamina.set_testing(True, attempts=3, cap=True), pytest.raises(GaveUp):
        await Retries(attempts=3, first_s=60, cap_s=60).run(work, "test")
    assert work.calls == 3


async def test_a_retry_is_logged_without_the_error_s_text() -> None:
    """The statement's parameters a database error quotes (a contact, a message) stay out of
    the log: the line says what was retried, which attempt, and the error's type."""
    set_on_retry_hooks([log_retry])
    error = OperationalError("INSERT …", {"template": "claire@example.org"}, Exception("gone"))
    try:
        with structlog.testing.capture_logs() as logs:
            await Retries(attempts=2, first_s=0.001, cap_s=0.01).run(Flaky(1, error), "questions")
    finally:
        set_on_retry_hooks(None)
    assert [(line["event"], line["error"], line["attempt"]) for line in logs] == [
        ("transient_failure", "OperationalError", 1)
    ]
    assert "claire@example.org" not in repr(logs)


async def test_work_that_succeeds_at_once_enters_no_retry_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first try is a plain call (stamina's context costs a few hundred microseconds on the
    path of every record); only a failure enters it."""

    def no_context(**_options: object) -> None:
        raise AssertionError("a retry context for work that did not fail")

    monkeypatch.setattr(stamina, "retry_context", no_context)
    work = Flaky(0, OSError())
    await Retries(attempts=3, first_s=0.001, cap_s=0.01).run(work, "test")
    assert work.calls == 1
