"""The answer event shared by the notifier's links and the console's inbox."""

import uuid
from datetime import UTC, date, datetime

from rebond_contracts.answers import answer_event, answer_event_id, outcome_event
from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import Answer, OutcomeKind, ReferralOutcomeV1, ReferralResponseV1
from rebond_contracts.topics import responses


def test_the_answer_event_id_is_the_notifiers_link_id() -> None:
    """The id is the one the notifier's links have always given (uuid5 of referral:answer in
    its namespace), so answers already published and new ones are recognised as the same."""
    referral = uuid.UUID("6f1c2f8e-8d7a-4c55-9a43-0b6e0c1f9a10")
    expected = uuid.uuid5(uuid.UUID("1d0b3c0e-58e2-4f8e-9a0e-6a4f3f2d9c21"), f"{referral}:accept")
    assert answer_event_id(referral, "accept") == str(expected)


def test_an_answer_event_reads_back_from_its_topic() -> None:
    """The event built for `responses.<id>` is read back by that topic's contract unchanged."""
    response = ReferralResponseV1(
        referral_id=uuid.uuid4(), reference="RB-AAAA-BBBB-CCCC-DDDD", answer=Answer.ACCEPT,
        answered_at=datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
    )  # fmt: skip
    event = answer_event(AssociationId.APESA, response)
    headers = [(name, text.encode()) for name, text in event.kafka_headers().items()]
    read = responses(AssociationId.APESA).read(event.kafka_value(), headers)
    assert read.id == answer_event_id(response.referral_id, "accept")
    assert read.data == response
    assert read.subject == response.reference


def test_an_outcome_event_reads_back_with_one_id_per_referral_and_outcome() -> None:
    """An outcome is read back by `responses.<id>` as its second kind, keyed by reference, and
    the same outcome of the same referral always has the same id (a retry is one event)."""
    outcome = ReferralOutcomeV1(
        referral_id=uuid.uuid4(), reference="RB-AAAA-BBBB-CCCC-DDDD",
        outcome=OutcomeKind.CONTACTED, on=date(2026, 12, 7),
        recorded_at=datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
    )  # fmt: skip
    event = outcome_event(AssociationId.APESA, outcome)
    headers = [(name, text.encode()) for name, text in event.kafka_headers().items()]
    read = responses(AssociationId.APESA).read(event.kafka_value(), headers)
    assert read.type == "fr.rebond.referral.outcome"
    assert read.data == outcome and read.subject == outcome.reference
    again = outcome_event(AssociationId.APESA, outcome.model_copy(update={"comment": "Rappel"}))
    assert again.id == event.id
    other = outcome.model_copy(update={"outcome": OutcomeKind.CLOSED})
    assert outcome_event(AssociationId.APESA, other).id != event.id
