"""The first rule set: the stage chooses the association; consent decides what is shared."""

import copy
from datetime import UTC, datetime

import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import QuestionnaireCompletedV1
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE, Distress, Stage
from rebond_router.rules import RULE_SET_VERSION, decide

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
REFERENCE = "RB-7K3M-Q9XA-2DFE-W8NB"


def submitted(**changes: object) -> QuestionnaireCompletedV1:
    answers = copy.deepcopy(EXAMPLE_QUESTIONNAIRE)
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            answers[section][field] = value  # type: ignore[index]
        else:
            answers[section] = value
    return QuestionnaireCompletedV1.model_validate(
        {"reference": REFERENCE, "received_at": NOW, "questionnaire": answers}
    )


@pytest.mark.parametrize(
    ("stage", "association"),
    [
        (Stage.PRE_PROCEDURE, AssociationId.SECOND_SOUFFLE),
        (Stage.AMICABLE_PROCEDURE, AssociationId.SOS_ENTREPRENEUR),
        (Stage.SAFEGUARD, AssociationId.SOS_ENTREPRENEUR),
        (Stage.RECEIVERSHIP, AssociationId.SOS_ENTREPRENEUR),
        (Stage.LIQUIDATION_IN_PROGRESS, AssociationId.SECOND_SOUFFLE),
        (Stage.AFTER_LIQUIDATION, AssociationId.SOIXANTE_MILLE_REBONDS),
        (Stage.PROFESSIONAL_RECOVERY, AssociationId.SOIXANTE_MILLE_REBONDS),
        (Stage.UNSURE, AssociationId.SECOND_SOUFFLE),
    ],
)
def test_each_stage_is_oriented_to_its_association(
    stage: Stage, association: AssociationId
) -> None:
    """Every stage has a rule, and the referral goes to the association the rule names."""
    decision = decide("event-1", submitted(situation__stage=stage.value), NOW)
    assert decision.primary is association
    assert decision.referral is not None and decision.referral.association_id is association
    assert decision.reasons[0].code == f"stage_{stage.value}"
    assert decision.rule_set_version == RULE_SET_VERSION


def test_no_consent_to_share_gives_a_decision_without_referral() -> None:
    """Without consent the person still gets a recommendation, but nobody is contacted."""
    decision = decide(
        "event-1",
        submitted(
            contact=None,
            consents__share_with_association=False,
        ),
        NOW,
    )
    assert decision.primary is AssociationId.SOIXANTE_MILLE_REBONDS
    assert decision.referral is None


@pytest.mark.parametrize(("sensitive", "shared"), [(True, Distress.YES), (False, None)])
def test_distress_reaches_the_association_only_with_explicit_consent(
    sensitive: bool, shared: Distress | None
) -> None:
    """The decision is urgent on distress; the answer itself is shared only with art. 9 consent."""
    decision = decide("event-1", submitted(distress="yes", consents__sensitive_data=sensitive), NOW)
    assert decision.urgent is True
    assert decision.referral is not None
    assert decision.referral.distress == shared
    assert decision.referral.urgent is sensitive


def test_the_same_event_always_gives_the_same_decision_and_referral_ids() -> None:
    """A redelivered questionnaire is recognisable: ids derive from the event id."""
    first, again = (decide("event-1", submitted(), NOW) for _ in range(2))
    other = decide("event-2", submitted(), NOW)
    assert first.decision_id == again.decision_id != other.decision_id
    assert first.referral and again.referral
    assert first.referral.referral_id == again.referral.referral_id
