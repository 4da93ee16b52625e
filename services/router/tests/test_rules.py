"""Decisions: consent decides what is shared, distress makes it urgent and adds APESA's track,
ids are derived."""

from datetime import timedelta

import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.questionnaire import Distress
from rebond_router.directory import Directory
from rebond_router.rules import (
    Track,
    decide,
    decide_distress,
    distress_track_id,
    is_urgent,
    outcome_of,
    peer_request_of,
    reorientation_id,
)

from .conftest import NOW, anonymous, submitted


def test_the_example_person_is_oriented_with_reasons_in_both_languages(
    directory: Directory,
) -> None:
    """After a liquidation, wanting a mentor: 60 000 rebonds, and the person is told why."""
    routing = decide("event-1", submitted(), NOW, directory, {})
    decision = routing.decision
    assert decision.primary is AssociationId.SOIXANTE_MILLE_REBONDS
    assert decision.alternates == [AssociationId.SECOND_SOUFFLE]
    assert decision.rule_set_version == directory.version
    texts = {r.code: r.fr for r in decision.reasons}
    assert texts["stage_after_liquidation"] == "vous êtes après une liquidation ou une cession"
    assert texts["need_mentoring"] == "vous souhaitez un parrain"
    assert all(r.en for r in decision.reasons)
    assert {s.association_id for s in decision.scores} == {
        AssociationId.SOIXANTE_MILLE_REBONDS,
        AssociationId.SECOND_SOUFFLE,
    }
    referral = decision.referral
    assert referral is not None and referral.respond_by == NOW + timedelta(days=10)
    assert decision.attempt == 1 and not routing.unrouted


def test_no_consent_to_share_gives_a_decision_without_referral(directory: Directory) -> None:
    """Without consent the person still gets a recommendation, but nobody is contacted."""
    routing = decide("event-1", submitted(**anonymous()), NOW, directory, {})
    assert routing.decision.primary is AssociationId.SOIXANTE_MILLE_REBONDS
    assert routing.decision.referral is None and routing.decision.invitation is None
    assert routing.referral_candidates == () and not routing.unrouted


@pytest.mark.parametrize(
    ("distress", "sensitive", "shares", "main_shared", "apesa"),
    [
        ("yes", True, True, None, True),
        ("yes", False, True, None, False),
        ("yes", True, False, None, False),
        ("no", True, True, None, False),
    ],
    ids=["distress and consents", "no art. 9 consent", "no consent to share", "no distress"],
)
def test_apesa_is_a_track_beside_the_main_one_only_with_both_consents(
    directory: Directory,
    distress: str,
    sensitive: bool,
    shares: bool,
    main_shared: Distress | None,
    apesa: bool,
) -> None:
    """The main track always goes to the association for the situation (never APESA, with the
    3114 when in distress) and never carries the distress answer; APESA gets a referral of its
    own, with that answer, on the distress track, only for distress "yes" with the consents to
    share and to share the distress answer."""
    changes = {"distress": distress, "consents__sensitive_data": sensitive}
    person = submitted(**changes) if shares else submitted(**anonymous(**changes))
    main = decide("event-1", person, NOW, directory, {})
    assert main.track is Track.MAIN and main.decision.track == "main"
    assert main.decision.primary is AssociationId.SOIXANTE_MILLE_REBONDS
    assert AssociationId.APESA not in [c.association for c in main.referral_candidates]
    assert AssociationId.APESA not in main.decision.alternates
    assert (main.decision.referral is not None) is shares
    if main.decision.referral is not None:
        assert main.decision.referral.distress == main_shared
    codes = [r.code for r in main.decision.reasons]
    assert ("distress_resources" in codes) is (distress == "yes")
    beside = decide_distress(main.decision.decision_id, person, NOW, directory, {})
    assert (beside is not None) is apesa
    if beside is not None:
        decision = beside.decision
        assert beside.track is Track.DISTRESS and decision.track == "distress"
        assert decision.decision_id == distress_track_id(main.decision.decision_id)
        assert decision.primary is AssociationId.APESA and decision.alternates == []
        assert [c.association for c in beside.referral_candidates] == [AssociationId.APESA]
        assert decision.referral is not None and decision.referral.urgent
        assert decision.referral.distress is Distress.YES
        assert decision.referral.distress is Distress.YES and decision.invitation is None


@pytest.mark.parametrize(
    ("distress", "crisis_words", "sensitive", "urgent"),
    [
        ("yes", None, True, True),
        ("no", True, True, True),
        ("prefer_not_to_say", True, True, True),
        ("no", False, True, False),
        ("prefer_not_to_say", None, True, False),
        ("yes", None, False, False),
        ("prefer_not_to_say", True, False, False),
    ],
)
def test_urgent_is_distress_or_crisis_words_with_the_art_9_consent(
    directory: Directory, distress: str, crisis_words: bool | None, sensitive: bool, urgent: bool
) -> None:
    """Urgent (decision and referral) when distress is "yes" or the free text has crisis words,
    and only with the art. 9 consent."""
    person = submitted(distress=distress, consents__sensitive_data=sensitive)
    person = person.model_copy(update={"crisis_words": crisis_words})
    assert is_urgent(person) is urgent
    decision = decide("event-1", person, NOW, directory, {}).decision
    assert decision.urgent is urgent
    assert decision.referral is not None and decision.referral.urgent is urgent


def test_the_outcome_names_one_alternative_and_the_deadline_of_the_main_track_only(
    directory: Directory,
) -> None:
    """Intake learns one other suitable association and when the chosen one must answer; of the
    distress track it learns nothing (that APESA was chosen would reveal the distress)."""
    person = submitted(distress="yes", consents__sensitive_data=True)
    main = decide("event-1", person, NOW, directory, {}).decision
    outcome = outcome_of(main)
    assert outcome is not None and outcome.alternates == [AssociationId.SECOND_SOUFFLE]
    assert outcome.respond_by == NOW + timedelta(days=10)
    beside = decide_distress(main.decision_id, person, NOW, directory, {})
    assert beside is not None and outcome_of(beside.decision) is None
    alone = decide("event-2", submitted(**anonymous()), NOW, directory, {}).decision
    unshared = outcome_of(alone)
    assert unshared is not None and unshared.respond_by is None


@pytest.mark.parametrize(
    ("invitations", "email", "invited"),
    [(True, "claire@example.org", True), (False, "claire@example.org", False), (True, None, False)],
)
def test_invitation_contact_only_with_consent_and_an_email(
    directory: Directory, invitations: bool, email: str | None, invited: bool
) -> None:
    """The events service gets a contact only with the invitations consent and an e-mail."""
    changes: dict[str, object] = {
        "consents__event_invitations": invitations,
        "contact__email": email,
    }
    if email is None:
        changes.update(contact__phone="0612345678", contact__preferred_channel="phone")
    decision = decide("e", submitted(**changes), NOW, directory, {}).decision
    assert (decision.invitation is not None) is invited


@pytest.mark.parametrize("consented", [True, False])
def test_a_first_decision_says_the_statistics_consent(
    directory: Directory, consented: bool
) -> None:
    """The decision carries `consents.statistics` (the notifier tells it with the follow-up
    answer, which the console counts only with it)."""
    decision = decide("s", submitted(consents__statistics=consented), NOW, directory, {}).decision
    assert decision.statistics_consent is consented


PEER = {"needs": ["peer_support", "mentoring"]}
BY_PHONE = {"contact__email": None, "contact__phone": "0612345678",
            "contact__preferred_channel": "phone"}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "contact"),
    [
        (PEER, {"first_name": "Claire", "email": "claire@example.org", "phone": None}),
        ({**PEER, **BY_PHONE}, {"first_name": "Claire", "email": None, "phone": "0612345678"}),
        ({**PEER, "situation__sector": None, "distress": "yes", "consents__sensitive_data": True},
         {"first_name": "Claire", "email": "claire@example.org", "phone": None}),
        (anonymous(**PEER), None),
        ({}, None),
    ],
    ids=["peer support, e-mail", "peer support, phone", "no sector, in distress",
         "no consent to share", "no peer support"],
)  # fmt: skip
def test_a_peer_request_only_for_peer_support_with_consent_to_share_a_contact(
    directory: Directory, changes: dict[str, object], contact: dict[str, object] | None
) -> None:
    """The main track's first decision carries a peer request exactly when the person asked for
    peer support and consented to share a contact: region, stage, sector, the contact as given,
    locale and the decision time; never the message, needs or anything about distress."""
    person = submitted(**changes)
    request = decide("event-1", person, NOW, directory, {}).peer_request
    assert request == peer_request_of(person, NOW)
    if contact is None:
        assert request is None
        return
    assert request is not None
    situation = person.questionnaire.situation
    assert request.model_dump(mode="json") == {
        "reference": person.reference,
        "region": situation.region,
        "stage": situation.stage.value,
        "sector": situation.sector,
        "contact": contact,
        "locale": "fr",
        "requested_at": NOW.isoformat().replace("+00:00", "Z"),
        "statistics_consent": person.questionnaire.consents.statistics,
    }


@pytest.mark.parametrize("consented", [True, False])
def test_a_peer_request_says_the_statistics_consent(directory: Directory, consented: bool) -> None:
    """The peer request carries `consents.statistics` (events repeats it on each step of the
    match, which the console counts only with it)."""
    person = submitted(**PEER, consents__statistics=consented)
    request = decide("s", person, NOW, directory, {}).peer_request
    assert request is not None and request.statistics_consent is consented


def test_never_a_peer_request_on_the_distress_track(directory: Directory) -> None:
    """A person in distress who asked for peer support is requested once, by the main track;
    APESA's track (which also has the person's consents) carries none."""
    person = submitted(**PEER, distress="yes", consents__sensitive_data=True)
    main = decide("event-1", person, NOW, directory, {})
    beside = decide_distress(main.decision.decision_id, person, NOW, directory, {})
    assert main.peer_request is not None
    assert beside is not None and beside.peer_request is None


def test_ids_derive_from_the_event_and_the_attempt(directory: Directory) -> None:
    """A redelivered questionnaire is recognisable; a re-orientation gets its own stable id."""
    first, again = (decide("event-1", submitted(), NOW, directory, {}).decision for _ in range(2))
    other = decide("event-2", submitted(), NOW, directory, {}).decision
    assert first.decision_id == again.decision_id != other.decision_id
    assert first.referral and again.referral
    assert first.referral.referral_id == again.referral.referral_id
    assert reorientation_id(first.decision_id, 2) == reorientation_id(first.decision_id, 2)
    assert reorientation_id(first.decision_id, 2) != reorientation_id(first.decision_id, 3)


def test_the_directorys_distress_associations_are_those_public_pages_never_name() -> None:
    """The directory's `distress_only` associations are exactly the contracts'
    `DISTRESS_ASSOCIATIONS`, which intake's public status page keeps unnamed."""
    from rebond_contracts.associations import DISTRESS_ASSOCIATIONS
    from rebond_router.directory import load_directory

    directory = load_directory()
    assert {a.id for a in directory.associations if a.distress_only} == DISTRESS_ASSOCIATIONS


@pytest.mark.parametrize(
    ("region", "department", "antenna"),
    [("75", "33", "Antenne Gironde"), ("84", "69", None), ("75", None, None)],
    ids=["Bordeaux", "Lyon", "no department"],
)
def test_the_referral_names_the_antenna_of_the_persons_department(
    directory: Directory, region: str, department: str | None, antenna: str | None
) -> None:
    """60 000 rebonds' referral of a person in Gironde (33) is for its Gironde antenna, with
    the antenna's address; one from the Rhône (69), or without a department, is for the
    association itself."""
    person = submitted(situation__region=region, situation__department=department)
    referral = decide("event-1", person, NOW, directory, {}).decision.referral
    assert referral is not None
    assert referral.association_id is AssociationId.SOIXANTE_MILLE_REBONDS
    assert (referral.antenna.name if referral.antenna else None) == antenna
    if referral.antenna is not None:
        assert referral.antenna.email == "gironde@60000rebonds.example"


def test_a_reoriented_referral_takes_the_new_holders_antenna_not_the_previous_one(
    directory: Directory,
) -> None:
    """The Gironde antenna is 60 000 rebonds': when the referral moves on to Second Souffle
    (which has no antenna there), it is for Second Souffle itself."""
    from rebond_router.rules import StoredCandidate, reorient

    first = decide("event-1", submitted(), NOW, directory, {})
    template = first.decision.referral
    assert template is not None and template.antenna is not None
    souffle = next(
        c for c in first.referral_candidates if c.association is AssociationId.SECOND_SOUFFLE
    )
    second = reorient(
        first_decision_id=first.decision.decision_id, attempt=2, template=template,
        remaining=[StoredCandidate(souffle.association, souffle.score, souffle.reasons)],
        scores=first.decision.scores, rule_set_version=directory.version, urgent=False,
        now=NOW, directory=directory,
    )  # fmt: skip
    assert second.referral is not None
    assert second.referral.association_id is AssociationId.SECOND_SOUFFLE
    assert second.referral.antenna is None
