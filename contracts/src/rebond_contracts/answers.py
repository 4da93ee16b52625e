"""An association's answer given on its behalf, as one event whoever gives it.

The notifier's e-mail links and the coordination console's inbox both publish an association's
accept or decline on `responses.<association_id>` as delegates. They build the event here, so
both give the same answer the same event id (`answer_event_id`, derived from the referral and
the answer): an answer given twice (a retry, the link clicked after the inbox was used) is one
event the router recognises, not two.
"""

import uuid

from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import Envelope
from rebond_contracts.payloads import ReferralResponseV1
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
    return responses(association).envelope(
        response,
        subject=response.reference,
        correlationid=response.reference,
        id=answer_event_id(response.referral_id, response.answer.value),
    )
