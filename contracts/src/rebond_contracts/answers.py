"""An association's answer given on its behalf, as one event whoever gives it.

The notifier's e-mail links and the coordination console's inbox both publish an association's
accept or decline on `responses.<association_id>` as delegates. They build the event here, so
both give the same answer the same event id (`answer_event_id`, derived from the referral and
the answer): an answer given twice (a retry, the link clicked after the inbox was used) is one
event the router recognises, not two. An outcome (`ReferralOutcomeV1`) recorded on an
association's behalf is built here for the same reason (`outcome_event`).
"""

import uuid
from typing import TypeVar

from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import Envelope
from rebond_contracts.payloads import ReferralOutcomeV1, ReferralResponseV1
from rebond_contracts.topics import responses

#: Event ids of answers given on an association's behalf: one per referral and answer.
ANSWER_NAMESPACE = uuid.UUID("1d0b3c0e-58e2-4f8e-9a0e-6a4f3f2d9c21")


def answer_event_id(referral_id: uuid.UUID, answer: str) -> str:
    """The event id of `answer` to `referral_id`: the same for every delegate and retry."""
    return str(uuid.uuid5(ANSWER_NAMESPACE, f"{referral_id}:{answer}"))


def answer_event(
    association: AssociationId, response: ReferralResponseV1
) -> Envelope[ReferralResponseV1]:
    """The `responses.<association>` event of `response`, keyed and correlated by reference."""
    return _on_behalf(
        association, response, answer_event_id(response.referral_id, response.answer.value)
    )


def outcome_event_id(referral_id: uuid.UUID, outcome: str) -> str:
    """The event id of `outcome` recorded for `referral_id`: the same for every retry and
    delegate, so the router counts one outcome once."""
    return str(uuid.uuid5(ANSWER_NAMESPACE, f"{referral_id}:outcome:{outcome}"))


def outcome_event(
    association: AssociationId, outcome: ReferralOutcomeV1
) -> Envelope[ReferralOutcomeV1]:
    """The `responses.<association>` event of `outcome`, keyed and correlated by reference."""
    return _on_behalf(
        association, outcome, outcome_event_id(outcome.referral_id, outcome.outcome.value)
    )


_Given = TypeVar("_Given", ReferralResponseV1, ReferralOutcomeV1)


def _on_behalf(association: AssociationId, data: _Given, event_id: str) -> Envelope[_Given]:
    return responses(association).envelope(
        data, subject=data.reference, correlationid=data.reference, id=event_id
    )
