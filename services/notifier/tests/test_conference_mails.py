"""The e-mails about the Conférences du rebond and the deliveries they call for (pure)."""

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from rebond_contracts.payloads import RegistrationChange
from rebond_contracts.topics import INVITATIONS, REGISTRATIONS
from rebond_notifier import messages, planning, templates
from rebond_notifier.store import Delivery, DeliveryStatus

from .conftest import make_conference, make_invitation, make_registration

PARIS_WINTER = timezone(timedelta(hours=1))
WHEN = "jeudi 14 janvier 2027, de 18 h 30 à 20 h 30"
CANCEL = "/annuler?token=t0k3n"
ICS = "/calendar.ics"


@pytest.mark.parametrize(
    ("change", "extra", "subject", "present", "absent"),
    [
        (
            RegistrationChange.CONFIRMED, {}, "Inscription confirmée",
            ["inscription est confirmée", WHEN, "12 place de la Bourse, Bordeaux", ICS, CANCEL],
            ["liste d'attente"],
        ),
        (
            RegistrationChange.WAITLISTED, {"waitlist_position": 3}, "Liste d'attente",
            ["liste d'attente, en position 3.", WHEN, CANCEL],
            ["est confirmée"],
        ),
        (
            RegistrationChange.PROMOTED, {}, "Une place s'est libérée",
            ["elle est pour vous", "inscription est confirmée", WHEN, ICS, CANCEL],
            ["liste d'attente"],
        ),
        (
            RegistrationChange.CANCELLED, {"cancelled_by": "person"}, "Inscription annulée",
            ["inscription est bien annulée", WHEN],
            [CANCEL, ICS, "organisateur"],
        ),
        (
            RegistrationChange.CANCELLED, {"cancelled_by": "organiser"}, "Conférence annulée",
            ["l'organisateur a dû annuler", WHEN],
            [CANCEL, ICS],
        ),
        (
            RegistrationChange.EVENT_UPDATED, {}, "Changement pour la conférence",
            ["a modifié la conférence", "Votre inscription tient toujours.", WHEN, ICS, CANCEL],
            ["liste d'attente"],
        ),
        (
            RegistrationChange.REMINDER, {}, "Rappel",
            ["inscrit·e approche", WHEN, ICS, CANCEL],
            ["liste d'attente", "annulée"],
        ),
        (
            RegistrationChange.EVENT_UPDATED, {"waitlist_position": 2}, "Changement",
            ["toujours sur la liste d'attente, en position 2.", CANCEL],
            ["tient toujours"],
        ),
    ],
)  # fmt: skip
def test_registration_mail_per_change(
    change: RegistrationChange,
    extra: dict[str, object],
    subject: str,
    present: list[str],
    absent: list[str],
) -> None:
    """Each registration change gives a French e-mail with the right news, date, place and links."""
    registration = make_registration(change, **extra)
    conference = registration.conference
    mail = templates.registration_mail(registration, conference.ics_url)
    assert mail.to == "claire@example.org"
    assert mail.subject.startswith(subject) and conference.title in mail.subject
    assert mail.text.startswith("Bonjour Claire Martin,")
    for text in present:
        assert text in mail.text, text
    for text in absent:
        assert text not in mail.text, text


def test_update_about_a_cancelled_conference_says_it_is_cancelled() -> None:
    """An `event_updated` whose conference is cancelled tells the person so, with no links."""
    registration = make_registration(
        RegistrationChange.EVENT_UPDATED, conference=make_conference(cancelled=True)
    )
    mail = templates.registration_mail(registration, registration.conference.ics_url)
    assert mail.subject.startswith("Conférence annulée")
    assert CANCEL not in mail.text and ICS not in mail.text


def test_invitation_mail_links_the_registration_page() -> None:
    """The invitation names the conference, when and where, and links its registration page."""
    invitation = make_invitation()
    conference = invitation.conference
    mail = templates.invitation_mail(invitation, conference.ics_url)
    assert (mail.to, mail.subject) == ("claire@example.org", f"Invitation : {conference.title}")
    assert mail.text.startswith("Bonjour Claire,")
    assert "dans votre département" in mail.text and WHEN in mail.text
    assert f"sur la page de la conférence : {conference.page_url}" in mail.text
    assert invitation.reference in mail.text


@pytest.mark.parametrize(
    ("starts", "ends", "expected"),
    [
        ((2027, 1, 14, 18, 30), (2027, 1, 14, 20, 30), WHEN),
        ((2027, 3, 1, 9, 0), (2027, 3, 1, 12, 5), "lundi 1er mars 2027, de 9 h 00 à 12 h 05"),
        (
            (2027, 6, 4, 18, 0), (2027, 6, 5, 17, 0),
            "du vendredi 4 juin 2027, 19 h 00, au samedi 5 juin 2027, 18 h 00",
        ),  # given at +01:00 but shown in Paris summer time (+02:00)
    ],
)  # fmt: skip
def test_dates_in_french_paris_time(
    starts: tuple[int, ...], ends: tuple[int, ...], expected: str
) -> None:
    """Dates read as a French person says them, in Paris time."""
    start = datetime(*starts, tzinfo=PARIS_WINTER)  # type: ignore[misc]
    end = datetime(*ends, tzinfo=PARIS_WINTER)  # type: ignore[misc]
    assert templates.when_fr(start, end) == expected


EVENT = "6f1c2a4e-8d0b-4c1e-9a57-3b2f1d7e9c10"


@pytest.mark.parametrize(
    ("ics_url", "page_url", "other", "expected"),
    [
        ("https://x.org/cal.ics", None, None, "https://x.org/cal.ics"),
        (None, f"https://r.org/evenements/{EVENT}", None, f"https://r.org/v1/events/{EVENT}/calendar.ics"),
        (None, f"https://r.org/app/evenements/{EVENT}", None, f"https://r.org/app/v1/events/{EVENT}/calendar.ics"),
        (None, None, "https://r.org/inscriptions/1/annuler?token=t", f"https://r.org/v1/events/{EVENT}/calendar.ics"),
        (None, "https://elsewhere.org/agenda", None, None),
        (None, None, None, None),
    ],
)  # fmt: skip
def test_ics_link_given_or_derived_from_the_events_service_address(
    ics_url: str | None, page_url: str | None, other: str | None, expected: str | None
) -> None:
    """The .ics link is the payload's, else built from the events service's public address."""
    conference = make_conference(event_id=uuid.UUID(EVENT), ics_url=ics_url, page_url=page_url)
    assert planning.ics_link(conference, other) == expected


@pytest.mark.parametrize("change", list(RegistrationChange))
def test_one_person_mail_per_registration_event_keyed_by_event_id(
    change: RegistrationChange,
) -> None:
    """A registration event is one person e-mail keyed by its event id, with no reference."""
    registration = make_registration(change)
    event = REGISTRATIONS.envelope(
        registration, subject=str(registration.event_id), correlationid="c"
    )
    [planned] = planning.for_registration(event)
    assert (planned.referral_id, planned.channel) == (event.id, "person_email")
    assert planned.kind == planning.REGISTRATION_KINDS[change] and len(planned.kind) <= 16
    assert (planned.reference, planned.association_id) == ("", "")
    assert planned.payload["to"] == "claire@example.org"


def test_event_ids_that_are_not_uuids_get_a_stable_36_character_key() -> None:
    """Any CloudEvent id fits the log's key column, and the same id always gives the same key."""
    long_id = "x" * 80
    assert planning.event_key(long_id) == planning.event_key(long_id)
    assert len(planning.event_key(long_id)) == 36
    assert planning.event_key(EVENT) == EVENT


def test_one_invitation_mail_keyed_by_invitation_id() -> None:
    """An invitation is one person e-mail keyed by the invitation id, carrying its reference."""
    invitation = make_invitation()
    event = INVITATIONS.envelope(
        invitation, subject=invitation.reference, correlationid=invitation.reference
    )
    [planned] = planning.for_invitation(event)
    assert (planned.referral_id, planned.kind) == (str(invitation.invitation_id), "invitation")
    assert (planned.reference, planned.association_id) == (invitation.reference, "")


def _delivery(reference: str, association: str, key: str) -> Delivery:
    return Delivery(
        id=1, referral_id=key, channel="person_email", kind="x", reference=reference,
        association_id=association, correlation_id="c", status=DeliveryStatus.SENT, attempts=1,
        payload=None, last_error=None,
    )  # fmt: skip


def test_outcomes_only_where_a_reference_exists() -> None:
    """Invitations report a `DeliveryV1` without referral; registrations (no reference) none."""
    key = str(uuid.uuid4())
    sent, now = DeliveryStatus.SENT, datetime(2027, 1, 14, tzinfo=PARIS_WINTER)
    assert messages.outcome(_delivery("", "", key), sent, 1, now) is None
    invitation = messages.outcome(_delivery("RB-7K3M-Q9XA-2DFE-W8NB", "", key), sent, 1, now)
    assert invitation is not None
    data = json.loads(invitation.value)
    assert (data["referral_id"], data["association_id"]) == (None, None)
    referral = messages.outcome(_delivery("RB-7K3M-Q9XA-2DFE-W8NB", "apesa", key), sent, 1, now)
    assert referral is not None and json.loads(referral.value)["referral_id"] == key
