"""The person's e-mails at each step, planned without Kafka: which status gives which e-mail (or
none) by consent and locale, what they may and may not hold, the follow-up's links, and the
erasure's withdrawals (e-mail, typed webhook) and confirmation."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import ReferralStatus, ReferralStatusV1
from rebond_notifier.config import AssociationChannels
from rebond_notifier.planning import LinkMaker, for_erasure, for_person, for_status
from rebond_notifier.signing import (
    FollowUpExpired,
    TokenInvalid,
    read_follow_up_token,
    read_token,
)
from rebond_notifier.store import Holder, Person, Told

KEY = b"journey-test-key"
NOW = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
REFERENCE = "RB-7K3M-Q9XA-2DFE-W8NB"
REFERRAL = uuid.uuid4()
LINKS = LinkMaker(KEY, "https://notifier.example", clock=lambda: NOW,
                  portal_url="https://portail.example/")  # fmt: skip
FR = Person(REFERENCE, "Claire", "claire@example.org", "fr")
EN = Person(REFERENCE, "Claire", "claire@example.org", "en")
CHANNELS = {
    a: AssociationChannels(a, f"contact@{a.value}.example", "https://crm.example/hook", b"k" * 24)
    for a in AssociationId
}


def status(kind: ReferralStatus, **fields: object) -> ReferralStatusV1:
    values: dict[str, object] = {
        "reference": REFERENCE, "referral_id": REFERRAL,
        "association_id": AssociationId.SECOND_SOUFFLE, "status": kind, "at": NOW,
    }  # fmt: skip
    return ReferralStatusV1.model_validate(values | fields)


def mail(kind: ReferralStatus, person: Person = FR, **fields: object) -> dict[str, str] | None:
    planned = for_person(status(kind, **fields), person, "corr", LINKS, callback_days=3)
    assert len(planned) <= 1
    return planned[0].payload if planned else None


@pytest.mark.parametrize(
    ("kind", "fields", "subject", "says"),
    [
        (ReferralStatus.ACCEPTED, {}, "Second Souffle a accepté votre demande",
         "Un ou une bénévole de Second Souffle vous contactera dans les prochains jours"),
        (ReferralStatus.ACCEPTED, {"track": "distress", "association_id": AssociationId.APESA},
         "Un·e psychologue d'APESA va vous appeler", "gratuitement et en toute confidentialité"),
        (ReferralStatus.REORIENTED, {"next_association_id": AssociationId.SOIXANTE_MILLE_REBONDS},
         "transmise à 60 000 rebonds", "Second Souffle n'a pas pu donner suite"),
        (ReferralStatus.UNROUTED, {}, "L'équipe du portail reprend votre demande",
         "vous rappellera d'ici 3 jours ouvrés"),
        (ReferralStatus.CLOSED, {}, "est close", "refaire une demande"),
        (ReferralStatus.FOLLOW_UP_DUE, {}, "Avez-vous été contacté·e par Second Souffle ?",
         "- Oui : https://"),
    ],
)  # fmt: skip
def test_each_step_gives_the_person_one_french_mail_with_the_status_link(
    kind: ReferralStatus, fields: dict[str, object], subject: str, says: str
) -> None:
    """A step of a request whose person gave an address is one French e-mail, its English
    version after it, with the /suivi link, and never the free text or the word détresse."""
    payload = mail(kind, **fields)
    assert payload is not None
    assert payload["to"] == "claire@example.org" and subject in payload["subject"]
    text = payload["text"]
    assert text.startswith("Bonjour Claire,") and says in text
    assert f"https://portail.example/suivi/{REFERENCE}" in text
    assert text.index("In English:") > text.index(says)
    assert "détresse" not in text.lower()


@pytest.mark.parametrize(
    "kind",
    [ReferralStatus.OFFERED, ReferralStatus.REMINDED, ReferralStatus.DECLINED,
     ReferralStatus.EXPIRED],
)  # fmt: skip
def test_steps_that_are_the_associations_business_or_told_next_give_no_mail(
    kind: ReferralStatus,
) -> None:
    """Offered and reminded ask for no mail to the person; declined and expired are told with
    the re-orientation or the human queue that follows (one mail per step)."""
    assert mail(kind) is None


def test_the_reorientation_says_why_from_the_status_before_it() -> None:
    """A re-orientation after a decline and after an expiry are told differently."""
    moved = {"next_association_id": AssociationId.SOIXANTE_MILLE_REBONDS}
    declined = for_person(status(ReferralStatus.REORIENTED, **moved), FR, "c", LINKS,
                          cause=ReferralStatus.DECLINED)  # fmt: skip
    expired = for_person(status(ReferralStatus.REORIENTED, **moved), FR, "c", LINKS,
                         cause=ReferralStatus.EXPIRED)  # fmt: skip
    assert "ne peut pas vous accompagner cette fois-ci" in declined[0].payload["text"]
    assert "n'a pas pu répondre à temps" in expired[0].payload["text"]


def test_an_english_speaker_reads_english_first() -> None:
    """locale=en: English subject and text first, the French version after."""
    payload = mail(ReferralStatus.ACCEPTED, EN, caller="Marc")
    assert payload is not None
    assert payload["subject"] == f"Second Souffle has accepted your request {REFERENCE}"
    text = payload["text"]
    assert text.startswith("Hello Claire,")
    assert text.index("Marc, from Second Souffle") < text.index("Version française :")
    assert text.index("Version française :") < text.index("Marc, de Second Souffle")


def test_the_follow_up_links_are_signed_yes_and_no_for_thirty_days() -> None:
    """The yes and no links read as follow-up tokens (not as answer tokens) until 30 days
    after the e-mail, then as expired."""
    payload = mail(ReferralStatus.FOLLOW_UP_DUE)
    assert payload is not None
    yes = payload["text"].split("- Oui : ")[1].split()[0].rsplit("/", 1)[1]
    no = payload["text"].split("- Non : ")[1].split()[0].rsplit("/", 1)[1]
    assert read_follow_up_token(KEY, yes, now=NOW.timestamp()).contacted is True
    claims = read_follow_up_token(KEY, no, now=NOW.timestamp())
    assert (claims.contacted, claims.referral_id) == (False, REFERRAL)
    with pytest.raises(TokenInvalid):
        read_token(KEY, no)
    with pytest.raises(FollowUpExpired):
        read_follow_up_token(KEY, no, now=(NOW + timedelta(days=30)).timestamp())


def test_reminders_and_expiries_are_webhooked_with_their_type() -> None:
    """An association with a webhook gets the reminder and the expiry by webhook too, each a
    CloudEvent typed `fr.rebond.referral.reminder` / `.expired`."""
    for kind, type_ in [(ReferralStatus.REMINDED, "fr.rebond.referral.reminder"),
                        (ReferralStatus.EXPIRED, "fr.rebond.referral.expired")]:  # fmt: skip
        planned = for_status(status(kind, respond_by=NOW), "corr", CHANNELS, LINKS)
        [hook] = [d for d in planned if d.channel == "webhook"]
        body = json.loads(hook.payload["body"])
        assert (body["type"], body["subject"], body["data"]["status"]) == (
            type_,
            REFERENCE,
            kind.value,
        )


def test_an_erasure_is_told_to_each_association_and_confirmed_to_the_person() -> None:
    """An erasure plans, per association, an e-mail and a webhook typed
    `fr.rebond.referral.withdrawn`, and the person's confirmation; no row keeps the reference.
    Without an address kept, no confirmation."""
    holder = Holder(AssociationId.APESA.value, str(REFERRAL))
    planned = for_erasure([holder], FR, REFERENCE, NOW, "corr", CHANNELS)
    assert [(d.channel, d.kind) for d in planned] == [
        ("association_email", "withdrawal"), ("webhook", "withdrawal"), ("person_email", "p_erased"),
    ]  # fmt: skip
    assert {d.reference for d in planned} == {""}
    assert json.loads(planned[1].payload["body"])["type"] == "fr.rebond.referral.withdrawn"
    assert "effacé vos données" in planned[2].payload["text"]
    assert "suivi" not in planned[2].payload["text"]
    assert [d.kind for d in for_erasure([holder], None, REFERENCE, NOW, "c", CHANNELS)] == [
        "withdrawal", "withdrawal",
    ]  # fmt: skip


APESA = {"track": "distress", "association_id": AssociationId.APESA}
MAIN_TOLD = {
    kind: Told(f"p_{kind.value}", AssociationId.SECOND_SOUFFLE.value)
    for kind in (ReferralStatus.ACCEPTED, ReferralStatus.UNROUTED)
}
APESA_TOLD = {
    kind: Told(f"p_{kind.value}", AssociationId.APESA.value)
    for kind in (ReferralStatus.ACCEPTED, ReferralStatus.UNROUTED)
}


def told_mail(kind: ReferralStatus, told: list[Told], **fields: object) -> dict[str, str] | None:
    planned = for_person(status(kind, **fields), FR, "c", LINKS, callback_days=3, told=told)
    return planned[0].payload if planned else None


def test_the_second_track_in_the_human_queue_says_what_differs_not_the_same_again() -> None:
    """Main and distress tracks both in the human queue: the second mail is not the first
    again; it says that the other track failed too and that the team calls once for both."""
    first = told_mail(ReferralStatus.UNROUTED, [])
    second = told_mail(ReferralStatus.UNROUTED, [MAIN_TOLD[ReferralStatus.UNROUTED]], **APESA)
    assert first is not None and second is not None
    assert first["subject"] != second["subject"]
    assert "un seul rappel" in second["subject"]
    assert "Les psychologues d'APESA n'ont pas pu donner suite non plus." in second["text"]
    assert "une seule personne de l'équipe vous rappellera, d'ici 3 jours ouvrés" in second["text"]
    # And the other way round: APESA's track first, then the main one.
    reverse = told_mail(ReferralStatus.UNROUTED, [APESA_TOLD[ReferralStatus.UNROUTED]])
    assert reverse is not None and "un seul rappel" in reverse["subject"]
    assert "Les associations sollicitées n'ont pas pu prendre votre demande en charge non plus" \
        in reverse["text"]  # fmt: skip


def test_a_distress_track_alone_in_the_queue_does_not_say_the_associations_failed() -> None:
    """APESA's track in the queue while the main track goes on: the mail names APESA's
    psychologists, not "the associations we asked" (one of which may have accepted)."""
    payload = told_mail(ReferralStatus.UNROUTED, [MAIN_TOLD[ReferralStatus.ACCEPTED]], **APESA)
    assert payload is not None
    assert "Les psychologues d'APESA n'ont pas pu donner suite." in payload["text"]
    assert "associations sollicitées" not in payload["text"]


def test_the_same_track_queued_again_is_told_as_a_first_time() -> None:
    """A track queued a second time (after a coordinator's assignment was declined) is not
    "the other track too": only the other track's mails count."""
    payload = told_mail(ReferralStatus.UNROUTED, [MAIN_TOLD[ReferralStatus.UNROUTED]])
    assert payload is not None and "L'équipe du portail reprend" in payload["subject"]


@pytest.mark.parametrize(
    ("fields", "told", "says"),
    [
        ({}, APESA_TOLD[ReferralStatus.ACCEPTED],
         "Cet appel, pour votre entreprise, s'ajoute à celui du ou de la psychologue d'APESA"),
        (APESA, MAIN_TOLD[ReferralStatus.ACCEPTED],
         "Cet appel, un temps d'écoute pour vous, s'ajoute à celui de Second Souffle"),
    ],
)  # fmt: skip
def test_the_second_acceptance_says_that_there_will_be_two_calls(
    fields: dict[str, object], told: Told, says: str
) -> None:
    """Both tracks accepted: the second acceptance says its call comes besides the first
    one's, and which is which; alone, an acceptance says nothing of another call."""
    second = told_mail(ReferralStatus.ACCEPTED, [told], **fields)
    alone = told_mail(ReferralStatus.ACCEPTED, [], **fields)
    assert second is not None and alone is not None
    assert says in second["text"]
    assert "s'ajoute" not in alone["text"]


def test_a_closure_of_both_tracks_is_told_once() -> None:
    """A coordinator's closure closes each queued track (two `closed` statuses): the person
    gets one "votre demande est close", not two."""
    first = told_mail(ReferralStatus.CLOSED, [MAIN_TOLD[ReferralStatus.UNROUTED]])
    assert first is not None and "est close" in first["subject"]
    assert (
        told_mail(ReferralStatus.CLOSED, [Told("p_closed", "")], referral_id=uuid.uuid4()) is None
    )


def test_every_mail_to_the_person_names_the_privacy_contact() -> None:
    """The steps, the first confirmation and the erasure's: each says where to write about
    one's data (NOTIFIER_PRIVACY_CONTACT)."""
    links = LinkMaker(KEY, "https://n.example", clock=lambda: NOW, privacy_contact="dpo@x.fr")
    [step] = for_person(status(ReferralStatus.ACCEPTED), FR, "c", links)
    [english] = for_person(status(ReferralStatus.ACCEPTED), EN, "c", links)
    holder = Holder(AssociationId.APESA.value, str(REFERRAL))
    erased = for_erasure([holder], FR, REFERENCE, NOW, "c", CHANNELS, "dpo@x.fr")[-1]
    for payload in (step.payload, erased.payload):
        assert "Une question sur vos données personnelles ? Écrivez à dpo@x.fr." in payload["text"]
    assert "A question about your personal data? Write to dpo@x.fr." in english.payload["text"]
