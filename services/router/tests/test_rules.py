"""Decisions: consent decides what is shared, distress makes it urgent, ids are derived."""

from datetime import timedelta

import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.questionnaire import Distress
from rebond_router.directory import Directory
from rebond_router.rules import decide, reorientation_id

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
    ("sensitive", "holder", "shared"),
    [
        (True, AssociationId.APESA, Distress.YES),
        (False, AssociationId.SOIXANTE_MILLE_REBONDS, None),
    ],
)
def test_distress_goes_to_apesa_only_with_explicit_consent(
    directory: Directory, sensitive: bool, holder: AssociationId, shared: Distress | None
) -> None:
    """Distress makes the decision urgent; APESA and the answer itself need art. 9 consent."""
    routing = decide(
        "event-1", submitted(distress="yes", consents__sensitive_data=sensitive), NOW, directory, {}
    )
    decision = routing.decision
    assert decision.urgent is True
    assert decision.referral is not None
    assert decision.referral.association_id is holder and decision.primary is holder
    assert decision.referral.distress == shared
    assert decision.referral.urgent is sensitive
    assert "distress_resources" in [r.code for r in decision.reasons]
    assert (
        AssociationId.APESA in [c.association for c in routing.referral_candidates]
    ) is sensitive


def test_distress_without_sharing_still_shows_apesa_and_the_resources(
    directory: Directory,
) -> None:
    """A person in distress who shares nothing is shown APESA and the 3114, with no referral."""
    decision = decide("e", submitted(**anonymous(distress="yes")), NOW, directory, {}).decision
    assert decision.primary is AssociationId.APESA and decision.referral is None
    assert "3114" in next(r.fr for r in decision.reasons if r.code == "distress_resources")


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
