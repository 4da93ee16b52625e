"""The shared contracts: envelope, questionnaire rules, topic registry, schema versions."""

import copy
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import Envelope, EnvelopeError
from rebond_contracts.geography import REGION_OF_DEPARTMENT
from rebond_contracts.payloads import (
    DISTRESS_REASON_CODES,
    REFERENCE_PATTERN,
    InviteeV1,
    QuestionnaireCompletedV1,
    RoutingOutcomeV1,
    new_reference,
)
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE, QuestionnaireV1
from rebond_contracts.schemas import payload_versions, stale
from rebond_contracts.topics import (
    DAY_MS,
    DECISIONS,
    HOUR_MS,
    INVITEES,
    OUTCOMES,
    OVERRIDES,
    QUESTIONNAIRES,
    Service,
    all_topics,
    dead_letter_event,
    dead_letters,
    erasure_window_days,
    erasure_window_ms,
    find,
    referrals,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def answers(**changes: Any) -> dict[str, Any]:
    """The questionnaire.md example with dotted-path changes (None deletes the field)."""
    data = copy.deepcopy(EXAMPLE_QUESTIONNAIRE)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = data
        for part in parents:
            node = node[part]  # type: ignore[assignment]
        if value is None:
            node.pop(leaf, None)  # type: ignore[union-attr]
        else:
            node[leaf] = value  # type: ignore[index]
    return data


def error_types(data: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        QuestionnaireV1.model_validate(data)
    return {error["type"] for error in caught.value.errors()}


def test_questionnaire_example_of_the_contract_is_valid() -> None:
    """The example in shared/questionnaire.md is accepted as it stands."""
    assert QuestionnaireV1.model_validate(EXAMPLE_QUESTIONNAIRE).situation.department == "33"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"surprise": "field"}, "extra_forbidden"),
        ({"distress": "maybe"}, "enum"),
        ({"situation__stage": "bankrupt"}, "enum"),
        ({"situation__region": "99"}, "literal_error"),
        ({"situation__department": "20"}, "unknown_department"),
        ({"situation__department": "75"}, "department_region_mismatch"),
        ({"situation__sector": "Z"}, "literal_error"),
        ({"needs": []}, "too_short"),
        ({"needs": ["mentoring", "mentoring"]}, "needs_not_distinct"),
        ({"message": "x" * 601}, "string_too_long"),
        ({"contact": None}, "contact_required"),
        ({"consents__share_with_association": False}, "contact_without_consent"),
        ({"contact__preferred_channel": "phone"}, "preferred_channel_empty"),
        ({"contact__email": "not-an-email"}, "value_error"),
        ({"contact__phone": "12345"}, "string_pattern_mismatch"),
        ({"contact__first_name": ""}, "string_too_short"),
        ({"consents__statistics": "yes"}, "bool_type"),
        ({"consents__event_invitations": None}, "missing"),
        ({"locale": "de"}, "enum"),
    ],
)
def test_questionnaire_rejects_what_the_contract_forbids(
    changes: dict[str, Any], expected: str
) -> None:
    """Each rule of the v1 contract rejects its bad input with a stable error type."""
    assert expected in error_types(answers(**changes))


@pytest.mark.parametrize(
    "phone", ["06 12 34 56 78", "0612345678", "01.23.45.67.89", "+33612345678"]
)
def test_french_and_e164_phones_are_accepted(phone: str) -> None:
    """A phone in French or E.164 form satisfies a phone preference."""
    data = answers(contact__phone=phone, contact__preferred_channel="phone", contact__email=None)
    assert QuestionnaireV1.model_validate(data).contact.phone == phone  # type: ignore[union-attr]


def test_every_department_belongs_to_exactly_one_known_region() -> None:
    """101 departments (96 metropolitan, 5 overseas) plus Saint-Pierre-et-Miquelon map to regions."""
    assert len(REGION_OF_DEPARTMENT) == 102
    assert REGION_OF_DEPARTMENT["2A"] == "94" and REGION_OF_DEPARTMENT["974"] == "04"


def test_envelope_travels_as_cloudevents_binary_headers() -> None:
    """An event written to Kafka reads back identical, its attributes in ce_* headers."""
    data = QuestionnaireCompletedV1.model_validate(
        json.loads((GOLDEN / QUESTIONNAIRES.event_type / "v1" / "example.json").read_text())["data"]
    )
    event = QUESTIONNAIRES.envelope(data, subject=data.reference, correlationid=data.reference)
    headers = [(name, value.encode()) for name, value in event.kafka_headers().items()]
    assert dict(headers)["ce_subject"] == data.reference.encode()
    assert dict(headers)["ce_specversion"] == b"1.0"
    assert QUESTIONNAIRES.read(event.kafka_value(), headers) == event


def test_reading_a_record_of_another_type_or_version_is_refused() -> None:
    """A record whose ce_type or ce_schemaversion does not match the topic is an EnvelopeError."""
    data = json.loads((GOLDEN / QUESTIONNAIRES.event_type / "v1" / "example.json").read_text())
    event = QUESTIONNAIRES.envelope(
        QuestionnaireCompletedV1.model_validate(data["data"]), subject="s", correlationid="c"
    )
    headers = event.kafka_headers()
    for name, bad, says in (
        ("ce_type", "fr.rebond.other", "not b'fr.rebond.other'"),
        ("ce_schemaversion", "2", "unsupported schema version b'2'"),
    ):
        tampered = [(k, (bad if k == name else v).encode()) for k, v in headers.items()]
        with pytest.raises(EnvelopeError, match=says):
            QUESTIONNAIRES.read(event.kafka_value(), tampered)
    with pytest.raises(EnvelopeError, match="ce_id"):
        QUESTIONNAIRES.read(
            event.kafka_value(), [(k, v.encode()) for k, v in headers.items() if k != "ce_id"]
        )
    with pytest.raises(EnvelopeError, match="Invalid JSON"):
        QUESTIONNAIRES.read(b"not json", [(k, v.encode()) for k, v in headers.items()])


def test_registry_has_one_writer_per_topic_and_a_topic_per_association() -> None:
    """Topic names are unique, each has one writer, and each association has its own topics."""
    names = [topic.name for topic in all_topics()]
    assert len(names) == len(set(names))
    assert {f"referrals.{a}" for a in AssociationId} <= set(names)
    assert {f"responses.{a}" for a in AssociationId} <= set(names)
    assert referrals(AssociationId.SOIXANTE_MILLE_REBONDS).name == "referrals.60000-rebonds"
    assert find("questionnaires.completed").writer is Service.INTAKE
    assert find("routing.decisions").writer is Service.ROUTER
    assert all(find(f"referrals.{a}").writer is Service.NOTIFIER for a in AssociationId)
    assert QUESTIONNAIRES.partitions >= 3 and DECISIONS.partitions >= 3


def test_a_topic_refuses_a_payload_of_another_type() -> None:
    """A service cannot wrap a decision as a questionnaire event."""
    data = json.loads((GOLDEN / DECISIONS.event_type / "v1" / "example.json").read_text())["data"]
    with pytest.raises(TypeError):
        QUESTIONNAIRES.envelope(
            DECISIONS.payload.model_validate(data), subject="s", correlationid="c"
        )


def test_json_schema_snapshots_match_the_models() -> None:
    """Every model matches its committed JSON Schema; change one and `rebond-schemas --write`."""
    assert stale() == []


GOLDEN_FILES = sorted(GOLDEN.glob("*/v*/*.json"))


def test_every_payload_version_has_golden_examples() -> None:
    """No event type and version goes without a frozen example."""
    covered = {(path.parts[-3], int(path.parts[-2][1:])) for path in GOLDEN_FILES}
    assert covered == set(payload_versions())


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: "/".join(p.parts[-3:]))
def test_golden_events_of_each_version_keep_parsing(path: Path) -> None:
    """A frozen example of version N parses with the model registered for version N.

    A model changed incompatibly (a field renamed, removed or newly required, a value no longer
    allowed) breaks this until the topic gets a new schema version and the old model is kept.
    """
    event = json.loads(path.read_text())
    model = payload_versions()[(event["type"], event["schemaversion"])]
    parsed = Envelope[model].model_validate(event)  # type: ignore[valid-type]
    assert json.loads(parsed.model_dump_json(exclude_unset=True))["data"] == event["data"]


@dataclass
class _Record:
    topic: str = "referrals.status"
    partition: int = 2
    offset: int = 41
    key: bytes | None = b"RB-7K3M-Q9XA-2DFE-W8NB"
    value: bytes | None = b"\xffnot json"
    headers: tuple[tuple[str, bytes], ...] = (("ce_correlationid", b"corr-1"),)


def test_a_dead_letter_keeps_the_original_and_reads_like_any_event() -> None:
    """The original key, value and headers travel inside; the record reads back from its topic."""
    event = dead_letter_event(Service.INTAKE, _Record(), "<root>: Invalid JSON")
    again = dead_letter_event(Service.INTAKE, _Record(), "<root>: Invalid JSON")
    topic = dead_letters(Service.INTAKE)
    headers = [(k, v.encode()) for k, v in event.kafka_headers().items()]
    read = topic.read(event.kafka_value(), headers)
    assert read.id == again.id and read.subject == "RB-7K3M-Q9XA-2DFE-W8NB"
    assert read.correlationid == "corr-1" and read.type == topic.event_type
    assert read.data.offset == 41 and read.data.value == "\ufffdnot json"
    assert read.data.headers == {"ce_correlationid": "corr-1"}
    assert read.data.error == "<root>: Invalid JSON"


@pytest.mark.parametrize(
    "topic", ["questionnaires.completed", "routing.decisions", "referrals.apesa", "not.registered"]
)
def test_a_dead_letter_points_to_a_record_with_personal_data_without_copying_it(
    topic: str,
) -> None:
    """From a topic with personal data (or an unknown one) the dead letter says where the
    record is, never what it holds: the dead letters' longer retention keeps no one's answers."""
    record = _Record(topic=topic, value=b'{"contact": {"email": "claire@example.org"}}')
    letter = dead_letter_event(Service.ROUTER, record, "contact: boom").data
    assert letter.value is None
    assert (letter.topic, letter.partition, letter.offset) == (topic, 2, 41)
    assert "claire" not in dead_letter_event(Service.ROUTER, record, "x").kafka_value().decode()


def test_a_referral_topic_carries_a_withdrawal_notice_with_its_own_type() -> None:
    """`referrals.<id>` reads both the offer and the withdrawal notice, each by its ce_type."""
    from rebond_contracts.payloads import ReferralWithdrawnV1

    topic = referrals(AssociationId.SOIXANTE_MILLE_REBONDS)
    data = json.loads((GOLDEN / "fr.rebond.referral.withdrawn" / "v1" / "example.json").read_text())
    notice = topic.envelope(
        ReferralWithdrawnV1.model_validate(data["data"]), subject="s", correlationid="c"
    )
    assert notice.type == "fr.rebond.referral.withdrawn"
    headers = [(k, v.encode()) for k, v in notice.kafka_headers().items()]
    assert isinstance(topic.read(notice.kafka_value(), headers).data, ReferralWithdrawnV1)


def test_every_topic_has_a_retention_and_personal_topics_keep_little() -> None:
    """Each topic declares retention.ms or is compacted (the directory's overrides, no personal
    data); those with personal data keep it at most as long as an association has to answer
    (10 days), and roll their segments every 12 hours."""
    assert all(bool(topic.retention_ms) != topic.compacted for topic in all_topics())
    assert [t.name for t in all_topics() if t.compacted] == ["directory.overrides"]
    assert not OVERRIDES.personal_data
    personal = {t.name for t in all_topics() if t.personal_data}
    assert {
        "questionnaires.completed", "routing.decisions", "routing.invitees", "referrals.unrouted",
        "conferences.registrations", "conferences.invitations", "community.mail",
        "peers.requests", *(f"referrals.{a}" for a in AssociationId),
    } == personal  # fmt: skip
    for topic in all_topics():
        if topic.personal_data:
            assert (topic.retention_ms or 0) <= 10 * DAY_MS and topic.segment_ms == 12 * HOUR_MS
        else:
            assert topic.segment_ms is None


def test_the_erasure_window_follows_from_the_registry() -> None:
    """After an erasure every copy on Kafka is gone within the longest retention of a topic
    with personal data, plus a segment's span and the broker's check: 10 days + 12 h + 5 min,
    promised as 11 days."""
    assert erasure_window_ms() == 10 * DAY_MS + 12 * HOUR_MS + 5 * 60 * 1000
    assert erasure_window_days() == 11


def test_the_status_topic_refuses_a_reason_that_reveals_distress() -> None:
    """`RoutingOutcomeV1` (read by intake) cannot carry the distress reasons, whoever builds it."""
    data = json.loads((GOLDEN / OUTCOMES.event_type / "v1" / "example.json").read_text())["data"]
    for code in DISTRESS_REASON_CODES:
        tainted = {**data, "reasons": [*data["reasons"], {"code": code, "fr": "f", "en": "e"}]}
        with pytest.raises(ValidationError, match="reveal distress"):
            RoutingOutcomeV1.model_validate(tainted)


def test_intake_and_events_read_no_topic_with_contact_details_meant_for_associations() -> None:
    """routing.decisions (contact, message, distress answer) is read by the notifier alone;
    intake reads the outcomes (no personal data), events the invitees (what an invitation needs)."""
    assert DECISIONS.readers == (Service.NOTIFIER,)
    assert OUTCOMES.readers == (Service.INTAKE,) and not OUTCOMES.personal_data
    assert INVITEES.readers == (Service.EVENTS,)
    assert set(InviteeV1.model_fields) == {"reference", "contact", "decided_at"}


def test_references_spell_80_random_bits_in_crockford_base32() -> None:
    """References match the contract's pattern, differ, and use all 32 digits evenly."""
    references = [new_reference() for _ in range(4000)]
    assert all(re.fullmatch(REFERENCE_PATTERN, r) for r in references)
    assert len(set(references)) == len(references)
    digits = Counter("".join(r[3:].replace("-", "") for r in references))
    assert len(digits) == 32
    assert min(digits.values()) > 1600  # 2000 expected each: no digit is starved
