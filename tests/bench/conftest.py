"""Fixtures of the bench's tests (which import the bench's modules by name, `bench.run`: the
workspace root is a package)."""

import shutil

import pytest

from rebond_testing import unavailable


@pytest.fixture
def go_toolchain() -> None:
    """`make bench`'s load generator is Go: fails without it in CI, skips elsewhere."""
    if shutil.which("go") is None:
        unavailable("no Go toolchain: `make bench` needs one")
