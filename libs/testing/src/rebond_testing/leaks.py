"""What a test left open: the clients aiokafka reports when one is collected unclosed."""

import asyncio
import gc
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def unclosed_clients() -> Iterator[list[str]]:
    """Within a running event loop: the list, filled when the block ends, of the "Unclosed …"
    reports (an `AIOKafkaProducer` dropped open) made by what the block left to the garbage
    collector. aiokafka reports such a client twice, as a `ResourceWarning` and to the loop's
    exception handler (the error line a service logs); both are read, and the garbage is
    collected before the block ends so that a leak shows here rather than in a later test."""
    reports: list[str] = []
    found: list[str] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        reports.append(str(context.get("message", "")))

    loop.set_exception_handler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield found
            gc.collect()
        reports += [str(warning.message) for warning in caught]
    finally:
        loop.set_exception_handler(previous)
    found += [report for report in reports if report.startswith("Unclosed")]
