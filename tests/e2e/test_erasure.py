"""Withdrawal and erasure end to end, on the secured broker (each service under its own
principal, so the registry's ACLs for `privacy.erasures` apply as in production)."""

import copy
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE
from rebond_testing import until

from .conftest import Pipeline, association_records, erased_everywhere

pytestmark = pytest.mark.kafka

OFFERED = "fr.rebond.referral.offered"
WITHDRAWN = "fr.rebond.referral.withdrawn"


def _conference(events_url: str) -> None:
    """A conference in the example's department, so that the person gets an invitation."""
    starts = datetime.now(UTC).replace(microsecond=0, tzinfo=None) + timedelta(days=20)
    reply = httpx.post(
        f"{events_url}/v1/events",
        headers={"X-API-Key": "dev-key-apesa"},
        json={
            "title": "Rebondir après une liquidation",
            "description": "Trois entrepreneurs racontent comment ils ont rebondi.",
            "kind": "success_stories",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "venue_address": "12 place de la Bourse",
            "city": "Bordeaux",
            "region": "75",
            "department": "33",
            "online_url": None,
            "capacity": 50,
        },
    )
    assert reply.status_code == 201, reply.text


def test_erasure_with_the_secret_reaches_every_service_and_the_association(
    kafka_secure,  # type: ignore[no-untyped-def]
    running_services: Pipeline,
) -> None:
    """Submit, get the referral, erase with the secret: every store forgets, the association
    is told on its topic; a wrong secret is refused."""
    run = running_services
    intake = run["intake"].url
    _conference(run["events"].url)
    # A fresh address: invitations are sent once per person and conference, and the session's
    # broker holds other tests' decisions for the example's address.
    answers = copy.deepcopy(EXAMPLE_QUESTIONNAIRE)
    answers["contact"]["email"] = f"claire.{uuid.uuid4().hex[:8]}@example.org"  # type: ignore[index]
    reply = httpx.post(f"{intake}/v1/submissions", json=answers)
    assert reply.status_code == 202, reply.text
    accepted = reply.json()
    reference, secret = accepted["reference"], accepted["erasure_secret"]

    offered = association_records(kafka_secure, "60000-rebonds", reference, {OFFERED})
    assert OFFERED in offered, f"no referral for {reference}"
    assert until(
        lambda: run.rows("events", "SELECT id FROM invitations WHERE reference = ?", reference), 30
    ), "the person was not invited"
    assert until(
        lambda: run.rows(
            "notifier", "SELECT id FROM notifier_deliveries WHERE reference = ?", reference
        ),
        30,
    )

    erasure = f"{intake}/v1/submissions/{reference}/erasure"
    assert httpx.post(erasure, json={"secret": "not-the-secret"}).status_code == 403
    assert httpx.post(erasure, json={}).status_code == 403
    unknown = f"{intake}/v1/submissions/RB-0000-0000-0000-0000/erasure"
    assert httpx.post(unknown, json={"secret": secret}).status_code == 404
    assert httpx.post(erasure, json={"secret": secret}).status_code == 202

    # The association is told on its own topic, read with its own principal.
    records = association_records(kafka_secure, "60000-rebonds", reference, {OFFERED, WITHDRAWN})
    assert WITHDRAWN in records, "no withdrawal notice on referrals.60000-rebonds"
    assert b"claire" not in records[WITHDRAWN].value.lower()

    # Each store keeps the reference's SHA-256 and nothing else about it.
    digest = hashlib.sha256(reference.encode()).hexdigest()
    assert erased_everywhere(run, digest) == []
    assert run.rows("router", "SELECT 1 FROM router_referrals WHERE reference = ?", reference) == []
    assert run.rows("router", "SELECT 1 FROM router_offers WHERE reference = ?", reference) == []
    assert (
        run.rows("notifier", "SELECT 1 FROM notifier_deliveries WHERE reference = ?", reference)
        == []
    )
    assert (
        run.rows("notifier", "SELECT 1 FROM notifier_referrals WHERE reference = ?", reference)
        == []
    )
    assert run.rows("events", "SELECT id FROM invitations WHERE reference = ?", reference) == []
    assert (
        run.rows("intake", "SELECT 1 FROM intake_status_events WHERE reference = ?", reference)
        == []
    )
    # Intake: the person's status says so, and nothing else.
    status = httpx.get(f"{intake}/v1/submissions/{reference}").json()
    assert status["status"] == "erased"
    assert [step["code"] for step in status["timeline"]] == ["received", "erased"]
