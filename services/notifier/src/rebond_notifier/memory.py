"""Handing back to the system the memory a burst of work freed.

Measured (notes of issue 23): after a few thousand questionnaires the notifier's Python objects
have not grown (tracemalloc: under 1 MB between snapshots, the bounded caches of pydantic and
SQLAlchemy), yet its resident memory grew by 40-60 MB. That is glibc's allocator keeping what was
freed: the decoded batches, the rendered e-mails and SQLite's result rows are freed, but the
heap's top rarely is, so little goes back by itself. `malloc_trim(0)` returns every whole free
page of every arena. It costs a walk of the free lists (a few milliseconds), so the dispatcher
calls it when it falls idle after enough deliveries (`Dispatcher`, `trim_after`), not per
e-mail. Elsewhere than glibc (musl, macOS) there is no such call, and nothing is done.
"""

import ctypes
import ctypes.util
from collections.abc import Callable


def trimmer() -> Callable[[], bool] | None:
    """glibc's `malloc_trim(0)` as a callable (True when memory was handed back), or None
    when the C library has no such function."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (AttributeError, OSError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def give_back() -> bool:
        return bool(trim(0))

    return give_back
