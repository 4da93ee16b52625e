"""The notifier on the real broker with a real SMTP server: registrations, invitations and
community mails published by the events service become one e-mail each to the person, never
two."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from rebond_contracts.payloads import (
    CommunityMailKind,
    CommunityMailV1,
    ErasureRequestedV1,
    RegistrationChange,
    RegistrationV1,
)
from rebond_contracts.topics import (
    COMMUNITY_MAIL,
    DELIVERIES,
    ERASURES,
    INVITATIONS,
    REFERRAL_STATUS,
    REGISTRATIONS,
    Service,
    dead_letters,
)
from rebond_notifier.app import Notifier
from rebond_notifier.store import FINAL, Delivery
from rebond_testing import TopicProbe
from rebond_testing.events import publish_event

from .conftest import (
    FAST_RETRIES,
    MailBox,
    make_invitation,
    make_registration,
    notifier_settings,
    running,
)

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
async def notifier(
    kafka_bootstrap: str, smtp_server: MailBox, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Notifier]:
    """A notifier with its own consumer groups and delivery log."""
    folder: Path = tmp_path_factory.mktemp("notifier-conferences")
    settings = notifier_settings(
        kafka_bootstrap, smtp_server, folder, "test-notifier-conf", **FAST_RETRIES
    )
    async with running(settings) as service:
        yield service


async def _send_registration(bootstrap: str, registration: RegistrationV1, event_id: str) -> None:
    """As the events service does: keyed and subject by the conference, correlated by registration."""
    event = REGISTRATIONS.envelope(
        registration, subject=str(registration.event_id),
        correlationid=str(registration.registration_id), id=event_id,
    )  # fmt: skip
    await publish_event(bootstrap, REGISTRATIONS.name, event, str(registration.event_id))


@pytest.mark.parametrize(
    ("change", "extra", "subject", "expected"),
    [
        (RegistrationChange.CONFIRMED, {}, "Inscription confirmée", ["calendar.ics", "annuler?token="]),
        (RegistrationChange.WAITLISTED, {"waitlist_position": 4}, "Liste d'attente", ["en position 4."]),
        (RegistrationChange.PROMOTED, {}, "Une place s'est libérée", ["elle est pour vous", "annuler?token="]),
        (RegistrationChange.CANCELLED, {"cancelled_by": "person"}, "Inscription annulée", ["bien annulée"]),
        (RegistrationChange.CANCELLED, {"cancelled_by": "organiser"}, "Conférence annulée", ["dû annuler"]),
        (RegistrationChange.EVENT_UPDATED, {}, "Changement pour la conférence", ["a modifié"]),
    ],
)  # fmt: skip
async def test_each_registration_change_gives_one_mail(
    kafka_bootstrap: str,
    notifier: Notifier,
    smtp_server: MailBox,
    change: RegistrationChange,
    extra: dict[str, object],
    subject: str,
    expected: list[str],
) -> None:
    """Each registration change on the real broker gives one e-mail to the person, with its news."""
    registration = make_registration(change, **extra)
    title = registration.conference.title
    event_id = str(uuid.uuid4())
    await _send_registration(kafka_bootstrap, registration, event_id)
    [mail] = await smtp_server.wait_for(title, 1, within_s=30)
    assert str(mail["To"]) == "claire@example.org"
    assert str(mail["Subject"]).startswith(subject)
    body = mail.get_content()
    assert "Bonjour Claire Martin," in body and "14 janvier 2027" in body
    for text in expected:
        assert text in body, text
    [row] = await _final_rows(notifier, event_id)
    assert (row.status, row.payload) == ("sent", None)  # the text is erased once sent


async def _final_rows(notifier: Notifier, key: str, within_s: float = 10) -> list[Delivery]:
    """The log's rows for `key` once none is pending any more (or after `within_s`)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        rows = await notifier.store.find(key)
        if (rows and all(r.status in FINAL for r in rows)) or (
            asyncio.get_running_loop().time() > deadline
        ):
            return rows
        await asyncio.sleep(0.05)


async def test_redelivered_registration_event_sends_no_second_mail(
    kafka_bootstrap: str, notifier: Notifier, smtp_server: MailBox
) -> None:
    """The same registration event read twice sends one e-mail; a later change still sends one."""
    registration = make_registration(RegistrationChange.CONFIRMED)
    title = registration.conference.title
    event_id = str(uuid.uuid4())
    await _send_registration(kafka_bootstrap, registration, event_id)
    await _send_registration(kafka_bootstrap, registration, event_id)  # redelivery
    # A later event of the same conference (same key, same partition) is read after it.
    update = registration.model_copy(update={"change": RegistrationChange.EVENT_UPDATED})
    await _send_registration(kafka_bootstrap, update, str(uuid.uuid4()))
    mails = await smtp_server.wait_for(title, 2, within_s=30)
    assert sorted(str(m["Subject"]).split(" : ")[0] for m in mails) == [
        "Changement pour la conférence",
        "Inscription confirmée",
    ]


async def test_invitation_gives_one_mail_and_a_delivery_outcome(
    kafka_bootstrap: str, notifier: Notifier, smtp_server: MailBox
) -> None:
    """An invitation, even redelivered, is one e-mail with the page link, and one `sent` outcome."""
    invitation = make_invitation()
    conference = invitation.conference
    async with TopicProbe(kafka_bootstrap, [DELIVERIES.name]) as watcher:
        event = INVITATIONS.envelope(
            invitation, subject=invitation.reference, correlationid=invitation.reference,
            id=str(invitation.invitation_id),
        )  # fmt: skip
        await publish_event(kafka_bootstrap, INVITATIONS.name, event, invitation.reference)
        await publish_event(kafka_bootstrap, INVITATIONS.name, event, invitation.reference)
        marker = make_invitation()  # same key, read after the redelivery
        marker = marker.model_copy(update={"reference": invitation.reference})
        marker_event = INVITATIONS.envelope(
            marker, subject=marker.reference, correlationid=marker.reference
        )
        await publish_event(kafka_bootstrap, INVITATIONS.name, marker_event, marker.reference)
        assert len(await smtp_server.wait_for(marker.conference.title, 1, within_s=30)) == 1
        [mail] = smtp_server.about(conference.title)
        assert str(mail["Subject"]) == f"Invitation : {conference.title}"
        assert str(conference.page_url) in mail.get_content()
        outcomes = await watcher.wait_for(invitation.reference, 2)
    assert len(outcomes) == 2  # one per invitation, none for the redelivery
    data = [json.loads(r.value) for r in outcomes]
    assert {(d["channel"], d["outcome"], d["referral_id"]) for d in data} == {
        ("person_email", "sent", None)
    }
    assert b"claire" not in b"".join(r.value for r in outcomes)  # no personal data


async def test_community_mail_read_twice_is_sent_once_as_written(
    kafka_bootstrap: str, notifier: Notifier, smtp_server: MailBox
) -> None:
    """A community mail published twice with the same id is one e-mail to its address, with
    the subject and text the events service wrote; the log keeps neither once it is sent."""
    volunteer = str(uuid.uuid4())
    mail = CommunityMailV1(
        mail_id=uuid.uuid4(), kind=CommunityMailKind.VOLUNTEER_CONFIRM,
        to="benevole@example.org", subject=f"Confirmez votre adresse {volunteer}",
        text="Bonjour Lina,\n\nMerci de proposer votre aide.\n\n---\n\nHello Lina,\n",
        at=datetime.now(UTC),
    )  # fmt: skip
    event = COMMUNITY_MAIL.envelope(
        mail, subject=volunteer, correlationid=volunteer, id=str(mail.mail_id)
    )
    await publish_event(kafka_bootstrap, COMMUNITY_MAIL.name, event, volunteer)
    await publish_event(kafka_bootstrap, COMMUNITY_MAIL.name, event, volunteer)  # redelivery
    marker = mail.model_copy(update={"mail_id": uuid.uuid4(), "subject": f"Fin {volunteer}"})
    marker_event = COMMUNITY_MAIL.envelope(marker, subject=volunteer, correlationid=volunteer)
    await publish_event(kafka_bootstrap, COMMUNITY_MAIL.name, marker_event, volunteer)  # read after
    assert len(await smtp_server.wait_for(f"Fin {volunteer}", 1, within_s=30)) == 1
    [sent] = smtp_server.about(f"Confirmez votre adresse {volunteer}")
    assert (str(sent["To"]), str(sent["Subject"])) == ("benevole@example.org", mail.subject)
    assert sent.get_content().replace("\r\n", "\n").strip() == mail.text.strip()
    [row] = await _final_rows(notifier, str(mail.mail_id))
    assert (row.status, row.kind, row.payload) == ("sent", "vol_confirm", None)


@pytest.mark.parametrize(
    "topic", [REGISTRATIONS, INVITATIONS, REFERRAL_STATUS, COMMUNITY_MAIL], ids=lambda t: t.name
)
async def test_unreadable_record_goes_to_the_dead_letter_topic(
    kafka_bootstrap: str, notifier: Notifier, topic
) -> None:  # type: ignore[no-untyped-def]
    """A record that is not a valid event goes to deadletter.notifier and the next one is read;
    the letter copies the value only from a topic without personal data."""
    key = f"poison-{uuid.uuid4().hex}"
    async with TopicProbe(kafka_bootstrap, [dead_letters(Service.NOTIFIER).name]) as watcher:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            headers = [("ce_type", topic.event_type.encode()), ("ce_schemaversion", b"1")]
            await producer.send_and_wait(
                topic.name, b"{not json", key=key.encode(), headers=headers
            )
            [letter] = await watcher.wait_for(key, 1, within_s=30)
        finally:
            await producer.stop()
    data = json.loads(letter.value)
    copied = None if topic.personal_data else "{not json"
    assert (data["service"], data["topic"], data["value"]) == ("notifier", topic.name, copied)


async def test_an_invitation_read_after_its_erasure_sends_nothing(
    kafka_bootstrap: str, notifier: Notifier, smtp_server: MailBox
) -> None:
    """The erasure is read first (`privacy.erasures` ahead of `conferences.invitations`, as
    after a lag or a replay): the person's invitation is not sent nor kept; another person's,
    behind it on the same partition, is."""
    invitation, marker = make_invitation(), make_invitation()
    erased = invitation.reference
    request = ErasureRequestedV1(reference=erased, requested_at=datetime.now(UTC))
    await publish_event(
        kafka_bootstrap, ERASURES.name,
        ERASURES.envelope(request, subject=erased, correlationid=erased), erased,
    )  # fmt: skip
    store = notifier.store
    deadline = asyncio.get_running_loop().time() + 30
    while not await store.erased_among([erased]):
        assert asyncio.get_running_loop().time() < deadline, "the erasure was not read"
        await asyncio.sleep(0.1)
    for late in (invitation, marker):  # keyed alike: read in this order
        event = INVITATIONS.envelope(
            late, subject=late.reference, correlationid=late.reference,
            id=str(late.invitation_id),
        )  # fmt: skip
        await publish_event(kafka_bootstrap, INVITATIONS.name, event, erased)
    assert len(await smtp_server.wait_for(marker.conference.title, 1, within_s=30)) == 1
    assert smtp_server.about(invitation.conference.title) == []
    assert await store.find(str(invitation.invitation_id)) == []


async def test_a_peer_introduction_read_after_its_persons_erasure_sends_nothing(
    kafka_bootstrap: str, notifier: Notifier, smtp_server: MailBox
) -> None:
    """The person's erasure is read first: an introduction filed under their reference (to the
    volunteer, carrying the person's contact) is not sent; a mail about a volunteer alone,
    behind it on the same partition, is."""
    erased = make_invitation().reference
    request = ErasureRequestedV1(reference=erased, requested_at=datetime.now(UTC))
    await publish_event(
        kafka_bootstrap, ERASURES.name,
        ERASURES.envelope(request, subject=erased, correlationid=erased), erased,
    )  # fmt: skip
    deadline = asyncio.get_running_loop().time() + 30
    while not await notifier.store.erased_among([erased]):
        assert asyncio.get_running_loop().time() < deadline, "the erasure was not read"
        await asyncio.sleep(0.1)
    introduction = CommunityMailV1(
        mail_id=uuid.uuid4(), kind=CommunityMailKind.PEER_INTRODUCTION, to="pair@example.org",
        subject=f"Une mise en relation {erased}", text="Claire : claire@example.org",
        at=datetime.now(UTC), reference=erased,
    )  # fmt: skip
    marker = introduction.model_copy(
        update={"mail_id": uuid.uuid4(), "kind": CommunityMailKind.VOLUNTEER_CONFIRM,
                "subject": f"Fin {erased}", "reference": None}
    )  # fmt: skip
    for mail in (introduction, marker):
        event = COMMUNITY_MAIL.envelope(mail, subject=erased, correlationid=erased,
                                        id=str(mail.mail_id))  # fmt: skip
        await publish_event(kafka_bootstrap, COMMUNITY_MAIL.name, event, erased)
    assert len(await smtp_server.wait_for(f"Fin {erased}", 1, within_s=30)) == 1
    assert smtp_server.about(f"Une mise en relation {erased}") == []
    assert await notifier.store.find(str(introduction.mail_id)) == []
