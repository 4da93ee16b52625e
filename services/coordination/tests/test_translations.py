"""The Kafka adapter's translations, without a broker: each outbox message becomes the event the
router reads (topic, key, stable id), and each event read becomes the console's fact."""

import uuid
from datetime import UTC, date, datetime

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    CaseClosedV1,
    DirectoryOverrideV1,
    OutcomeKind,
    ReferralOutcomeV1,
    ReferralStatus,
    ReferralStatusV1,
    UnroutedReferralV1,
)
from rebond_contracts.topics import ASSIGNMENTS, OVERRIDES, responses
from rebond_coordination.kafka import case_queued, outbound_event, status_changed
from rebond_coordination.ports import CaseClosed, DirectoryOverride, OutcomeRecorded

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
REFERENCE = "RB-AAAA-BBBB-CCCC-DDDD"


def test_a_closure_goes_to_the_assignments_topic_keyed_by_reference() -> None:
    """A closure is a CaseClosedV1 on coordination.assignments, its id the message's own, so a
    retry after a crash is one event."""
    message_id = str(uuid.uuid4())
    message = CaseClosed(
        message_id=message_id, at=AT, reference=REFERENCE, outcome="unreachable",
        coordinator_id="staff-1",
    )  # fmt: skip
    topic, event = outbound_event(message)
    assert topic is ASSIGNMENTS and event.subject == REFERENCE and event.id == message_id
    assert event.data == CaseClosedV1(
        closure_id=uuid.UUID(message_id), reference=REFERENCE, outcome="unreachable",
        closed_by="staff-1", closed_at=AT,
    )  # fmt: skip
    assert outbound_event(message)[1].id == event.id


def test_an_override_is_keyed_by_its_association_and_leaves_unset_values_unset() -> None:
    """An override is keyed by association (the router keeps the latest of each), with None
    for what the coordinator left unchanged."""
    message = DirectoryOverride(
        message_id=str(uuid.uuid4()), at=AT, association_id="re-creer", weekly_capacity=0,
        set_by="staff-1",
    )  # fmt: skip
    topic, event = outbound_event(message)
    assert topic is OVERRIDES and event.subject == "re-creer"
    assert isinstance(event.data, DirectoryOverrideV1)
    assert (event.data.paused, event.data.weekly_capacity) == (None, 0)


def test_the_consoles_outcomes_are_the_contracts() -> None:
    """ "Orientée ailleurs" is the contract's `redirected`, on responses.<association>."""
    message = OutcomeRecorded(
        message_id=str(uuid.uuid4()), at=AT, referral_id=str(uuid.uuid4()), reference=REFERENCE,
        association_id="second-souffle", outcome="redirected_elsewhere", on=date(2026, 12, 7),
    )  # fmt: skip
    topic, event = outbound_event(message)
    assert topic.name == responses(AssociationId.SECOND_SOUFFLE).name
    assert isinstance(event.data, ReferralOutcomeV1)
    assert event.data.outcome is OutcomeKind.REDIRECTED and event.subject == REFERENCE


def test_a_follow_up_due_status_is_read_without_error() -> None:
    """The router's new `follow_up_due` status is a fact the console takes (and ignores in the
    inbox), not a record it fails on."""
    event = ReferralStatusV1.model_validate({
        "reference": REFERENCE, "referral_id": str(uuid.uuid4()),
        "association_id": "60000-rebonds", "status": ReferralStatus.FOLLOW_UP_DUE.value,
        "at": AT.isoformat(),
    })  # fmt: skip
    assert status_changed(event).status == "follow_up_due"


def test_a_queue_case_keeps_the_shared_contact_and_department() -> None:
    """The contact and department the person shared with the grouping reach the case; without
    them the case has none."""
    base = {
        "reference": REFERENCE, "stage": "after_liquidation", "region": "75",
        "needs": ["mentoring"], "cause": "follow_up_not_contacted", "rule_set_version": "t",
        "at": AT.isoformat(),
    }  # fmt: skip
    shared = UnroutedReferralV1.model_validate({
        **base, "department": "33",
        "contact": {"first_name": "Claire", "phone": "0612345678", "preferred_channel": "phone"},
    })  # fmt: skip
    fact = case_queued(shared)
    assert fact.contact is not None and fact.contact.phone == "0612345678"
    assert (fact.department, fact.cause.value) == ("33", "not_contacted")
    assert case_queued(UnroutedReferralV1.model_validate(base)).contact is None
