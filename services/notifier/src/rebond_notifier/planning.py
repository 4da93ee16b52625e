"""Pure: which side effects a decision or a status change calls for, fully rendered."""

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel

from rebond_contracts.associations import DISTRESS_ASSOCIATIONS, AssociationId
from rebond_contracts.envelope import Envelope, envelope_class
from rebond_contracts.payloads import (
    AntennaV1,
    CommunityMailKind,
    CommunityMailV1,
    ConferenceSummaryV1,
    DeliveryChannel,
    InvitationV1,
    ReferralStatus,
    ReferralStatusV1,
    ReferralV1,
    RegistrationChange,
    RegistrationV1,
    RoutingDecisionV1,
)
from rebond_contracts.topics import Service
from rebond_notifier import journey, messages, templates
from rebond_notifier.config import AssociationChannels
from rebond_notifier.signing import (
    Action,
    AnswerClaims,
    FollowUpClaims,
    make_follow_up_token,
    make_token,
)
from rebond_notifier.store import Holder, NewDelivery, Person, Told
from rebond_service.privacy import DEVELOPMENT_PRIVACY_CONTACT
from rebond_sql.types import Clock, utc_now

OFFER, REMINDER, EXPIRY, CONFIRMATION = "offer", "reminder", "expiry", "confirmation"
WITHDRAWAL = "withdrawal"
#: The person's e-mails at each step, by status (delivery-log kinds: at most 16 characters).
PERSON_KINDS = {
    ReferralStatus.ACCEPTED: "p_accepted",
    ReferralStatus.REORIENTED: "p_reoriented",
    ReferralStatus.UNROUTED: "p_unrouted",
    ReferralStatus.CLOSED: "p_closed",
    ReferralStatus.FOLLOW_UP_DUE: "p_follow_up",
}
ERASED = "p_erased"
#: The webhook's `type` of each kind of delivery (the body is the CloudEvent, whose `type` the
#: Standard Webhooks payload's `type` is): an offer keeps the type it always had.
WEBHOOK_TYPES = {
    OFFER: "fr.rebond.referral.offered",
    WITHDRAWAL: "fr.rebond.referral.withdrawn",
    REMINDER: "fr.rebond.referral.reminder",
    EXPIRY: "fr.rebond.referral.expired",
}
#: Delivery-log keys of the erasure confirmations (no row keeps the erased reference itself).
ERASURE_NAMESPACE = uuid.UUID("5d0c7a3e-8f21-4b6e-a9c4-3e7f1d2b6a90")
#: Event ids of the reminders' and expiries' webhook bodies: one per referral and kind.
STATUS_WEBHOOK_NAMESPACE = uuid.UUID("9e4b2c61-7d3a-4f58-b0e2-6c1a8d5f3b27")
#: Kinds of the e-mails about the Conférences du rebond (at most 16 characters: the log's column).
REGISTRATION_KINDS = {
    RegistrationChange.CONFIRMED: "conf_confirmed",
    RegistrationChange.WAITLISTED: "conf_waitlisted",
    RegistrationChange.PROMOTED: "conf_promoted",
    RegistrationChange.CANCELLED: "conf_cancelled",
    RegistrationChange.EVENT_UPDATED: "conf_updated",
    RegistrationChange.REMINDER: "conf_reminder",
}
INVITATION = "invitation"
#: Kinds of the e-mails the events service writes about success stories and peer exchange
#: (`CommunityMailV1`), shortened to the log's 16 characters.
COMMUNITY_KINDS = {
    CommunityMailKind.STORY_RECEIVED: "story_received",
    CommunityMailKind.STORY_MODERATED: "story_moderated",
    CommunityMailKind.VOLUNTEER_CONFIRM: "vol_confirm",
    CommunityMailKind.VOLUNTEER_MODERATED: "vol_moderated",
    CommunityMailKind.PEER_INTRODUCTION: messages.PEER_INTRO,
    CommunityMailKind.PEER_NONE: messages.PEER_NONE,
}
#: Delivery-log keys of event ids that are not UUIDs (the log's key column holds 36 characters).
EVENT_KEY_NAMESPACE = uuid.UUID("0b5f2d7e-3c1a-4e8b-9f6d-2a7c4e1b8d35")


@dataclass(frozen=True)
class LinkMaker:
    """Builds the signed answer links of the association e-mails.

    A link lasts exactly as long as the association may answer: until its deadline
    (`respond_by`, which the referral and the reminder carry). After it the router has moved the
    referral on, and an answer would be set aside while the page confirmed it. Only a referral
    without a deadline gets `valid_days`."""

    key: bytes
    base_url: str
    valid_days: int = 8
    clock: Clock = field(default=utc_now, compare=False)
    #: The portal's public address (intake), where `/suivi/{reference}` shows a request.
    portal_url: str = "http://127.0.0.1:8000"
    #: How long the person's follow-up links last.
    follow_up_days: int = 30
    #: The grouping's data-protection contact, in every e-mail to the person.
    privacy_contact: str = DEVELOPMENT_PRIVACY_CONTACT

    def status_page(self, reference: str) -> str:
        return f"{self.portal_url.rstrip('/')}/suivi/{reference}"

    def follow_up(self, status: ReferralStatusV1) -> journey.Links:
        """The `/suivi` link, and for a follow-up its signed yes and no links."""
        page = self.status_page(status.reference)
        if status.referral_id is None or status.association_id is None:
            return journey.Links(page, privacy=self.privacy_contact)
        expires = int((self.clock() + timedelta(days=self.follow_up_days)).timestamp())
        url = {
            contacted: f"{self.base_url.rstrip('/')}/contact/"
            + make_follow_up_token(
                self.key,
                FollowUpClaims(
                    referral_id=status.referral_id,
                    reference=status.reference,
                    association_id=status.association_id,
                    contacted=contacted,
                    expires_at=expires,
                ),
            )
            for contacted in (True, False)
        }
        return journey.Links(page, url[True], url[False], self.privacy_contact)

    def links(
        self,
        referral_id: str,
        reference: str,
        association: AssociationId,
        respond_by: datetime | None,
    ) -> templates.AnswerLinks:
        until = respond_by or self.clock() + timedelta(days=self.valid_days)
        expires = int(until.timestamp())
        url = {
            action: f"{self.base_url.rstrip('/')}/reponse/"
            + make_token(
                self.key,
                AnswerClaims(
                    referral_id=UUID(referral_id),
                    reference=reference,
                    association_id=association,
                    action=action,
                    expires_at=expires,
                ),
            )
            for action in Action
        }
        return templates.AnswerLinks(
            accept=url[Action.ACCEPT],
            decline=url[Action.DECLINE],
            expires_at=datetime.fromtimestamp(expires, UTC),
        )


def _mail(mail: templates.Mail) -> dict[str, str]:
    return {"to": mail.to, "subject": mail.subject, "text": mail.text}


def _webhook(body: str, antenna: AntennaV1 | None) -> dict[str, str]:
    """A webhook delivery's payload: the body, and the antenna's own webhook URL when it has
    one (the associations file does not hold it; without it, the dispatcher posts to the
    association's webhook, as `AssociationChannels.reaching` says)."""
    if antenna is None or antenna.webhook_url is None:
        return {"body": body}
    return {"body": body, "url": antenna.webhook_url}


def antenna_of(stored: str | None) -> AntennaV1 | None:
    """The antenna a referral was for, as the delivery log keeps it (`Offer.antenna`)."""
    return AntennaV1.model_validate_json(stored) if stored else None


def for_decision(
    decision: RoutingDecisionV1,
    referral_event: Envelope[ReferralV1],
    associations: Mapping[AssociationId, AssociationChannels],
    links: LinkMaker,
) -> list[NewDelivery]:
    """The association's e-mail, its webhook when it has one, and, for a first decision only,
    the person's confirmation when they gave an e-mail address."""
    referral = decision.referral
    if referral is None:
        return []
    # The antenna of the person's department when the referral names one (the router's
    # directory), else the association's own address.
    channels = associations[referral.association_id].reaching(referral.antenna)
    common = {
        "referral_id": str(referral.referral_id),
        "reference": referral.reference,
        "association_id": referral.association_id.value,
        "correlation_id": referral_event.correlationid,
    }
    answer_links = links.links(
        str(referral.referral_id), referral.reference, referral.association_id,
        referral.respond_by,
    )  # fmt: skip
    planned = [
        NewDelivery(
            channel=DeliveryChannel.ASSOCIATION_EMAIL.value,
            kind=OFFER,
            payload=_mail(
                templates.association_referral(
                    referral, channels.email, answer_links, attempt=decision.attempt
                )
            ),
            **common,
        )
    ]
    if channels.webhook_url:
        planned.append(
            NewDelivery(
                channel=DeliveryChannel.WEBHOOK.value,
                kind=OFFER,
                payload=_webhook(referral_event.model_dump_json(), referral.antenna),
                **common,
            )
        )
    if decision.attempt == 1 and referral.contact.email:
        planned.append(
            NewDelivery(
                channel=DeliveryChannel.PERSON_EMAIL.value,
                kind=CONFIRMATION,
                payload=_mail(
                    templates.person_confirmation(
                        referral,
                        links.status_page(referral.reference),
                        distress_track=decision.track == "distress",
                        privacy_contact=links.privacy_contact,
                    )
                ),
                **common,
            )
        )
    return planned


def webhook_body(kind: str, data: BaseModel, subject: str, correlation_id: str, id: str) -> str:
    """A webhook's body: a CloudEvent in JSON (as the offers always were), typed by `kind`."""
    event = envelope_class(type(data))(
        id=id, source=f"/rebond/{Service.NOTIFIER.value}", type=WEBHOOK_TYPES[kind],
        subject=subject, correlationid=correlation_id, schemaversion=1, data=data,
    )  # fmt: skip
    return event.model_dump_json()


def for_status(
    status: ReferralStatusV1,
    correlation_id: str,
    associations: Mapping[AssociationId, AssociationChannels],
    links: LinkMaker,
    antenna: AntennaV1 | None = None,
) -> list[NewDelivery]:
    """A reminder or an expiry to the association, by e-mail and by its webhook when it has
    one, or to `antenna` when the referral was for one (its offer went there); nothing for
    other statuses."""
    if status.status not in (ReferralStatus.REMINDED, ReferralStatus.EXPIRED):
        return []
    if status.referral_id is None or status.association_id is None:
        return []
    channels = associations[status.association_id].reaching(antenna)
    if status.status == ReferralStatus.REMINDED:
        kind = REMINDER
        mail = templates.association_reminder(
            status.association_id,
            channels.email,
            status.reference,
            status.respond_by,
            links.links(
                str(status.referral_id),
                status.reference,
                status.association_id,
                status.respond_by,
            ),
        )
    else:
        kind = EXPIRY
        mail = templates.association_expiry(status.association_id, channels.email, status.reference)
    common = {
        "referral_id": str(status.referral_id), "kind": kind, "reference": status.reference,
        "association_id": status.association_id.value, "correlation_id": correlation_id,
    }  # fmt: skip
    planned = [
        NewDelivery(channel=DeliveryChannel.ASSOCIATION_EMAIL.value, payload=_mail(mail), **common)
    ]
    if channels.webhook_url:
        event_id = str(uuid.uuid5(STATUS_WEBHOOK_NAMESPACE, f"{status.referral_id}:{kind}"))
        body = webhook_body(kind, status, status.reference, correlation_id, event_id)
        planned.append(
            NewDelivery(
                channel=DeliveryChannel.WEBHOOK.value,
                payload=_webhook(body, antenna),
                **common,
            )
        )
    return planned


def _track(told: Told) -> str | None:
    """The track a mail `told` was about, read from its association: a distress association
    holds only the distress track (`DISTRESS_ASSOCIATIONS`, kept equal to the router's
    directory); None when it named none (a closure)."""
    if not told.association_id:
        return None
    return "distress" if AssociationId(told.association_id) in DISTRESS_ASSOCIATIONS else "main"


def earlier(status: ReferralStatusV1, told: Collection[Told]) -> journey.Earlier:
    """What the mails `told` said about the track `status` is not about (and any closure)."""
    other = [t for t in told if _track(t) not in (None, status.track)]
    accepted = [t for t in other if t.kind == PERSON_KINDS[ReferralStatus.ACCEPTED]]
    return journey.Earlier(
        accepted_by=AssociationId(accepted[-1].association_id) if accepted else None,
        unrouted=any(t.kind == PERSON_KINDS[ReferralStatus.UNROUTED] for t in other),
        closed=any(t.kind == PERSON_KINDS[ReferralStatus.CLOSED] for t in told),
    )


def for_person(
    status: ReferralStatusV1,
    person: Person,
    correlation_id: str,
    links: LinkMaker,
    *,
    cause: ReferralStatus | None = None,
    callback_days: int = 2,
    told: Collection[Told] = (),
) -> list[NewDelivery]:
    """The person's e-mail for one step of their request (`journey.step_mail`), once per
    referral and step (the delivery log's key: the referral id and the step's kind). `told`:
    the step e-mails already recorded for the request, so that with two tracks (main and
    distress) the second of two alike steps says what differs, or nothing when it would
    repeat the first."""
    kind = PERSON_KINDS.get(status.status)
    if kind is None:
        return []
    mail = journey.step_mail(
        status, person, links.follow_up(status), cause=cause, callback_days=callback_days,
        earlier=earlier(status, told),
    )  # fmt: skip
    if mail is None:
        return []
    key = str(status.referral_id) if status.referral_id else event_key(
        f"{status.reference}:{status.track}:{status.status.value}"
    )  # fmt: skip
    return [
        NewDelivery(
            referral_id=key,
            channel=DeliveryChannel.PERSON_EMAIL.value,
            kind=kind,
            reference=status.reference,
            association_id=status.association_id.value if status.association_id else "",
            correlation_id=correlation_id[:64],
            payload=_mail(mail),
        )
    ]


def for_erasure(
    holders: list[Holder],
    person: Person | None,
    reference: str,
    at: datetime,
    correlation_id: str,
    associations: Mapping[AssociationId, AssociationChannels],
    privacy_contact: str = DEVELOPMENT_PRIVACY_CONTACT,
) -> list[NewDelivery]:
    """An erasure told by e-mail and webhook to each association that held the referral (to
    its antenna when the referral was for one), and confirmed to the person. Recorded with no reference (`DeliveryStore.erasing`); the
    association's mail names the reference, which it holds already."""
    planned: list[NewDelivery] = []
    for holder in holders:
        association = AssociationId(holder.association_id)
        antenna = antenna_of(holder.antenna)
        channels = associations[association].reaching(antenna)
        common = {
            "referral_id": holder.referral_id, "kind": WITHDRAWAL, "reference": "",
            "association_id": association.value, "correlation_id": correlation_id[:64],
        }  # fmt: skip
        mail = templates.association_withdrawal(association, channels.email, reference)
        planned.append(
            NewDelivery(
                channel=DeliveryChannel.ASSOCIATION_EMAIL.value, payload=_mail(mail), **common
            )
        )
        if channels.webhook_url:
            event = messages.withdrawal_event(
                reference, holder.referral_id, association, at, correlation_id
            )
            planned.append(
                NewDelivery(
                    channel=DeliveryChannel.WEBHOOK.value,
                    payload=_webhook(event.model_dump_json(), antenna),
                    **common,
                )
            )
    if person is not None:
        planned.append(
            NewDelivery(
                referral_id=str(uuid.uuid5(ERASURE_NAMESPACE, reference)),
                channel=DeliveryChannel.PERSON_EMAIL.value,
                kind=ERASED,
                reference="",
                association_id="",
                correlation_id=correlation_id[:64],
                payload=_mail(journey.erased_mail(person, privacy_contact)),
            )
        )
    return planned


# --- Conférences du rebond ------------------------------------------------------------------
#
# These e-mails go to a person, not to an association, and are about no referral. They use the
# same delivery log: its key column holds the *CloudEvent id* of the registration event (one
# registration may be told of several changes, and the events service republishes an event with
# the same id), or the invitation id; `association_id` is empty, and `reference` is the
# submission reference for an invitation and empty for a registration.


def event_key(event_id: str) -> str:
    """The delivery-log key of an event: its id when it is a UUID, else a UUID derived from it."""
    try:
        return str(UUID(event_id))
    except ValueError:
        return str(uuid.uuid5(EVENT_KEY_NAMESPACE, event_id))


def ics_link(conference: ConferenceSummaryV1, *other_urls: str | None) -> str | None:
    """The conference's calendar file: given in the payload, else derived from the events
    service's public address, read from the conference page or another of its links."""
    if conference.ics_url:
        return conference.ics_url
    for url in (conference.page_url, *other_urls):
        if not url:
            continue
        parts = urlsplit(url)
        for marker in ("/evenements/", "/inscriptions/", "/v1/"):
            if marker in parts.path:
                root = parts.path.split(marker, 1)[0]
                base = f"{parts.scheme}://{parts.netloc}{root}"
                return f"{base}/v1/events/{conference.event_id}/calendar.ics"
    return None


def _event_mail(
    correlation_id: str, key: str, kind: str, mail: templates.Mail, *, reference: str = ""
) -> NewDelivery:
    """A person's e-mail about an event read from Kafka, about no association: unique in the log
    by (`key`, channel, `kind`), so the event read again records nothing new."""
    return NewDelivery(
        referral_id=key,
        channel=DeliveryChannel.PERSON_EMAIL.value,
        kind=kind,
        reference=reference,
        association_id="",
        correlation_id=correlation_id[:64],
        payload=_mail(mail),
    )


def for_registration(event: Envelope[RegistrationV1]) -> list[NewDelivery]:
    """One e-mail to the person, keyed by the event id: a redelivered event sends nothing."""
    registration = event.data
    mail = templates.registration_mail(
        registration, ics_link(registration.conference, registration.cancel_url)
    )
    return [
        _event_mail(
            event.correlationid, event_key(event.id), REGISTRATION_KINDS[registration.change], mail
        )
    ]


def for_invitation(event: Envelope[InvitationV1]) -> list[NewDelivery]:
    """One e-mail to the invited person, keyed by the invitation id (one per person and conference)."""
    invitation = event.data
    mail = templates.invitation_mail(invitation, ics_link(invitation.conference))
    key = str(invitation.invitation_id)
    return [_event_mail(event.correlationid, key, INVITATION, mail, reference=invitation.reference)]


def for_community_mail(event: Envelope[CommunityMailV1]) -> list[NewDelivery]:
    """The events service's e-mail, sent as it is, keyed by its `mail_id`: a redelivered record
    finds its row and sends nothing more. A peer mail is filed under the person's reference
    (`CommunityMailV1.reference`): the person's erasure deletes it while unsent, and one read
    after the erasure is not recorded (`DeliveryStore.enqueue`); no `DeliveryV1` tells its
    outcome (`messages.UNTOLD_KINDS`). The others are filed under none. The dispatcher erases
    the address and text once it is sent, and `DeliveryStore.anonymise` those of a row left
    too long."""
    mail = event.data
    written = templates.Mail(mail.to, mail.subject, mail.text)
    return [
        _event_mail(
            event.correlationid, str(mail.mail_id), COMMUNITY_KINDS[mail.kind], written,
            reference=mail.reference or "",
        )
    ]  # fmt: skip
