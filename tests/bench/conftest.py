"""Fixtures of the bench's tests (which import the bench's modules by name, `bench.run`: the
workspace root is a package)."""

import os
import shutil

import pytest


@pytest.fixture
def go_toolchain() -> None:
    """`make bench`'s load generator is Go: fails without it in CI, skips elsewhere."""
    if shutil.which("go") is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("Go is required by `make bench` (CI=true)", pytrace=False)
        pytest.skip("no Go toolchain: `make bench` needs one")
