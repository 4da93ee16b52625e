"""API fuzzing: schemathesis generates requests from the notifier's OpenAPI document (examples,
coverage and fuzzing phases) and sends them to the notifier running as its own process on the
real broker; none may give a 5xx, and every answer must be one the document describes."""

import time
import uuid
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.specs.openapi.checks import positive_data_acceptance

from rebond_contracts.associations import AssociationId
from rebond_notifier.app import create_app
from rebond_notifier.settings import NotifierSettings
from rebond_notifier.signing import Action, AnswerClaims, make_token

from .conftest import LINK_SECRET, NotifierUrl

pytestmark = pytest.mark.kafka
CALLS: dict[str | int, int] = {"count": 0}


def _tokens() -> dict[str, str]:
    """Real answer links, so that the examples reach real referrals (a form, an answer
    published on Kafka, a second answer refused), beside an expired one."""

    def token(action: Action, expires_at: int) -> str:
        claims = AnswerClaims(
            referral_id=uuid.uuid4(), reference="RB-7K3M-Q9XA-2DFE-W8NB",
            association_id=AssociationId.APESA, action=action, expires_at=expires_at,
        )  # fmt: skip
        return make_token(LINK_SECRET.encode(), claims)

    later = int(time.time()) + 3600
    return {
        "accept": token(Action.ACCEPT, later),
        "decline": token(Action.DECLINE, later),
        "expired": token(Action.ACCEPT, int(time.time()) - 1),
        "invalid": "not.a.token",
    }


def _document() -> dict[str, Any]:
    """The notifier's OpenAPI document, built by the same `create_app` as the process under test
    (schemathesis reads it when the tests are collected, before any fixture runs), with real
    links as the token's examples. That the process serves this document on its operators' port
    is `test_answers_kafka`'s to check."""
    settings = NotifierSettings(
        environment="test", link_secret=LINK_SECRET, smtp_local_hostname="fuzz.test",
        database_url="sqlite+aiosqlite:///:memory:",
    )  # fmt: skip
    document = create_app(settings).openapi()
    examples = {name: {"value": value} for name, value in _tokens().items()}
    for operation in document["paths"]["/reponse/{token}"].values():
        [token] = [p for p in operation["parameters"] if p["name"] == "token"]
        token["examples"] = examples
    return document


schema = schemathesis.openapi.from_dict(_document())


@schema.parametrize()
@hypothesis.settings(
    max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
def test_no_request_gives_a_server_error_and_every_answer_is_documented(
    case: schemathesis.Case, notifier_process: NotifierUrl
) -> None:
    """Whatever is sent to any operation: never a 5xx (but /readyz's documented 503), and the
    status, media type and body are those the document gives."""
    # An answer link is any string to the document; whether it is one (its signature, its
    # expiry, where its referral stands) no schema can say, so a well-formed but refused link
    # gets its documented 400 or 410 page where this check would want a 2xx.
    response = case.call_and_validate(
        base_url=str(notifier_process), excluded_checks=[positive_data_acceptance]
    )
    CALLS["count"] += 1
    CALLS[response.status_code] = CALLS.get(response.status_code, 0) + 1
    assert "Traceback" not in response.text


def test_the_fuzzing_reached_every_outcome() -> None:
    """The run above sent hundreds of requests and met the pages' outcomes, not only refusals."""
    assert CALLS["count"] >= 500, CALLS
    for status in (200, 400, 409, 410):
        assert CALLS.get(status, 0) > 0, CALLS
