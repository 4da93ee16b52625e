"""Withdrawal and erasure: a secret shown once at submission, `POST …/erasure` with it."""

import hashlib
from datetime import timedelta

import pytest

from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE
from rebond_contracts.topics import ERASURES
from rebond_intake.store import SqlStatusStore, Submission

from .test_store import T0


def _submit(client) -> dict:
    reply = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
    assert reply.status_code == 202
    return reply.json()


def test_the_secret_is_given_once_and_only_its_hash_is_kept(make_client, store) -> None:
    """The 202 carries an erasure secret; the store keeps its sha256, never the secret."""
    accepted = _submit(make_client())
    secret = accepted["erasure_secret"]
    assert len(secret) >= 32
    assert accepted["erasure_url"] == f"/v1/submissions/{accepted['reference']}/erasure"
    kept = store.secrets[accepted["reference"]]
    assert kept == hashlib.sha256(secret.encode()).hexdigest() and secret not in kept


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


async def test_sql_store_keeps_secret_hashes_and_expires_idempotency_rows(tmp_path) -> None:
    """SQLite: a secret hash replaces the previous one; old idempotency keys expire."""
    store = SqlStatusStore(f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")
    await store.start()
    try:
        old = Submission("RB-AAAA-0000-0000-0001", T0, "e1", "key-old-123", "h", True)
        new = Submission(
            "RB-AAAA-0000-0000-0002", T0 + timedelta(days=40), "e2", "key-new-1", "h", True
        )
        await store.claim(old, "a" * 64)
        await store.claim(new, "c" * 64)
        await store.set_secret(old.reference, "b" * 64, T0)
        assert await store.secret_hash(old.reference) == "b" * 64
        assert await store.secret_hash(new.reference) == "c" * 64

        assert await store.expire(T0 + timedelta(days=30)) == 1

        kept_old = await store.submission(old.reference)
        assert kept_old is not None and kept_old.idempotency_key is None
        assert (await store.submission(new.reference)).idempotency_key == "key-new-1"
    finally:
        await store.close()


def test_a_replay_of_the_key_gives_a_new_secret_and_voids_the_old(make_client, publisher) -> None:
    """The same key and body again: the new secret erases, the previous one no longer does;
    a 409 (same key, other answers) changes nothing."""
    client = make_client()
    key = {"Idempotency-Key": "erasure-replay-key"}
    first = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key).json()
    again = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key).json()
    changed = {**EXAMPLE_QUESTIONNAIRE, "distress": "yes"}
    other = client.post("/v1/submissions", json=changed, headers=key)
    assert other.status_code == 409 and again["reference"] == first["reference"]
    url = f"/v1/submissions/{first['reference']}/erasure"
    assert client.post(url, json={"secret": first["erasure_secret"]}).status_code == 403
    assert client.post(url, json={"secret": again["erasure_secret"]}).status_code == 202
