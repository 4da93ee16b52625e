"""Poll until something holds: the one way tests wait for what another process does.

Both forms return the check's first truthy value, or its last value once the time is up, and
never raise on their own: the caller asserts with a message of its own (`assert until(...),
"no referral"`), or records a figure that may be false (the fault suite)."""

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def until(check: Callable[[], T], within_s: float, every_s: float = 0.2) -> T:
    """`check()` as soon as it is truthy, else its value after `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(every_s)
    return check()


async def until_async(
    check: Callable[[], T | Awaitable[T]], within_s: float, every_s: float = 0.05
) -> T:
    """`until` for a test on an event loop: the loop runs between tries (an in-process service
    or a consumer task goes on), and `check` may be a coroutine function."""

    async def value() -> T:
        result = check()
        if inspect.isawaitable(result):
            return await result
        return result

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        if result := await value():
            return result
        await asyncio.sleep(every_s)
    return await value()
