"""Withdrawal and erasure: a secret given at submission, `POST …/erasure` with it."""

import dataclasses
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import Reason, RoutingOutcomeV1
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE
from rebond_contracts.topics import ERASURES, erasure_window_days
from rebond_intake.app import build
from rebond_intake.erasure import erasure_secret
from rebond_intake.settings import DEFAULT_ERASURE_KEY, IntakeSettings
from rebond_intake.store import SqlStatusStore, Submission, erasure_secrets
from rebond_intake.timeline import record_of

from .conftest import FakeStore
from .test_store import T0


def _submit(client) -> dict:
    reply = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
    assert reply.status_code == 202
    return reply.json()


def test_the_secret_is_derived_from_the_reference_and_nothing_is_stored(make_client, store) -> None:
    """The 202 carries the HMAC of the reference under intake's key; the store keeps nothing
    (neither the secret nor a hash), and another key would give another secret."""
    accepted = _submit(make_client())
    secret, reference = accepted["erasure_secret"], accepted["reference"]
    assert len(secret) >= 32
    assert accepted["erasure_url"] == f"/v1/submissions/{reference}/erasure"
    assert secret == erasure_secret(DEFAULT_ERASURE_KEY, reference)
    assert secret != erasure_secret("another-key-of-more-than-thirty-two-chars", reference)
    assert store.secrets == {} and store.submissions == {} and store.kept == {}


def test_the_secret_erases_on_a_replica_that_never_saw_the_submission(
    make_client, publisher
) -> None:
    """No state is needed to check it: another intake with the same key and an empty store
    accepts the right secret at once (and only the right one)."""
    reference = (accepted := _submit(make_client()))["reference"]
    other = TestClient(build(IntakeSettings(), publisher=publisher, store=FakeStore()).web)
    with other:
        url = f"/v1/submissions/{reference}/erasure"
        assert other.post(url, json={"secret": accepted["erasure_secret"][:-1]}).status_code == 404
        assert other.post(url, json={"secret": accepted["erasure_secret"]}).status_code == 202
    assert [e.subject for e in publisher.erasures] == [reference]


def test_a_secret_given_before_derivation_still_erases(make_client, publisher, store) -> None:
    """A submission from an older intake has a random secret whose hash the store kept."""
    reference, old_secret = "RB-01D0-0000-0000-0001", "an-old-random-secret-of-43-characters-xxxxx"
    store.secrets[reference] = hashlib.sha256(old_secret.encode()).hexdigest()
    client = make_client()
    url = f"/v1/submissions/{reference}/erasure"
    assert client.post(url, json={"secret": "not-it"}).status_code == 403
    assert client.post(url, json={"secret": old_secret}).status_code == 202
    assert [e.subject for e in publisher.erasures] == [reference]


def test_erasure_with_the_secret_publishes_the_request_and_marks_the_timeline(
    make_client, publisher
) -> None:
    """The right secret: 202, an erasure event (reference only) and an 'erased' status."""
    client = make_client()
    accepted = _submit(client)
    reference = accepted["reference"]
    reply = client.post(
        f"/v1/submissions/{reference}/erasure", json={"secret": accepted["erasure_secret"]}
    )
    assert reply.status_code == 202, reply.text
    [event] = publisher.erasures
    assert event.type == ERASURES.event_type and event.subject == reference
    assert event.data.model_dump(mode="json").keys() == {"reference", "requested_at"}
    status = client.get(f"/v1/submissions/{reference}").json()
    assert status["status"] == "erased"
    assert status["timeline"][-1]["code"] == "erased"


def test_the_erasure_reply_says_when_the_copies_on_kafka_are_gone(make_client) -> None:
    """The 202 states, in French then English, within how many days the copies on Kafka
    disappear: the registry's erasure window (11 days), not a figure typed again."""
    client = make_client()
    accepted = _submit(client)
    reply = client.post(
        f"/v1/submissions/{accepted['reference']}/erasure",
        json={"secret": accepted["erasure_secret"]},
    ).json()
    assert reply["kafka_copies_gone_within_days"] == erasure_window_days() == 11
    assert "au plus tard dans 11 jours" in reply["message"]
    assert "within 11 days" in reply["message_en"]


def test_the_secret_may_come_in_a_header(make_client, publisher) -> None:
    """`X-Erasure-Secret` works as well as the body (which is still JSON: `{}`)."""
    client = make_client()
    accepted = _submit(client)
    reply = client.post(
        f"/v1/submissions/{accepted['reference']}/erasure",
        headers={"X-Erasure-Secret": accepted["erasure_secret"]},
        json={},
    )
    assert reply.status_code == 202 and len(publisher.erasures) == 1


@pytest.mark.parametrize("secret", ["wrong-secret", "", None])
def test_a_wrong_or_missing_secret_is_refused(make_client, publisher, secret) -> None:
    """Without the right secret, 403 and nothing published: the reference alone never suffices."""
    client = make_client()
    reference = _submit(client)["reference"]
    body = {"secret": secret} if secret is not None else {}
    reply = client.post(f"/v1/submissions/{reference}/erasure", json=body)
    assert reply.status_code == 403
    assert publisher.erasures == []
    assert client.get(f"/v1/submissions/{reference}").json()["status"] != "erased"


@pytest.mark.parametrize("reference", ["RB-0000-0000-0000-0000", "not-a-reference"])
def test_an_unknown_reference_gets_404(make_client, publisher, reference) -> None:
    """An unknown or malformed reference: 404, never a 5xx."""
    reply = make_client().post(f"/v1/submissions/{reference}/erasure", json={"secret": "x" * 40})
    assert reply.status_code == 404
    assert publisher.erasures == []


def test_erasure_while_kafka_is_down_says_503(make_client, publisher) -> None:
    """Kafka unreachable: 503 with Retry-After, and the timeline is not marked erased."""
    client = make_client()
    accepted = _submit(client)
    publisher.down = True
    reply = client.post(
        f"/v1/submissions/{accepted['reference']}/erasure",
        json={"secret": accepted["erasure_secret"]},
    )
    assert reply.status_code == 503 and reply.headers["Retry-After"] == "7"


async def test_sql_store_reads_old_secret_hashes_and_expires_idempotency_rows(tmp_path) -> None:
    """SQLite: hashes kept by an older intake are read back, later submissions have none; old
    idempotency keys expire (the same key then claims anew)."""
    store = SqlStatusStore(f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")
    await store.migrate()
    await store.start()
    try:
        old = Submission("RB-AAAA-0000-0000-0001", T0, "e1", "key-old-123", "h")
        new = Submission("RB-AAAA-0000-0000-0002", T0 + timedelta(days=40), "e2", "key-new-1", "h")
        await store.claim(old)
        await store.claim(new)
        await store.database.run(  # an older intake's row, as it wrote it
            lambda connection: connection.execute(
                erasure_secrets.insert(),
                {"reference": old.reference, "secret_hash": "b" * 64, "created_at": T0},
            )
        )
        assert await store.secret_hash(old.reference) == "b" * 64
        assert await store.secret_hash(new.reference) is None

        assert await store.expire(T0 + timedelta(days=30)) == 1

        again = Submission("RB-AAAA-0000-0000-0003", T0, "e3", "key-old-123", "h")
        assert await store.claim(again) == again  # the old key is forgotten
        assert await store.claim(dataclasses.replace(new, reference="RB-X")) == new
    finally:
        await store.close()


def test_a_replay_of_the_key_gives_the_same_secret(make_client, publisher) -> None:
    """The same key and body again: the same reference and the same secret (the first one
    still erases); a 409 (same key, other answers) changes nothing."""
    client = make_client()
    key = {"Idempotency-Key": "erasure-replay-key"}
    first = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key).json()
    again = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key).json()
    changed = {**EXAMPLE_QUESTIONNAIRE, "distress": "yes"}
    other = client.post("/v1/submissions", json=changed, headers=key)
    assert other.status_code == 409 and again["reference"] == first["reference"]
    assert again["erasure_secret"] == first["erasure_secret"]
    url = f"/v1/submissions/{first['reference']}/erasure"
    assert client.post(url, json={"secret": first["erasure_secret"]}).status_code == 202


def _decided_in_distress(store: FakeStore, reference: str) -> None:
    """The router's outcome for a person who said they are in distress, as intake keeps it
    (APESA's name tells it; the distress reasons never reach intake)."""
    decision = RoutingOutcomeV1(
        decision_id=uuid.uuid4(), reference=reference, primary=AssociationId.APESA,
        decided_at=datetime.now(UTC),
        reasons=[Reason(code="need_listening", fr="vous souhaitez être écouté", en="listening")],
    )  # fmt: skip
    store.kept["decision"] = record_of("decision", decision)


def test_the_public_status_never_shows_distress_and_the_secret_opens_the_full_view(
    make_client, store
) -> None:
    """The reference alone: steps without the association (APESA would tell distress) nor
    reasons; with the erasure secret in `X-Erasure-Secret`: everything; a wrong secret: 403."""
    client = make_client()
    accepted = _submit(client)
    reference = accepted["reference"]
    _decided_in_distress(store, reference)
    url = f"/v1/submissions/{reference}"

    public = client.get(url)
    assert public.status_code == 200 and public.json()["full_view"] is False
    assert [s["code"] for s in public.json()["timeline"]] == ["received", "oriented"]
    assert "détresse" not in public.text and "apesa" not in public.text.lower()

    full = client.get(url, headers={"X-Erasure-Secret": accepted["erasure_secret"]}).json()
    assert full["full_view"] is True
    assert full["timeline"][1]["association_id"] == "apesa"
    assert full["timeline"][1]["reasons"] == ["vous souhaitez être écouté"]

    assert client.get(url, headers={"X-Erasure-Secret": "not-it"}).status_code == 403


def test_after_erasure_the_status_says_erased_and_nothing_else(make_client, store) -> None:
    """Once erased, the status is "received" then "erased", in the public and the full view:
    the decision, its association and its distress reason are gone from the store."""
    client = make_client()
    accepted = _submit(client)
    reference, secret = accepted["reference"], accepted["erasure_secret"]
    _decided_in_distress(store, reference)
    url = f"/v1/submissions/{reference}"
    assert client.post(f"{url}/erasure", json={"secret": secret}).status_code == 202

    for headers in ({}, {"X-Erasure-Secret": secret}):
        status = client.get(url, headers=headers).json()
        assert status["status"] == "erased"
        assert [s["code"] for s in status["timeline"]] == ["received", "erased"]
        assert all(s["reasons"] == [] and s["association_id"] is None for s in status["timeline"])
    assert store.kept == {}


def test_a_portal_on_another_origin_may_send_the_erasure_secret(make_client) -> None:
    """The configured portal origin may send `X-Erasure-Secret` from a browser (the erasure
    and the full view)."""
    client = make_client(cors_origins="https://portail.example.org")
    preflight = client.options(
        "/v1/submissions/RB-7K3M-Q9XA-2DFE-W8NB",
        headers={"Origin": "https://portail.example.org", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "x-erasure-secret"},
    )  # fmt: skip
    assert preflight.status_code == 200, preflight.text
    assert "x-erasure-secret" in preflight.headers["access-control-allow-headers"].lower()
