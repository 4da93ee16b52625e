"""API fuzzing: schemathesis over the router's small HTTP API (health and readiness); no 5xx,
and every answer as its OpenAPI document describes it, while Kafka is unreachable and when the
store answers."""

import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans

from rebond_router.app import create_app
from rebond_router.settings import RouterSettings
from rebond_testing import free_port

_FOLDER = tempfile.TemporaryDirectory(prefix="rebond-router-fuzz-")
SEEN: Counter[tuple[str, int]] = Counter()


def _app() -> Any:
    """The router with nobody at its Kafka address (it keeps retrying: /readyz says 503) and a
    SQLite store."""
    settings = RouterSettings(
        environment="test",
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        database_url=f"sqlite+aiosqlite:///{Path(_FOLDER.name) / 'router.sqlite3'}",
    )
    return create_app(settings)


#: `/readyz` answers 503 while a dependency is unreachable (here Kafka): documented, and what
#: it is for; any other 5xx still fails the run.
CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            {
                "include-path": "/readyz",
                "checks": {
                    "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}
                },
            }
        ]
    }
)
#: Read at import, as schemathesis reads the schema when pytest collects this module.
schema = schemathesis.openapi.from_asgi("/openapi.json", _app(), config=CONFIG)


@pytest.fixture
def app() -> Iterator[Any]:
    """A router per test: schemathesis ends an app's lifespan after each test, and the
    router's store, once closed, stays closed."""
    yield _app()
    shutdown_lifespans()


@pytest.fixture(scope="module", autouse=True)
def _remove_the_folder() -> Iterator[None]:
    yield
    _FOLDER.cleanup()


@schema.parametrize()
@hypothesis.settings(
    max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None,
    derandomize=True,
)  # fmt: skip
def test_every_operation_answers_as_documented(case: Any, app: Any) -> None:
    """Whatever is sent: never a 5xx, and the answer conforms to the document."""
    response = case.call_and_validate(app=app)
    SEEN[(case.operation.label, response.status_code)] += 1


def test_both_operations_were_tried() -> None:
    """The run above reached /healthz and /readyz (the latter unready: no broker)."""
    assert SEEN[("GET /healthz", 200)] > 0 and SEEN[("GET /readyz", 503)] > 0, SEEN
