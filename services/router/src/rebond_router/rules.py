"""Orientation rules: a pure function from a questionnaire to a routing decision.

First rule set: the person's stage chooses the association, following the grouping's own
partnership ("in difficulty" -> Second Souffle, "after liquidation" -> 60 000 rebonds).
"""

from dataclasses import dataclass
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    QuestionnaireCompletedV1,
    Reason,
    ReferralV1,
    RoutingDecisionV1,
)
from rebond_contracts.questionnaire import Distress, Stage

RULE_SET_VERSION = "stage-1"
_NAMESPACE = uuid5(NAMESPACE_URL, "https://rebond.example/decisions")


@dataclass(frozen=True)
class StageRule:
    association: AssociationId
    fr: str
    en: str


STAGE_RULES: dict[Stage, StageRule] = {
    Stage.PRE_PROCEDURE: StageRule(
        AssociationId.SECOND_SOUFFLE,
        "vous traversez des difficultés sans procédure en cours",
        "you are in difficulty with no court procedure yet",
    ),
    Stage.AMICABLE_PROCEDURE: StageRule(
        AssociationId.SOS_ENTREPRENEUR,
        "vous êtes en procédure amiable (mandat ad hoc ou conciliation)",
        "you are in an amicable procedure (mandat ad hoc or conciliation)",
    ),
    Stage.SAFEGUARD: StageRule(
        AssociationId.SOS_ENTREPRENEUR,
        "votre entreprise est en sauvegarde",
        "your company is under safeguard",
    ),
    Stage.RECEIVERSHIP: StageRule(
        AssociationId.SOS_ENTREPRENEUR,
        "votre entreprise est en redressement judiciaire",
        "your company is in receivership",
    ),
    Stage.LIQUIDATION_IN_PROGRESS: StageRule(
        AssociationId.SECOND_SOUFFLE,
        "votre entreprise est en cours de liquidation",
        "your company is being liquidated",
    ),
    Stage.AFTER_LIQUIDATION: StageRule(
        AssociationId.SOIXANTE_MILLE_REBONDS,
        "vous êtes après une liquidation ou une cession",
        "you are after a liquidation or a court-ordered sale",
    ),
    Stage.PROFESSIONAL_RECOVERY: StageRule(
        AssociationId.SOIXANTE_MILLE_REBONDS,
        "vous êtes en rétablissement professionnel",
        "you are in professional recovery",
    ),
    Stage.UNSURE: StageRule(
        AssociationId.SECOND_SOUFFLE,
        "vous ne savez pas encore où en est votre entreprise : une écoute d'abord",
        "you are not sure of your company's stage: listening first",
    ),
}


def decision_id_for(event_id: str) -> UUID:
    """The same questionnaire event always yields the same decision id (idempotent redelivery)."""
    return uuid5(_NAMESPACE, event_id)


def decide(event_id: str, submitted: QuestionnaireCompletedV1, now: datetime) -> RoutingDecisionV1:
    answers = submitted.questionnaire
    rule = STAGE_RULES[answers.situation.stage]
    reasons = [Reason(code=f"stage_{answers.situation.stage.value}", fr=rule.fr, en=rule.en)]
    decision_id = decision_id_for(event_id)
    urgent = answers.distress is Distress.YES
    referral = None
    if answers.consents.share_with_association and answers.contact is not None:
        referral = ReferralV1(
            referral_id=uuid5(decision_id, rule.association.value),
            reference=submitted.reference,
            association_id=rule.association,
            urgent=urgent and answers.consents.sensitive_data,
            stage=answers.situation.stage,
            region=answers.situation.region,
            department=answers.situation.department,
            needs=answers.needs,
            contact=answers.contact,
            message=answers.message,
            distress=answers.distress if answers.consents.sensitive_data else None,
            reasons=reasons,
            referred_at=now,
        )
    return RoutingDecisionV1(
        decision_id=decision_id,
        reference=submitted.reference,
        rule_set_version=RULE_SET_VERSION,
        primary=rule.association,
        reasons=reasons,
        urgent=urgent,
        referral=referral,
        decided_at=now,
    )
