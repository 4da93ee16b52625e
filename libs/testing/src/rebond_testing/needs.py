"""What a test needs from the machine, and what happens when it is missing: CI fails, a
developer's run skips with the reason (and the command that installs it)."""

import os
from typing import NoReturn

import pytest

#: Under CI=true every test must run: a missing broker, database or program is a failure.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """End the test (or fixture) for want of something: fail under CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: nothing is skipped)", pytrace=False)
    pytest.skip(reason)
