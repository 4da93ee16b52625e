"""API fuzzing's support: `examples` (the full count unless `REBOND_FUZZ=quick`, then a quarter
of it), and the apps schemathesis starts at collection ended with the session."""

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


FUZZED = """
import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

import schemathesis
from fastapi import FastAPI


@asynccontextmanager
async def lifespan(app):
    yield
    # What a store's close does: work on the event loop's thread pool.
    await asyncio.to_thread(Path("closed").write_text, "closed")


app = FastAPI(lifespan=lifespan)


@app.get("/ping")
def ping() -> str:
    return "pong"


schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
def test_api(case):
    case.call_and_validate()
"""


def test_a_collection_alone_ends_the_apps_schemathesis_started(pytester: pytest.Pytester) -> None:
    """schemathesis starts an app's lifespan to read its OpenAPI document while pytest collects.
    A session that runs none of its tests still ends it cleanly (the plugin's
    `pytest_sessionfinish`), not at the interpreter's exit, when the thread pool a store closes
    on is already shut."""
    pytester.makepyfile(test_fuzzed=FUZZED)
    result = pytester.runpytest_subprocess("-p", "rebond_testing.plugin", "--collect-only", "-q")
    assert result.ret == 0
    assert (pytester.path / "closed").read_text() == "closed"
    assert "cannot schedule new futures" not in result.stderr.str()
