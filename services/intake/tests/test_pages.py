"""The server-rendered pages through a TestClient: same use case as the API, status with the
orientation, self-refresh while pending, English, and failures with a way to retry."""

import asyncio
import re
import uuid
from datetime import UTC, datetime

from rebond_contracts.associations import AssociationId
from rebond_contracts.contacts import public_contact
from rebond_contracts.payloads import Reason, ReferralStatus, ReferralStatusV1, RoutingOutcomeV1
from rebond_intake.timeline import record_of

FORM = {
    "distress": "no",
    "situation.stage": "after_liquidation",
    "situation.company_size": "1-9",
    "situation.region": "75",
    "needs": ["mentoring"],
}


def reference_of(html: str) -> str:
    found = re.search(r'id="reference"[^>]*>(RB-[0-9A-Z-]+)<', html)
    assert found, "no reference on the page"
    return found.group(1)


def decide(store, reference: str, primary: AssociationId, at: datetime | None = None) -> None:
    """The router's outcome, as intake's consumer would have stored it."""
    outcome = RoutingOutcomeV1(
        decision_id=uuid.uuid4(), reference=reference, primary=primary,
        reasons=[Reason(code="stage_after_liquidation", fr="Vous êtes après une liquidation.",
                        en="You are after a liquidation.")],
        decided_at=at or datetime.now(UTC),
    )  # fmt: skip
    asyncio.run(store.add(record_of(str(uuid.uuid4()), outcome)))


def test_the_form_goes_through_the_same_use_case_as_the_api(make_client, publisher) -> None:
    """A posted form publishes one questionnaire; posting the same page twice sends it once."""
    client = make_client()
    key = re.search(r'name="idempotency_key" value="([^"]+)"', client.get("/").text)
    assert key
    first = client.post("/", data={**FORM, "idempotency_key": key.group(1)})
    again = client.post("/", data={**FORM, "idempotency_key": key.group(1)})
    assert first.status_code == again.status_code == 200
    assert reference_of(first.text) == reference_of(again.text)
    assert len(publisher.events) == 1
    assert publisher.events[0].data.questionnaire.situation.region == "75"


def test_status_page_refreshes_only_while_pending_then_orients(make_client, store) -> None:
    """Pending: a refresh link and a no-script meta refresh every `status_refresh_s`; decided:
    the association, why, and "passez par le portail" when its public contact is unknown."""
    client = make_client(status_refresh_s=7)
    reference = reference_of(client.post("/", data=FORM).text)
    pending = client.get(f"/suivi/{reference}")
    assert 'http-equiv="refresh" content="7"' in pending.text and "Actualiser" in pending.text
    assert client.get(f"/v1/submissions/{reference}").json()["refresh_after_s"] == 7
    decide(store, reference, AssociationId.SOS_ENTREPRENEUR)
    decided = client.get(f"/suivi/{reference}").text
    assert "http-equiv" not in decided and "Actualiser" not in decided
    assert "<strong>SOS Entrepreneur</strong>" in decided
    assert "Vous êtes après une liquidation." in decided
    assert "passez par le portail" in decided


def test_status_page_shows_a_public_contact_when_the_directory_has_one(make_client, store) -> None:
    """An association whose website the directory sources has it shown as a link."""
    client = make_client()
    reference = reference_of(client.post("/", data=FORM).text)
    decide(store, reference, AssociationId.SOIXANTE_MILLE_REBONDS)
    website = public_contact(AssociationId.SOIXANTE_MILLE_REBONDS).website.value
    assert website is not None
    page = client.get(f"/suivi/{reference}").text
    assert f'href="{website}"' in page and "passez par le portail" not in page


def test_the_timeline_reads_in_france_s_own_time(make_client, store) -> None:
    """A step decided at 09:30 UTC in winter reads 10:30, in summer 11:30: never "UTC"."""
    client = make_client()
    winter = reference_of(client.post("/", data=FORM).text)
    decide(store, winter, AssociationId.SOS_ENTREPRENEUR, datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    summer = reference_of(client.post("/", data={**FORM, "idempotency_key": ""}).text)
    decide(store, summer, AssociationId.SOS_ENTREPRENEUR, datetime(2026, 7, 1, 9, 30, tzinfo=UTC))
    assert "01/12/2026 10:30" in client.get(f"/suivi/{winter}").text
    assert "01/07/2026 11:30" in client.get(f"/suivi/{summer}").text
    assert " UTC<" not in client.get(f"/suivi/{winter}").text


def test_unknown_reference_gets_a_kind_404(make_client) -> None:
    """An unknown reference gets a page saying so and how the reference looks."""
    reply = make_client().get("/suivi/RB-AAAA-AAAA-AAAA-AAAA")
    assert reply.status_code == 404
    assert "Nous ne trouvons pas de demande" in reply.text


def test_broker_down_keeps_the_answers_and_says_to_send_again(make_client, publisher) -> None:
    """Kafka unreachable: 503, nothing accepted, the answers kept in the form to send again."""
    publisher.down = True
    reply = make_client().post("/", data={**FORM, "message": "Je veux rebondir."})
    assert reply.status_code == 503
    assert "renvoyer dans quelques instants" in reply.text
    assert "Je veux rebondir.</textarea>" in reply.text


def test_english_page_with_lang_en(make_client) -> None:
    """`?lang=en` gives the page and its errors in English, posting back in English."""
    client = make_client()
    page = client.get("/?lang=en").text
    assert '<html lang="en">' in page and 'action="/?lang=en"' in page
    reply = client.post("/?lang=en", data={**FORM, "needs": []})
    assert reply.status_code == 422
    assert "What do you need? — Choose at least one answer." in reply.text


def test_erasure_form_names_the_missing_field(make_client) -> None:
    """An erasure form without its secret says which field is missing, and erases nothing."""
    reply = make_client().post("/effacer", data={"reference": "RB-AAAA-AAAA-AAAA-AAAA"})
    assert reply.status_code == 422
    assert 'href="#secret">Code secret : ce champ est obligatoire.' in reply.text


def test_an_older_page_sent_again_with_other_answers_is_explained(make_client, publisher) -> None:
    """The same page key with other answers sends nothing and asks to check and send again."""
    client = make_client()
    client.post("/", data={**FORM, "idempotency_key": "page-key-0001"})
    reply = client.post(
        "/", data={**FORM, "needs": ["coaching"], "idempotency_key": "page-key-0001"}
    )
    assert reply.status_code == 422
    assert "Cette page avait déjà été envoyée avec d&#39;autres réponses" in reply.text
    assert len(publisher.events) == 1


PHONE_ONLY = {
    **FORM,
    "consents.share_with_association": "on",
    "contact.first_name": "Claire",
    "contact.phone": "06 12 34 56 78",
    "contact.preferred_channel": "phone",
}


def step(store, reference: str, status: ReferralStatus, **fields: object) -> None:
    """A referral status, as intake's consumer would have stored it."""
    values: dict[str, object] = {
        "reference": reference, "referral_id": uuid.uuid4(),
        "association_id": AssociationId.SECOND_SOUFFLE, "status": status,
        "at": datetime.now(UTC),
    }  # fmt: skip
    payload = ReferralStatusV1.model_validate(values | fields)
    asyncio.run(store.add(record_of(str(uuid.uuid4()), payload)))


def test_a_person_without_e_mail_is_told_to_keep_their_status_page(make_client) -> None:
    """Phone only: the confirmation says no e-mail will come, that each step shows on the
    status page, and gives its full address to bookmark; with an e-mail, no such warning."""
    client = make_client()
    page = client.post("/", data=PHONE_ONLY).text
    reference = reference_of(page)
    assert "nous ne pourrons pas vous écrire" in page
    assert f"http://testserver/suivi/{reference}</span>" in page
    with_email = {**PHONE_ONLY, "contact.email": "claire@example.org", "idempotency_key": ""}
    other = client.post("/", data=with_email).text
    assert "nous ne pourrons pas vous écrire" not in other and "favoris" in other


def test_the_status_page_says_what_each_step_e_mail_would(make_client, store) -> None:
    """Accepted (who calls and by when, Paris time), in the team's hands (call-back within the
    configured working days, no association said to have it), follow-up (the question and
    what to do without e-mail), closed (a new request): the e-mails' content, on the page."""
    client = make_client(callback_working_days=3)
    reference = reference_of(client.post("/", data=PHONE_ONLY).text)
    decide(store, reference, AssociationId.SECOND_SOUFFLE)
    call_by = datetime(2027, 1, 14, 17, 30, tzinfo=UTC)
    step(store, reference, ReferralStatus.ACCEPTED, caller="Marc", call_by=call_by)
    accepted = client.get(f"/suivi/{reference}").text
    assert "Marc, de Second Souffle, vous contactera d&#39;ici le 14/01/2027 à 18 h 30" in accepted
    step(store, reference, ReferralStatus.FOLLOW_UP_DUE)
    follow_up = client.get(f"/suivi/{reference}").text
    assert "Avez-vous été contacté·e ?" in follow_up and "Sans adresse e-mail" in follow_up
    step(store, reference, ReferralStatus.UNROUTED)
    queued = client.get(f"/suivi/{reference}").text
    assert "vous rappellera d&#39;ici 3 jours ouvrés" in queued
    assert "reçoit votre demande et vous contacte" not in queued
    step(store, reference, ReferralStatus.CLOSED, association_id=None)
    closed = client.get(f"/suivi/{reference}").text
    assert "Votre demande est désormais close" in closed and "refaire une demande" in closed


def test_the_privacy_page_gives_the_configured_data_protection_contact(make_client) -> None:
    """/confidentialite names INTAKE_PRIVACY_CONTACT as a mailto link (art. 13's contact)."""
    page = make_client(privacy_contact="donnees@portail-rebond.fr").get("/confidentialite").text
    assert 'href="mailto:donnees@portail-rebond.fr"' in page
    assert "rebond.example" not in page


def test_the_public_view_of_a_person_in_distress_says_where_the_request_stands(
    make_client, store
) -> None:
    """A person in distress (public view: no association named) whose main track was accepted
    reads that a partner association will call, not "aucune association ne correspond"."""
    client = make_client()
    reference = reference_of(client.post("/", data=PHONE_ONLY).text)
    decide(store, reference, AssociationId.APESA)
    call_by = datetime(2027, 1, 14, 17, 30, tzinfo=UTC)
    step(store, reference, ReferralStatus.ACCEPTED, call_by=call_by)
    page = client.get(f"/suivi/{reference}").text
    assert "Aucune association ne correspond" not in page
    assert "Une association partenaire a accepté votre demande" in page
    assert "d&#39;ici le 14/01/2027 à 18 h 30" in page and "APESA" not in page


def test_confirmation_links_the_stories_and_promises_a_peer_only_to_who_asked(make_client) -> None:
    """ "D'autres sont passés par là": the confirmation and status pages link the events
    service's stories page (`INTAKE_STORIES_URL`); only a person who asked for `peer_support`
    and agreed to share a contact is told a peer will be proposed."""
    client = make_client(stories_url="https://conferences.example/temoignages")
    sharing = {
        **FORM, "consents.share_with_association": "yes", "contact.first_name": "Claire",
        "contact.email": "claire@example.org", "contact.preferred_channel": "email",
    }  # fmt: skip
    plain = client.post("/", data=FORM)
    asked = client.post("/", data={**sharing, "needs": ["mentoring", "peer_support"]})
    unshared = client.post("/", data={**FORM, "needs": ["peer_support"]})
    for page in (plain, asked, unshared):
        assert page.status_code == 200, page.text
        assert "D&#39;autres sont passés par là" in page.text
        assert 'href="https://conferences.example/temoignages"' in page.text
    assert 'id="peer-note"' in asked.text and "entrepreneur bénévole" in asked.text
    assert 'id="peer-note"' not in plain.text and 'id="peer-note"' not in unshared.text
    status = client.get(f"/suivi/{reference_of(asked.text)}?lang=en")
    assert "Others have been through it" in status.text
    assert 'href="https://conferences.example/temoignages"' in status.text
