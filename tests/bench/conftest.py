"""The bench's scripts import one another as top-level modules (`from run import Bench`), as
they do when run as `python bench/run.py`; their tests import them the same way."""

import shutil
import sys
from pathlib import Path

import pytest

from rebond_testing import unavailable

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))


@pytest.fixture
def go_toolchain() -> None:
    """`make bench`'s load generator is Go: fails without it in CI, skips elsewhere."""
    if shutil.which("go") is None:
        unavailable("no Go toolchain: `make bench` needs one")
