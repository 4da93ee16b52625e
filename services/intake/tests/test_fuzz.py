"""API fuzzing: schemathesis generates requests from the OpenAPI document; none may give a 5xx."""

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck

from rebond_intake.app import create_app
from rebond_intake.settings import IntakeSettings

from .conftest import FakePublisher, FakeStore


def _app():
    """Intake with the fakes of conftest.py; built at import, as schemathesis reads the schema
    at collection time."""
    settings = IntakeSettings(rate_limit_per_minute=0)
    return create_app(settings, publisher=FakePublisher(), store=FakeStore())


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())
CALLS = {"count": 0}


@schema.parametrize()
@hypothesis.settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_input_gives_a_server_error(case) -> None:
    """Whatever is sent to any operation, the answer is never a 5xx."""
    response = case.call()
    CALLS["count"] += 1
    CALLS[response.status_code] = CALLS.get(response.status_code, 0) + 1
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert "Traceback" not in response.text


def test_at_least_a_thousand_cases_were_tried() -> None:
    """The fuzz run above really exercised 1,000 generated requests or more."""
    assert CALLS["count"] >= 1000, CALLS


@pytest.mark.parametrize("depth", [900, 5000])
def test_deeply_nested_json_gets_a_4xx(make_client, depth) -> None:  # type: ignore[no-untyped-def]
    """JSON nested deeper than the parser's recursion limit is refused with a 4xx, never a 5xx."""
    raw = b'{"distress":' + b"[" * depth + b"]" * depth + b"}"
    reply = make_client().post(
        "/v1/submissions", content=raw, headers={"content-type": "application/json"}
    )
    assert 400 <= reply.status_code < 500, (reply.status_code, reply.text[:300])
