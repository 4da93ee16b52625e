"""`until` and `until_async` return the check's first truthy value as soon as it comes, or its
last value once the time is up, and never raise on their own."""

import asyncio
import itertools
import time

from rebond_testing import until, until_async


def test_until_returns_the_first_truthy_value_without_waiting_the_whole_time() -> None:
    """The third try succeeds: its value comes back long before the time limit."""
    tries = itertools.count(1)
    started = time.monotonic()
    assert until(lambda: [n] if (n := next(tries)) >= 3 else [], within_s=10, every_s=0.01) == [3]
    assert time.monotonic() - started < 5


def test_until_gives_the_last_value_when_time_is_up() -> None:
    """A check that never holds: its falsy value after the time limit, not an exception."""
    started = time.monotonic()
    assert until(lambda: [], within_s=0.2, every_s=0.05) == []
    assert time.monotonic() - started >= 0.2


async def test_until_async_lets_the_loop_run_between_tries() -> None:
    """A task on the same loop sets what the check waits for: the loop ran meanwhile."""
    done = asyncio.Event()
    asyncio.get_running_loop().call_later(0.1, done.set)
    assert await until_async(done.is_set, within_s=10) is True


async def test_until_async_awaits_a_coroutine_check() -> None:
    """An async check is awaited on each try; its last (falsy) value comes back at the limit."""
    tries = itertools.count(1)

    async def third() -> int:
        n = next(tries)
        return n if n >= 3 else 0

    assert await until_async(third, within_s=10, every_s=0.01) == 3

    async def never() -> int:
        return 0

    assert await until_async(never, within_s=0.1) == 0
