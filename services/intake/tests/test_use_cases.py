"""The use cases of `rebond_intake.submissions` on fakes (no HTTP, no Kafka, no database): each
input and state of the ports, and the outcome it gives."""

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE, QuestionnaireV1
from rebond_intake.erasure import erasure_secret
from rebond_intake.resources import RESOURCES
from rebond_intake.submissions import (
    IDEMPOTENCY_NAMESPACE,
    Accepted,
    Erased,
    KeyReused,
    NotAccepted,
    Submissions,
    Timeline,
    UnknownReference,
    WrongSecret,
)
from rebond_intake.timeline import received

from .conftest import FakePublisher, FakeStore

KEY = "erasure-key-of-the-use-case-tests-32+"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
REFERENCES = ["RB-0000-0000-0000-0001", "RB-0000-0000-0000-0002", "RB-0000-0000-0000-0003"]
CALM = QuestionnaireV1.model_validate(EXAMPLE_QUESTIONNAIRE)
DISTRESSED = QuestionnaireV1.model_validate({**EXAMPLE_QUESTIONNAIRE, "distress": "yes"})


class Intake:
    """The use cases on fakes, with a clock at T0 and references handed out in order."""

    def __init__(self, *, timeout_s: float = 5.0) -> None:
        self.store = FakeStore()
        self.publisher = FakePublisher()
        references: Iterator[str] = iter(REFERENCES)
        self.use = Submissions(
            self.store, self.publisher, erasure_key=KEY, publish_timeout_s=timeout_s,
            clock=lambda: T0, new_reference=lambda: next(references),
        )  # fmt: skip

    def replica(self) -> Submissions:
        """Another replica on the same store and Kafka: no memory of what this one accepted."""
        return Submissions(
            self.store, self.publisher, erasure_key=KEY, publish_timeout_s=5.0,
            clock=lambda: T0 + timedelta(minutes=1), new_reference=lambda: REFERENCES[2],
        )  # fmt: skip


@pytest.mark.parametrize(
    ("questionnaire", "key", "publisher", "store_down", "expected"),
    [
        (CALM, None, "up", False, Accepted(REFERENCES[0], erasure_secret(KEY, REFERENCES[0]), None)),
        (DISTRESSED, None, "up", False,
         Accepted(REFERENCES[0], erasure_secret(KEY, REFERENCES[0]), RESOURCES)),
        (CALM, "key-of-the-table", "up", False,
         Accepted(REFERENCES[0], erasure_secret(KEY, REFERENCES[0]), None)),
        (CALM, None, "down", False, NotAccepted("KafkaConnectionError")),
        (CALM, None, "silent", False, NotAccepted("TimeoutError")),
        (CALM, None, "up", True, Accepted(REFERENCES[0], erasure_secret(KEY, REFERENCES[0]), None)),
        (CALM, "key-of-the-table", "up", True, NotAccepted("store: OperationalError")),
    ],
    ids=["keyless", "distress", "keyed", "kafka-down", "kafka-silent", "keyless-store-down",
         "keyed-store-down"],
)  # fmt: skip
async def test_a_submission_and_its_outcome(
    questionnaire: QuestionnaireV1, key: str | None, publisher: str, store_down: bool,
    expected: Any,
) -> None:  # fmt: skip
    """Kafka's acknowledgement alone, within the publish timeout, makes it accepted, with the
    derived erasure secret and, for a person in distress, the crisis resources; a keyless
    submission needs no store."""
    intake = Intake(timeout_s=0.2)
    intake.publisher.down, intake.publisher.silent = publisher == "down", publisher == "silent"
    intake.store.down = store_down
    assert await intake.use.submit(questionnaire, key) == expected
    published = [(e.subject, e.time) for e in intake.publisher.events]
    assert published == ([(REFERENCES[0], T0)] if isinstance(expected, Accepted) else [])


async def test_a_keyed_submission_publishes_the_event_its_key_names() -> None:
    """The event id derives from the key, and the claim holds the reference, time and the
    hash of the answers."""
    intake = Intake()
    await intake.use.submit(CALM, "key-of-the-event")
    [event] = intake.publisher.events
    assert event.id == str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, "key-of-the-event"))
    [claim] = intake.store.submissions.values()
    assert (claim.reference, claim.received_at, claim.event_id) == (REFERENCES[0], T0, event.id)
    assert claim.body_hash == hashlib.sha256(CALM.model_dump_json().encode()).hexdigest()


async def test_the_same_key_again() -> None:
    """Same key and answers: the same reference, replayed, nothing sent again; other answers:
    KeyReused, nothing sent."""
    intake = Intake()
    first = await intake.use.submit(CALM, "key-used-twice")
    again = await intake.use.submit(CALM, "key-used-twice")
    other = await intake.use.submit(DISTRESSED, "key-used-twice")
    assert isinstance(first, Accepted) and not first.replayed
    assert again == Accepted(first.reference, first.erasure_secret, None, replayed=True)
    assert other == KeyReused()
    assert len(intake.publisher.events) == 1


async def test_a_key_whose_publish_failed_publishes_its_claim_on_the_retry() -> None:
    """Kafka down: NotAccepted, the claim stays; the retry sends the claimed reference, event
    id and time, once."""
    intake = Intake()
    intake.publisher.down = True
    assert isinstance(await intake.use.submit(CALM, "key-retried-later"), NotAccepted)
    intake.publisher.down = False
    retried = await intake.use.submit(CALM, "key-retried-later")
    [claim] = intake.store.submissions.values()
    assert isinstance(retried, Accepted) and retried.reference == claim.reference
    assert [(e.subject, e.id, e.time) for e in intake.publisher.events] == [
        (claim.reference, claim.event_id, T0)
    ]


async def test_a_replay_on_another_replica_sends_only_what_intake_has_not_read_back() -> None:
    """Another replica gets the key: before the consumer read the event back it sends the same
    event again (same id); after, it sends nothing."""
    intake = Intake()
    await intake.use.submit(CALM, "key-on-two-replicas")
    other = intake.replica()
    assert isinstance(await other.submit(CALM, "key-on-two-replicas"), Accepted)
    [first, second] = intake.publisher.events
    assert (second.id, second.subject) == (first.id, first.subject)
    intake.store.kept[first.id] = received(first.id, first.subject, T0)  # read back
    replayed = await intake.replica().submit(CALM, "key-on-two-replicas")
    assert isinstance(replayed, Accepted) and replayed.replayed
    assert len(intake.publisher.events) == 2


async def accepted(intake: Intake) -> Accepted:
    outcome = await intake.use.submit(CALM)
    assert isinstance(outcome, Accepted)
    return outcome


@pytest.mark.parametrize(
    ("reference", "secret", "expected"),
    [
        ("not-a-reference", "x", UnknownReference()),
        (REFERENCES[1], "not-its-secret", UnknownReference()),
        (REFERENCES[0], "not-its-secret", WrongSecret()),
        (REFERENCES[0], erasure_secret(KEY, REFERENCES[0]), Erased(REFERENCES[0], 11)),
        # Derived: a replica that never saw the reference checks it all the same.
        (REFERENCES[1], erasure_secret(KEY, REFERENCES[1]), Erased(REFERENCES[1], 11)),
    ],
    ids=["malformed", "unknown", "wrong-secret", "right-secret", "right-secret-elsewhere"],
)
async def test_an_erasure_request_and_its_outcome(
    reference: str, secret: str, expected: Any
) -> None:
    """Only the reference's secret erases; a wrong one is told apart from an unknown reference
    only for a reference intake accepted."""
    intake = Intake()
    await accepted(intake)
    assert await intake.use.erase(reference, secret) == expected
    erased = isinstance(expected, Erased)
    assert [e.subject for e in intake.publisher.erasures] == ([reference] if erased else [])
    assert (reference in intake.store.erased) is erased


async def test_an_older_random_secret_still_erases() -> None:
    """A submission from before secrets were derived: the hash its store kept is checked."""
    intake = Intake()
    intake.store.secrets[REFERENCES[2]] = hashlib.sha256(b"an-old-random-secret").hexdigest()
    assert await intake.use.erase(REFERENCES[2], "another-secret") == WrongSecret()
    assert await intake.use.erase(REFERENCES[2], "an-old-random-secret") == Erased(
        REFERENCES[2], 11
    )


@pytest.mark.parametrize("failing", ["kafka", "store"])
async def test_an_erasure_that_kafka_or_the_store_refused_is_not_done(failing: str) -> None:
    """Kafka down: nothing published, nothing erased; the store down: NotAccepted (the person
    asks again, and the same event id is published again)."""
    intake = Intake()
    done = await accepted(intake)
    intake.publisher.down, intake.store.down = failing == "kafka", failing == "store"
    outcome = await intake.use.erase(done.reference, done.erasure_secret)
    assert isinstance(outcome, NotAccepted)
    assert intake.store.erased == {}


async def test_the_erasure_keeps_the_time_the_submission_was_received() -> None:
    """Erased right after the 202 (the consumer has not read it back yet): the tombstone keeps
    the time of reception this replica noted."""
    intake = Intake()
    done = await accepted(intake)
    await intake.use.erase(done.reference, done.erasure_secret)
    assert intake.store.erased[done.reference] == (T0, T0)


@pytest.mark.parametrize(
    ("reference", "secret", "expected"),
    [
        ("not-a-reference", None, UnknownReference()),
        (REFERENCES[1], None, UnknownReference()),
        (REFERENCES[0], "not-its-secret", WrongSecret()),
        (REFERENCES[0], None, "public"),
        (REFERENCES[0], erasure_secret(KEY, REFERENCES[0]), "full"),
    ],
    ids=["malformed", "unknown", "wrong-secret", "public", "full"],
)
async def test_a_status_request_and_its_outcome(
    reference: str, secret: str | None, expected: Any
) -> None:
    """The reference alone opens the public view, its secret the full one; right after the
    202 the timeline says received."""
    intake = Intake()
    await accepted(intake)
    outcome = await intake.use.status(reference, "fr", secret)
    if isinstance(expected, str):
        assert isinstance(outcome, Timeline)
        assert (outcome.status, outcome.full_view) == ("received", expected == "full")
        assert [step.code for step in outcome.steps] == ["received"]
    else:
        assert outcome == expected


async def test_a_status_request_while_the_store_is_down_is_not_answered() -> None:
    """The store unreachable: NotAccepted (503), never an empty timeline."""
    intake = Intake()
    done = await accepted(intake)
    intake.store.down = True
    assert isinstance(await intake.use.status(done.reference, "fr"), NotAccepted)
