"""`examples`: the full count unless `REBOND_FUZZ=quick`, then a quarter of it."""

import pytest

from rebond_testing.fuzzing import examples


@pytest.mark.parametrize(
    ("value", "full", "expected"),
    [("", 60, 60), ("full", 250, 250), ("quick", 60, 15), ("QUICK", 250, 62), ("quick", 2, 1)],
)
def test_the_count_follows_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, full: int, expected: int
) -> None:
    monkeypatch.setenv("REBOND_FUZZ", value)
    assert examples(full) == expected
