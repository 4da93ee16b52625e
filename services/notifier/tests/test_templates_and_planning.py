"""E-mail texts and which deliveries a decision or a status calls for (pure)."""

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    CommunityMailKind,
    CommunityMailV1,
    ReferralStatus,
    ReferralStatusV1,
    ReferralV1,
)
from rebond_contracts.questionnaire import Distress
from rebond_contracts.topics import COMMUNITY_MAIL, referrals
from rebond_notifier import planning, templates
from rebond_notifier.channels import SmtpMailer
from rebond_notifier.config import load_associations
from rebond_notifier.signing import Action, TokenExpired, read_token
from rebond_notifier.templates import Mail

from .conftest import make_decision

KEY = b"k" * 32
LINKS = planning.LinkMaker(KEY, "https://rebond.example/")
ASSOCIATIONS = load_associations()


def _links_for(referral: ReferralV1) -> templates.AnswerLinks:
    return LINKS.links(
        str(referral.referral_id), referral.reference, referral.association_id, referral.respond_by
    )


def _event(decision):  # type: ignore[no-untyped-def]
    referral = decision.referral
    return referrals(referral.association_id).envelope(
        referral, subject=referral.reference, correlationid=referral.reference
    )


def test_association_mail_has_reference_contact_and_signed_links() -> None:
    """The association's e-mail names the reference, the shared contact and two answer links."""
    referral = make_decision().referral
    links = _links_for(referral)
    mail = templates.association_referral(referral, "a@example.org", links)
    assert referral.reference in mail.subject and "URGENT" not in mail.subject
    assert "Claire" in mail.text and "claire@example.org" in mail.text
    assert links.accept in mail.text and links.decline in mail.text
    token = links.decline.rsplit("/", 1)[1]
    claims = read_token(KEY, token)
    assert (claims.referral_id, claims.action) == (referral.referral_id, Action.DECLINE)
    assert "Détresse" not in mail.text  # not shared without the sensitive-data consent


def _token(url: str, now: float = 0) -> Any:
    return read_token(KEY, url.rsplit("/", 1)[1], now=now)


def test_answer_links_last_until_the_associations_deadline_and_the_mail_says_when() -> None:
    """An APESA referral due in 1 day: its links expire at that deadline (not in 8 days), and
    the e-mail gives that date and hour, Paris time."""
    respond_by = datetime(2027, 1, 14, 17, 30, tzinfo=UTC)  # 18 h 30 in Paris
    decision = make_decision(AssociationId.APESA)
    referral = decision.referral.model_copy(update={"respond_by": respond_by})
    decision = decision.model_copy(update={"referral": referral})
    planned = planning.for_decision(decision, _event(decision), ASSOCIATIONS, LINKS)
    [offer] = [p for p in planned if p.channel == "association_email"]
    text = offer.payload["text"]
    assert "valables jusqu'au 14/01/2027 à 18 h 30 (heure de Paris)" in text
    assert "8 jours" not in text
    accept = re.search(r"Accepter : (\S+)", text).group(1)  # type: ignore[union-attr]
    assert _token(accept).expires_at == int(respond_by.timestamp())
    with pytest.raises(TokenExpired):
        _token(accept, now=respond_by.timestamp())


def test_reminder_links_expire_at_the_deadline_it_carries() -> None:
    """A reminder's fresh links last until the `respond_by` of the status, not longer."""
    respond_by = datetime(2027, 1, 14, 17, 30, tzinfo=UTC)
    status = ReferralStatusV1(
        reference="RB-7K3M-Q9XA-2DFE-W8NB", referral_id=uuid.uuid4(),
        association_id=AssociationId.SOS_ENTREPRENEUR, status=ReferralStatus.REMINDED,
        respond_by=respond_by, at=datetime.now(UTC),
    )  # fmt: skip
    [mail] = planning.for_status(status, "corr", ASSOCIATIONS, LINKS)
    assert "valables jusqu'au 14/01/2027 à 18 h 30" in mail.payload["text"]
    decline = re.search(r"Décliner : (\S+)", mail.payload["text"]).group(1)  # type: ignore[union-attr]
    assert _token(decline).expires_at == int(respond_by.timestamp())


def test_a_referral_without_deadline_gets_links_valid_for_the_setting() -> None:
    """No `respond_by`: the links last NOTIFIER_LINK_VALID_DAYS from now."""
    now = datetime.fromtimestamp(1_000, UTC)
    maker = planning.LinkMaker(KEY, "https://rebond.example", valid_days=3, clock=lambda: now)
    links = maker.links(str(uuid.uuid4()), "RB-7K3M-Q9XA-2DFE-W8NB", AssociationId.APESA, None)
    assert _token(links.accept).expires_at == 1_000 + 3 * 86_400
    assert links.expires_at == datetime.fromtimestamp(1_000 + 3 * 86_400, UTC)


STATUS_PAGE = "https://portail.example/suivi/RB-7K3M-Q9XA-2DFE-W8NB"


def test_urgent_referral_is_marked_for_the_association_only() -> None:
    """An urgent referral says so in the association's subject and body; the person's own
    e-mail never reads "URGENT" (it is a word for the association), it says "en priorité"."""
    referral = make_decision(urgent=True).referral
    links = _links_for(referral)
    mail = templates.association_referral(referral, "a@example.org", links)
    person = templates.person_confirmation(referral, STATUS_PAGE)
    assert mail.subject.startswith("[URGENT]") and "URGENT :" in mail.text
    assert "URGENT" not in person.subject + person.text and "en priorité" in person.text


def test_distress_shown_only_when_shared() -> None:
    """The distress answer appears when the referral carries it (sensitive-data consent)."""
    referral = make_decision().referral.model_copy(update={"distress": Distress.YES})
    links = _links_for(referral)
    assert "Détresse : oui" in templates.association_referral(referral, "a@x.org", links).text


def test_person_confirmation_in_french_with_resources() -> None:
    """The person's confirmation gives the reference, what happens next and 3114/15/112/APESA."""
    referral = make_decision().referral
    mail = templates.person_confirmation(referral, STATUS_PAGE)
    assert mail.to == "claire@example.org"
    assert referral.reference in mail.subject and referral.reference in mail.text
    assert "Une personne de 60 000 rebonds vous contactera" in mail.text
    assert f"Suivre votre demande : {STATUS_PAGE}" in mail.text
    for resource in ("3114", "15 (SAMU)", "112", "APESA"):
        assert resource in mail.text


def test_on_apesa_s_track_the_person_is_told_a_psychologist_will_call() -> None:
    """APESA's referral, beside the main one, tells the person a psychologist (not a volunteer)
    of APESA will call, in correct French ("d'APESA"), and says another message follows."""
    referral = make_decision().referral.model_copy(update={"association_id": AssociationId.APESA})
    mail = templates.person_confirmation(referral, STATUS_PAGE, distress_track=True)
    assert "psychologue d'APESA" in mail.text and "bénévole" not in mail.text
    assert "de APESA" not in mail.text and "APESA vous appellera" in mail.subject
    assert f"Suivre votre demande : {STATUS_PAGE}" in mail.text


def test_reminder_and_expiry_mails() -> None:
    """Reminder carries fresh answer links and the deadline; expiry says nothing is to be done."""
    when = datetime(2026, 12, 6, 10, tzinfo=UTC)
    links = LINKS.links(str(uuid.uuid4()), "RB-7K3M-Q9XA-2DFE-W8NB", AssociationId.APESA, when)
    reminder = templates.association_reminder(
        AssociationId.APESA, "a@x.org", "RB-7K3M-Q9XA-2DFE-W8NB", when, links
    )
    assert "Rappel" in reminder.subject and "06/12/2026" in reminder.text
    assert links.accept in reminder.text
    expiry = templates.association_expiry(AssociationId.APESA, "a@x.org", "RB-7K3M-Q9XA-2DFE-W8NB")
    assert "expirée" in expiry.subject and "http" not in expiry.text


@pytest.mark.parametrize(
    ("attempt", "email", "webhook", "expected"),
    [
        (1, "claire@example.org", False, {"association_email", "person_email"}),
        (1, None, False, {"association_email"}),
        (2, "claire@example.org", False, {"association_email"}),
        (1, "claire@example.org", True, {"association_email", "person_email", "webhook"}),
        (3, None, True, {"association_email", "webhook"}),
    ],
)
def test_deliveries_for_a_decision(
    attempt: int, email: str | None, webhook: bool, expected: set[str]
) -> None:
    """Association e-mail always; webhook when configured; person e-mail on attempt 1 with an e-mail."""
    decision = make_decision(attempt=attempt, email=email)
    associations = dict(ASSOCIATIONS)
    if webhook:
        from dataclasses import replace

        association = decision.referral.association_id
        associations[association] = replace(
            associations[association], webhook_url="http://hook", webhook_secret=b"s"
        )
    planned = planning.for_decision(decision, _event(decision), associations, LINKS)
    assert {p.channel for p in planned} == expected
    assert all(p.referral_id == str(decision.referral.referral_id) for p in planned)


def test_no_referral_no_delivery() -> None:
    """A decision without consent to share (no referral) sends nothing."""
    decision = make_decision().model_copy(update={"referral": None})
    assert planning.for_decision(decision, None, ASSOCIATIONS, LINKS) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (ReferralStatus.REMINDED, "reminder"),
        (ReferralStatus.EXPIRED, "expiry"),
        (ReferralStatus.ACCEPTED, None),
        (ReferralStatus.OFFERED, None),
        (ReferralStatus.DECLINED, None),
    ],
)
def test_deliveries_for_a_status(status: ReferralStatus, kind: str | None) -> None:
    """Only `reminded` and `expired` become an e-mail to the association."""
    event = ReferralStatusV1(
        reference="RB-7K3M-Q9XA-2DFE-W8NB",
        referral_id=uuid.uuid4(),
        association_id=AssociationId.RE_CREER,
        status=status,
        at=datetime.now(UTC),
    )
    planned = planning.for_status(event, "corr", ASSOCIATIONS, LINKS)
    assert [p.kind for p in planned] == ([kind] if kind else [])
    if kind:
        assert planned[0].payload["to"] == ASSOCIATIONS[AssociationId.RE_CREER].email


def test_a_mail_keeps_the_message_id_it_is_given() -> None:
    """A delivery's e-mail carries its stable id, so a copy sent again after a crash is the
    same message to the recipient's mail system; a mail without one gets a fresh id."""
    mailer = SmtpMailer("127.0.0.1", 25, "orientation@rebond.local")
    mail = Mail(to="a@example.org", subject="s", text="t", message_id="5f0c-d1")
    assert mailer.build(mail)["Message-ID"] == "<5f0c-d1@rebond.local>"
    fresh = Mail(to="a@example.org", subject="s", text="t")
    assert mailer.build(fresh)["Message-ID"] != mailer.build(fresh)["Message-ID"]


@pytest.mark.parametrize("kind", list(CommunityMailKind))
def test_a_community_mail_is_one_person_mail_keyed_by_its_id(kind: CommunityMailKind) -> None:
    """Every kind of community mail is one person e-mail, as written, keyed by its mail id,
    about no reference or association, under a kind that fits the log's 16 characters."""
    mail = CommunityMailV1(
        mail_id=uuid.uuid4(), kind=kind, to="lina@example.org", subject="Sujet",
        text="Bonjour Lina", at=datetime(2027, 1, 5, tzinfo=UTC),
    )  # fmt: skip
    event = COMMUNITY_MAIL.envelope(mail, subject="story", correlationid="corr")
    [delivery] = planning.for_community_mail(event)
    assert (delivery.referral_id, delivery.channel, delivery.reference) == (
        str(mail.mail_id), "person_email", "",
    )  # fmt: skip
    assert (delivery.association_id, delivery.correlation_id) == ("", "corr")
    assert delivery.payload == {
        "to": "lina@example.org",
        "subject": "Sujet",
        "text": "Bonjour Lina",
    }
    assert 0 < len(delivery.kind) <= 16
    assert planning.for_community_mail(event) == [delivery]  # the same key on a redelivery


def test_association_mail_names_the_region_and_department() -> None:
    """ "Région : Nouvelle-Aquitaine, département : Gironde (33)", not bare codes."""
    referral = make_decision().referral
    assert referral is not None
    mail = templates.association_referral(referral, "a@example.org", _links_for(referral))
    assert "Région : Nouvelle-Aquitaine, département : Gironde (33)" in mail.text
