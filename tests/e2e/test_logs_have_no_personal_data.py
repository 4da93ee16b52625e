"""No personal data in logs: a full flow through the four services as processes, then every
line they logged is searched for the person's name, e-mail, phone and message."""

import asyncio
import copy
import hashlib
import json
import random
import string
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import Answer, ReferralResponseV1
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE
from rebond_contracts.topics import responses
from rebond_testing import until
from rebond_testing.events import publish_event

from .conftest import Pipeline, association_records, erased_everywhere

pytestmark = pytest.mark.kafka

OFFERED = "fr.rebond.referral.offered"
WITHDRAWN = "fr.rebond.referral.withdrawn"


def _person() -> dict[str, str]:
    token = "".join(random.choices(string.ascii_lowercase, k=8))
    digits = "".join(random.choices(string.digits, k=8))
    return {
        "name": f"Maëlys{token.capitalize()}",
        "email": f"maelys.{token}@exemple.fr",
        "phone": f"06{digits}",
        "message": f"Ma boulangerie {token} a fermé, je dors mal et j'ai peur pour mes enfants.",
    }


async def _answer(kafka_secure, reference: str, referral_id: str) -> None:  # type: ignore[no-untyped-def]
    """Accept, as the association itself does, on its own responses topic."""
    topic = responses(AssociationId.SOIXANTE_MILLE_REBONDS)
    event = topic.envelope(
        ReferralResponseV1(
            referral_id=uuid.UUID(referral_id),
            reference=reference,
            answer=Answer.ACCEPT,
            answered_at=datetime.now(UTC),
        ),
        subject=reference,
        correlationid=reference,
    )
    await publish_event(
        kafka_secure.bootstrap, topic.name, event, reference,
        **kafka_secure.sasl("association-60000-rebonds"),
    )  # fmt: skip


def test_a_full_flow_logs_no_name_email_phone_or_message(
    kafka_secure,  # type: ignore[no-untyped-def]
    running_services: Pipeline,
) -> None:
    """Submission, decision, referral, e-mails, an answer and an erasure: no service logged the
    person's name, e-mail, phone or message, in clear or JSON-escaped."""
    run = running_services
    intake = run["intake"].url
    person = _person()
    body = copy.deepcopy(EXAMPLE_QUESTIONNAIRE)
    body["contact"] = {
        "first_name": person["name"],
        "email": person["email"],
        "phone": person["phone"],
        "preferred_channel": "email",
    }
    body["message"] = person["message"]
    reply = httpx.post(f"{intake}/v1/submissions", json=body)
    assert reply.status_code == 202, reply.text
    reference, secret = reply.json()["reference"], reply.json()["erasure_secret"]

    offered = association_records(kafka_secure, "60000-rebonds", reference, {OFFERED})
    assert OFFERED in offered, f"no referral for {reference}"
    referral = json.loads(offered[OFFERED].value)
    assert person["message"] in json.dumps(referral, ensure_ascii=False)  # it did flow through
    assert until(lambda: run.mail.to(person["email"]), 30), "no e-mail to the person"
    assert until(lambda: run.mail.to("orientation@60000-rebonds.example"), 30)

    asyncio.run(_answer(kafka_secure, reference, referral["referral_id"]))

    def accepted() -> bool:
        timeline = httpx.get(f"{intake}/v1/submissions/{reference}").json()["timeline"]
        return "accepted" in [step["code"] for step in timeline]

    assert until(accepted, 30)
    erasure = f"{intake}/v1/submissions/{reference}/erasure"
    assert httpx.post(erasure, json={"secret": "a-wrong-secret"}).status_code == 403
    assert httpx.post(erasure, json={"secret": secret}).status_code == 202
    withdrawn = association_records(kafka_secure, "60000-rebonds", reference, {WITHDRAWN})
    assert WITHDRAWN in withdrawn

    # Every service is done with the flow once each has erased it (its last step); log lines
    # are unbuffered, so each is in its file by then.
    assert erased_everywhere(run, hashlib.sha256(reference.encode()).hexdigest()) == []
    logs = {name: service.log.read_text("utf-8") for name, service in run.items()}
    for name, text in logs.items():
        assert reference in text, f"{name} logged nothing about the flow"
    assert "submission_accepted" in logs["intake"] and "erasure_requested" in logs["intake"]
    assert "referral_published" in logs["notifier"]

    needles = {
        person["name"],
        person["email"],
        person["email"].split("@")[0],
        person["phone"],
        "+33" + person["phone"][1:],
        person["message"],
        person["message"][:40],
    }
    needles |= {json.dumps(n)[1:-1] for n in needles}  # as a JSON log line would escape them
    for name, text in logs.items():
        lowered = text.lower()
        leaked = sorted(n for n in needles if n.lower() in lowered)
        assert leaked == [], f"{name} logged personal data: {leaked}"
