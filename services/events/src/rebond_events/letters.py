"""What the peer exchange and the success stories announce, as outbox messages: e-mails on
`community.mail` (written here, French first then English, for the notifier to send as they
are) and the steps of a peer match on `peers.matches`. Pure: the caller gives the time.

Every link in these e-mails is signed (`SignedLinks`): whoever holds one may withdraw that story,
or pause, erase, decline or report as that volunteer or person, and nobody can make one for another.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from itsdangerous import BadData, URLSafeSerializer

from rebond_contracts.payloads import (
    CommunityMailKind,
    CommunityMailV1,
    PeerMatchStatus,
    PeerMatchV1,
)
from rebond_contracts.topics import COMMUNITY_MAIL, PEER_MATCHES
from rebond_events.announcements import outbox_message
from rebond_sql.outbox import Message


class InvalidToken(Exception):
    """Not a token this service signed for that purpose and that id."""


class SignedLinks:
    """Signs and reads the tokens of the e-mailed links (itsdangerous, one salt per purpose,
    so a token made to pause a volunteer cannot withdraw a story, nor one of another id).

    They do not expire: a story may be withdrawn, a volunteer may leave, years later. What a
    link does is undone by nothing but the person: a token for an id that is gone does nothing.
    """

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def _serializer(self, purpose: str) -> URLSafeSerializer:
        return URLSafeSerializer(self._secret, salt=f"rebond-events/{purpose}")

    def token(self, purpose: str, subject_id: str) -> str:
        return str(self._serializer(purpose).dumps(subject_id))

    def check(self, purpose: str, subject_id: str, token: str) -> None:
        """`InvalidToken` unless `token` was signed for `purpose` and `subject_id`."""
        if not token.isascii():
            raise InvalidToken("not a token")
        try:
            signed = self._serializer(purpose).loads(token)
        except BadData:
            raise InvalidToken("bad signature") from None
        if signed != subject_id:
            raise InvalidToken("another subject")


@dataclass(frozen=True)
class Mail:
    """One e-mail to write: French text first, then its English version."""

    kind: CommunityMailKind
    to: str
    subject_fr: str
    subject_en: str
    text_fr: str
    text_en: str
    locale: str = "fr"

    #: The person's submission reference when the mail is about their peer request: the
    #: notifier files it under it, so their erasure cancels it while unsent.
    reference: str | None = None

    def payload(self, mail_id: uuid.UUID, now: datetime) -> CommunityMailV1:
        return CommunityMailV1(
            mail_id=mail_id, kind=self.kind, to=self.to, locale=self.locale,
            subject=f"{self.subject_fr} ({self.subject_en})",
            text=f"{self.text_fr}\n\n---\n\n{self.text_en}\n", at=now,
            reference=self.reference,
        )  # fmt: skip


class CommunityLinks:
    """Where people reach the stories and the peer exchange, with the signed links they get
    by e-mail (the page each opens asks for a click: mail scanners opening links do nothing)."""

    def __init__(self, public_base_url: str, signing_secret: str) -> None:
        self.base = public_base_url.rstrip("/")
        self.signed = SignedLinks(signing_secret)

    def _link(self, path: str, purpose: str, subject_id: str) -> str:
        return f"{self.base}{path}?token={self.signed.token(purpose, subject_id)}"

    def withdraw_story(self, story_id: str) -> str:
        return self._link(f"/temoignages/{story_id}/retirer", "withdraw-story", story_id)

    def confirm_volunteer(self, volunteer_id: str) -> str:
        return self._link(f"/pairs/{volunteer_id}/confirmer", "confirm-volunteer", volunteer_id)

    def manage_volunteer(self, volunteer_id: str) -> str:
        return self._link(f"/pairs/{volunteer_id}/gerer", "manage-volunteer", volunteer_id)

    def decline_match(self, match_id: str, side: str) -> str:
        return self._link(
            f"/pairs/mises-en-relation/{match_id}/{side}", f"decline-{side}", match_id
        )

    def report_match(self, match_id: str, side: str) -> str:
        return self._link(
            f"/pairs/mises-en-relation/{match_id}/{side}/signaler", f"report-{side}", match_id
        )

    def stories(self) -> str:
        return f"{self.base}/temoignages"


def mail_message(mail: Mail, subject: str, now: datetime) -> Message:
    """`mail` as a record of `community.mail` keyed by what it is about (`subject`)."""
    mail_id = uuid.uuid4()
    return outbox_message(
        COMMUNITY_MAIL, mail.payload(mail_id, now), subject=subject, correlation_id=subject,
        event_id=str(mail_id),
    )  # fmt: skip


def match_message(
    reference: str,
    status: PeerMatchStatus,
    region: str,
    attempt: int,
    now: datetime,
    match_id: str | None = None,
    statistics_consent: bool = False,
) -> Message:
    """A step of a person's peer match on `peers.matches` (no name, no contact), saying
    whether the person consented to statistics (the console counts it only then)."""
    payload = PeerMatchV1(
        match_id=uuid.UUID(match_id) if match_id else None, reference=reference,
        status=status, region=region, attempt=attempt, at=now,
        statistics_consent=statistics_consent,
    )  # fmt: skip
    return outbox_message(PEER_MATCHES, payload, subject=reference, correlation_id=reference)
