"""Peer exchange: entrepreneurs who bounced back volunteer to talk with someone going through it,
and people who asked for a peer are introduced to one (issue 24).

A volunteer signs up (explicit consent), confirms their address with the e-mailed link, and is
matched only once a moderator approved them; their own signed link pauses, resumes or erases
them. A person arrives from the router (`peers.requests`, only what matching and an
introduction need). Matching (`choose_peer`, pure) takes an approved volunteer of the person's
region, preferring a similar stage then the same sector, never one at their monthly limit nor
one already proposed to that person; each side is e-mailed the other's details, only those
each agreed to share, with a signed link to decline, which proposes the next volunteer, and one
to report a problem (`report`): the match ends and the volunteer is introduced to nobody until
a moderator, on the console's moderation page, approves them again or removes them.

An approved volunteer's link also says they will attend an upcoming `peer_exchange` conference
(`attend`), with their consent to be listed on its page by pseudonym, region and stage
(`attendees`); only approved volunteers are listed, and a pause, a report or an erasure deletes
their attendances in the same transaction, so the page never lists someone who stepped back.

Use cases are plain functions of a `PeerRepository` (one transaction) and a clock, returning
what they did and the messages announcing it (`ports.Outcome`).
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal, Protocol, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from rebond_contracts.moderation import VolunteerForModerator, VolunteerStatus
from rebond_contracts.payloads import (
    CommunityMailKind,
    PeerMatchStatus,
    PeerRequestV1,
)
from rebond_contracts.questionnaire import PHONE_PATTERN, Locale, Region, Sector, Stage
from rebond_events.errors import Conflict, Forbidden, NotFound
from rebond_events.letters import CommunityLinks, InvalidToken, Mail, mail_message, match_message
from rebond_events.models import Line, LinkRequest, PersonName
from rebond_events.ports import Outcome, random_id
from rebond_events.stories import Consent
from rebond_sql.outbox import Message
from rebond_sql.types import Clock

#: A volunteer's monthly limit counts the introductions of this many days back.
MONTH = timedelta(days=30)

T = TypeVar("T")
#: The two sides of a match, each with its own signed links (to decline, to report).
Side = Literal["person", "volunteer"]


class VolunteerIn(BaseModel):
    """What a volunteer sends. `contact` is what they agree to share with the people they are
    introduced to (an e-mail or a phone number, as `contact_channel` says); `email` is where
    the service writes to them."""

    model_config = ConfigDict(extra="forbid")

    pseudonym: PersonName
    region: Region
    stage: Stage
    sector: Sector
    contact_channel: Literal["email", "phone"]
    contact: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)]
    email: EmailStr
    availability: Annotated[Line, StringConstraints(max_length=200)]
    monthly_limit: int = Field(ge=1, le=10)
    consent: Consent
    locale: Locale = Locale.FR

    @field_validator("contact")
    @classmethod
    def _contact_of_its_channel(cls, value: str, info: ValidationInfo) -> str:
        """An e-mail address or a phone number, as `contact_channel` says."""
        channel = info.data.get("contact_channel")
        if channel == "phone" and not re.fullmatch(PHONE_PATTERN, value):
            raise PydanticCustomError("contact_phone", "A phone number, e.g. 06 12 34 56 78")
        if channel == "email" and not re.fullmatch(r"[^\s@]+@[^\s@]+\.[^\s@]+", value):
            raise PydanticCustomError("contact_email", "An e-mail address, e.g. nom@exemple.fr")
        return value


@dataclass(frozen=True)
class Volunteer:
    id: str
    status: VolunteerStatus
    pseudonym: str
    region: str
    stage: str
    sector: str
    contact_channel: str
    contact: str
    email: str
    availability: str
    monthly_limit: int
    locale: str
    created_at: datetime
    updated_at: datetime

    def for_moderator(self, reported_by: str | None = None) -> VolunteerForModerator:
        """The fields `VolunteerForModerator` names (never a contact nor the address)."""
        return VolunteerForModerator.model_validate({**asdict(self), "reported_by": reported_by})


@dataclass(frozen=True)
class PeerRequest:
    reference: str
    region: str
    stage: str
    sector: str | None
    first_name: str
    email: str | None
    phone: str | None
    locale: str
    requested_at: datetime
    #: The person consented to anonymous statistics (`PeerRequestV1.statistics_consent`).
    statistics_consent: bool = False


class MatchStatus(StrEnum):
    PROPOSED = "proposed"
    DECLINED = "declined"
    #: A side reported a problem (`declined_by` says which).
    REPORTED = "reported"


@dataclass(frozen=True)
class Match:
    id: str
    reference: str
    volunteer_id: str
    status: MatchStatus
    created_at: datetime
    declined_by: str | None = None


@dataclass(frozen=True)
class PeerSession:
    """An upcoming `peer_exchange` conference, as a volunteer's page offers it."""

    id: str
    title: str
    starts_at: datetime
    city: str
    region: str


@dataclass(frozen=True)
class SessionForVolunteer(PeerSession):
    """An upcoming `peer_exchange` conference, and whether the volunteer is listed on it."""

    attending: bool


class PeerAttending(BaseModel):
    """A volunteer as a `peer_exchange` conference's public page lists them: what they gave
    to be seen, never a contact nor an address."""

    pseudonym: str
    region: str
    stage: str


class AttendRequest(LinkRequest):
    """A volunteer says they will attend a conference; `listed` is their consent to appear on
    its public page (by pseudonym, region and stage), required."""

    listed: Consent


class PeerRepository(Protocol):
    def volunteer(self, volunteer_id: str) -> Volunteer | None: ...

    def add_volunteer(self, volunteer: Volunteer) -> None: ...

    def save_volunteer(self, volunteer: Volunteer) -> None: ...

    def delete_volunteer(self, volunteer_id: str) -> None:
        """Delete the volunteer and the e-mails to them not sent yet."""
        ...

    def volunteers(self, status: VolunteerStatus, region: str | None = None) -> list[Volunteer]:
        """Volunteers of `status` (of `region`, if given), oldest first."""
        ...

    def introductions_since(self, volunteer_ids: Sequence[str], since: datetime) -> dict[str, int]:
        """How many matches proposed since `since` (not declined) each volunteer has."""
        ...

    def erased(self, reference: str) -> bool:
        """Whether the person of `reference` asked for erasure (an erasure under way is
        waited for: `ports.Repository.erased`)."""
        ...

    def peer_request(self, reference: str) -> PeerRequest | None: ...

    def add_peer_request(self, request: PeerRequest) -> None: ...

    def match(self, match_id: str) -> Match | None: ...

    def matches_of(self, reference: str) -> list[Match]: ...

    def add_match(self, match: Match) -> None: ...

    def save_match(self, match: Match) -> None: ...

    def reporters(self, volunteer_ids: Sequence[str]) -> dict[str, str]:
        """Who (`person` or `volunteer`) reported the latest reported match of each volunteer
        that has one."""
        ...

    def peer_sessions(self, since: datetime, event_id: str | None = None) -> list[PeerSession]:
        """Scheduled `peer_exchange` conferences starting after `since` (only `event_id`, if
        given), soonest first."""
        ...

    def attending(self, volunteer_id: str) -> set[str]:
        """The conferences the volunteer said they attend."""
        ...

    def attend(self, volunteer_id: str, event_id: str, now: datetime) -> None:
        """Keep that the volunteer attends the conference, listed (again: no change)."""
        ...

    def stop_attending(self, volunteer_id: str, event_id: str | None = None) -> None:
        """The volunteer is no longer listed on the conference (on any, without `event_id`)."""
        ...

    def attendees(self, event_id: str) -> list[Volunteer]:
        """The approved volunteers listed on the conference, in the order they said so."""
        ...


# --- Matching (pure) --------------------------------------------------------------------------

#: Stages close enough for two people to understand each other's road.
_STAGE_GROUPS = (
    {"pre_procedure", "amicable_procedure"},
    {"safeguard", "receivership"},
    {"liquidation_in_progress", "after_liquidation", "professional_recovery"},
)


def stage_closeness(asked: str, lived: str) -> int:
    """2 for the same stage, 1 for a close one (`_STAGE_GROUPS`), 0 otherwise."""
    if asked == lived:
        return 2
    return 1 if any(asked in group and lived in group for group in _STAGE_GROUPS) else 0


def choose_peer(
    request: PeerRequest,
    candidates: Sequence[Volunteer],
    tried: set[str],
    introductions: dict[str, int],
) -> Volunteer | None:
    """The volunteer to propose to `request`: approved, of its region, not `tried`, under their
    monthly limit (`introductions` this month); the closest stage first, then the same sector,
    then the one with fewer introductions this month, then who signed up first."""
    eligible = [
        v for v in candidates
        if v.status == VolunteerStatus.APPROVED and v.region == request.region
        and v.id not in tried and introductions.get(v.id, 0) < v.monthly_limit
    ]  # fmt: skip
    if not eligible:
        return None
    return min(
        eligible,
        key=lambda v: (
            -stage_closeness(request.stage, v.stage),
            -(request.sector is not None and v.sector == request.sector),
            introductions.get(v.id, 0),
            v.created_at,
            v.id,
        ),
    )


# --- Volunteers' use cases --------------------------------------------------------------------

SIGNED_UP = {
    "fr": "Merci de vous proposer ! Nous vous écrivons à l'adresse indiquée : cliquez sur le lien "
    "de l'e-mail pour la confirmer. Une personne de l'équipe validera ensuite votre inscription "
    "avant toute mise en relation.",
    "en": "Thank you for volunteering! We are writing to the address you gave: click the link "
    "in the e-mail to confirm it. Someone from the team will then approve your sign-up before "
    "any introduction.",
}


def sign_up(
    repository: PeerRepository,
    links: CommunityLinks,
    clock: Clock,
    data: VolunteerIn,
    new_id: Callable[[], str] = random_id,
) -> Outcome[str]:
    """Keep a new volunteer, unconfirmed, and e-mail them the link confirming their address."""
    now = clock()
    volunteer = Volunteer(
        id=new_id(), status=VolunteerStatus.UNCONFIRMED, pseudonym=data.pseudonym,
        region=data.region, stage=data.stage.value, sector=data.sector,
        contact_channel=data.contact_channel, contact=data.contact, email=str(data.email),
        availability=data.availability, monthly_limit=data.monthly_limit,
        locale=data.locale.value, created_at=now, updated_at=now,
    )  # fmt: skip
    repository.add_volunteer(volunteer)
    link = links.confirm_volunteer(volunteer.id)
    mail = Mail(
        CommunityMailKind.VOLUNTEER_CONFIRM, volunteer.email,
        "Confirmez votre adresse", "Confirm your address",
        f"Bonjour {volunteer.pseudonym},\n\nMerci de proposer votre expérience. Pour confirmer "
        f"votre adresse, ouvrez ce lien :\n{link}\n\nSi vous n'êtes pas à l'origine de cette "
        "demande, ignorez cet e-mail : rien ne se passera.",
        f"Hello {volunteer.pseudonym},\n\nThank you for offering your experience. To confirm "
        f"your address, open this link:\n{link}\n\nIf you did not ask for this, ignore this "
        "e-mail: nothing will happen.",
        volunteer.locale,
    )  # fmt: skip
    return Outcome(volunteer.id, [mail_message(mail, volunteer.id, now)])


def _by_link(
    links: CommunityLinks, purpose: str, id: str, token: str, find: Callable[[str], T | None]
) -> T:
    """What `id` names (`find`: a volunteer, a match), once `token` is `purpose`'s signature of
    it: `Forbidden` for a bad link, `NotFound` for an id that names nothing (any more)."""
    try:
        links.signed.check(purpose, id, token)
    except InvalidToken as error:
        raise Forbidden("invalid link") from error
    found = find(id)
    if found is None:
        raise NotFound(id)
    return found


def confirm(
    repository: PeerRepository, links: CommunityLinks, clock: Clock, volunteer_id: str, token: str
) -> Outcome[VolunteerStatus]:
    """The volunteer's address is confirmed: they wait for a moderator. Again: no change."""
    volunteer = _by_link(links, "confirm-volunteer", volunteer_id, token, repository.volunteer)
    if volunteer.status == VolunteerStatus.UNCONFIRMED:
        volunteer = replace(volunteer, status=VolunteerStatus.PENDING, updated_at=clock())
        repository.save_volunteer(volunteer)
    return Outcome(volunteer.status)


@dataclass(frozen=True)
class _Moderated:
    """What a moderator's decision tells the volunteer: `{pseudonym}` and, on approval, their
    `{manage}` link in each text."""

    approved: tuple[str, str, str, str]
    declined: tuple[str, str, str, str]

    def mail(self, volunteer: Volunteer, approved: bool, manage_link: str = "") -> Mail:
        subject_fr, subject_en, text_fr, text_en = self.approved if approved else self.declined
        values = {"pseudonym": volunteer.pseudonym, "manage": manage_link}
        return Mail(
            CommunityMailKind.VOLUNTEER_MODERATED, volunteer.email, subject_fr, subject_en,
            text_fr.format(**values), text_en.format(**values), volunteer.locale,
        )  # fmt: skip


#: A new volunteer's sign-up, approved or declined.
_SIGN_UP = _Moderated(
    (
        "Votre inscription de pair est validée", "Your peer sign-up is approved",
        "Bonjour {pseudonym},\n\nVotre inscription est validée : nous vous présenterons, par "
        "e-mail, des personnes de votre région qui traversent ce que vous avez vécu. Pour faire "
        "une pause ou vous retirer :\n{manage}",
        "Hello {pseudonym},\n\nYour sign-up is approved: we will introduce you, by e-mail, to "
        "people of your region going through what you went through. To take a break or "
        "leave:\n{manage}",
    ),
    (
        "Votre inscription de pair", "Your peer sign-up",
        "Bonjour {pseudonym},\n\nMerci de votre proposition. Nous ne pouvons pas la retenir "
        "pour l'instant ; vos informations ont été effacées.",
        "Hello {pseudonym},\n\nThank you for your offer. We cannot take it up for now; your "
        "details were deleted.",
    ),
)  # fmt: skip
#: A reported volunteer, put back in relation or removed.
_AFTER_REPORT = _Moderated(
    (
        "Vous pouvez de nouveau échanger", "You can talk with people again",
        "Bonjour {pseudonym},\n\nL'équipe a examiné le signalement d'une mise en relation : "
        "nous pourrons de nouveau vous présenter des personnes de votre région. Merci de votre "
        "patience. Pour faire une pause ou vous retirer :\n{manage}",
        "Hello {pseudonym},\n\nThe team looked at the report about an introduction: we may "
        "introduce people of your region to you again. Thank you for your patience. To take a "
        "break or leave:\n{manage}",
    ),
    (
        "Votre participation aux échanges entre pairs", "Your part in the peer exchange",
        "Bonjour {pseudonym},\n\nAprès examen du signalement d'une mise en relation, l'équipe "
        "met fin à votre participation aux échanges entre pairs ; vos informations ont été "
        "effacées. Merci pour le temps que vous avez donné.",
        "Hello {pseudonym},\n\nAfter looking at the report about an introduction, the team "
        "ends your part in the peer exchange; your details were deleted. Thank you for the "
        "time you gave.",
    ),
)  # fmt: skip


def moderate(
    repository: PeerRepository,
    links: CommunityLinks,
    clock: Clock,
    volunteer_id: str,
    approved: bool,
) -> Outcome[VolunteerStatus | None]:
    """A moderator approves a confirmed volunteer (they are told, with their link to pause or
    leave), or declines them (told kindly, and deleted). So too for a reported volunteer
    (`report`): put back in relation, or removed."""
    volunteer = repository.volunteer(volunteer_id)
    if volunteer is None:
        raise NotFound(volunteer_id)
    if volunteer.status not in (VolunteerStatus.PENDING, VolunteerStatus.REPORTED):
        raise Conflict("only a confirmed volunteer waiting for moderation can be moderated")
    letters = _AFTER_REPORT if volunteer.status == VolunteerStatus.REPORTED else _SIGN_UP
    now = clock()
    if approved:
        volunteer = replace(volunteer, status=VolunteerStatus.APPROVED, updated_at=now)
        repository.save_volunteer(volunteer)
        mail = letters.mail(volunteer, True, links.manage_volunteer(volunteer.id))
        return Outcome(volunteer.status, [mail_message(mail, volunteer.id, now)])
    repository.delete_volunteer(volunteer.id)
    mail = letters.mail(volunteer, False)
    return Outcome(None, [mail_message(mail, volunteer.id, now)])


def manage(
    repository: PeerRepository,
    links: CommunityLinks,
    clock: Clock,
    volunteer_id: str,
    token: str,
    action: Literal["pause", "resume", "erase"],
) -> Outcome[VolunteerStatus | None]:
    """The volunteer, with their link: pause (no introduction meanwhile), resume, or erase
    (deleted, with the e-mails to them not sent yet; past matches keep no detail of them)."""
    volunteer = _by_link(links, "manage-volunteer", volunteer_id, token, repository.volunteer)
    if action == "erase":
        repository.delete_volunteer(volunteer.id)
        return Outcome(None)
    wanted = {"pause": VolunteerStatus.PAUSED, "resume": VolunteerStatus.APPROVED}[action]
    if volunteer.status not in (VolunteerStatus.APPROVED, VolunteerStatus.PAUSED):
        raise Conflict("only an approved volunteer can pause or resume")
    volunteer = replace(volunteer, status=wanted, updated_at=clock())
    repository.save_volunteer(volunteer)
    if wanted == VolunteerStatus.PAUSED:  # a break is not a promise to come: off every list
        repository.stop_attending(volunteer.id)
    return Outcome(volunteer.status)


# --- Peer exchange sessions (conferences of kind `peer_exchange`) -------------------------------


def sessions(
    repository: PeerRepository, links: CommunityLinks, clock: Clock, volunteer_id: str, token: str
) -> Outcome[tuple[Volunteer, list[SessionForVolunteer]]]:
    """The volunteer (by their link) and the upcoming `peer_exchange` conferences, each saying
    whether they are listed on it."""
    volunteer = _by_link(links, "manage-volunteer", volunteer_id, token, repository.volunteer)
    listed = repository.attending(volunteer.id)
    shown = [
        SessionForVolunteer(**asdict(session), attending=session.id in listed)
        for session in repository.peer_sessions(clock())
    ]
    return Outcome((volunteer, shown))


def attend(
    repository: PeerRepository,
    links: CommunityLinks,
    clock: Clock,
    volunteer_id: str,
    token: str,
    event_id: str,
) -> Outcome[bool]:
    """The volunteer, with their link, will attend an upcoming `peer_exchange` conference and
    is listed on its public page; the routes ask their consent first (`AttendRequest`, the
    page's box). Only an approved volunteer: one who waits for a moderator, is paused or
    reported is listed nowhere."""
    volunteer = _by_link(links, "manage-volunteer", volunteer_id, token, repository.volunteer)
    if volunteer.status != VolunteerStatus.APPROVED:
        raise Conflict("only an approved volunteer can be listed on a conference")
    if not repository.peer_sessions(clock(), event_id):
        raise Conflict("not an upcoming peer exchange session")
    repository.attend(volunteer.id, event_id, clock())
    return Outcome(True)


def leave_session(
    repository: PeerRepository,
    links: CommunityLinks,
    volunteer_id: str,
    token: str,
    event_id: str,
) -> Outcome[bool]:
    """The volunteer, with their link, is no longer listed on the conference (again: no
    change)."""
    volunteer = _by_link(links, "manage-volunteer", volunteer_id, token, repository.volunteer)
    repository.stop_attending(volunteer.id, event_id)
    return Outcome(False)


def attendees(repository: PeerRepository, event_id: str) -> list[PeerAttending]:
    """Who a `peer_exchange` conference's page lists: approved volunteers who said they come."""
    return [
        PeerAttending(pseudonym=v.pseudonym, region=v.region, stage=v.stage)
        for v in repository.attendees(event_id)
    ]


# --- Matching's use cases ---------------------------------------------------------------------


def request_peer(
    repository: PeerRepository,
    links: CommunityLinks,
    clock: Clock,
    data: PeerRequestV1,
    new_id: Callable[[], str] = random_id,
) -> Outcome[str | None]:
    """A person asked for a peer: propose one (the id of the match, None when none is left).
    A request read again (redelivered), or of a person who asked for erasure, proposes
    nothing."""
    if repository.erased(data.reference) or repository.peer_request(data.reference) is not None:
        return Outcome(None)
    request = PeerRequest(
        reference=data.reference, region=data.region, stage=data.stage.value,
        sector=data.sector, first_name=data.contact.first_name, email=data.contact.email,
        phone=data.contact.phone, locale=data.locale, requested_at=clock(),
        statistics_consent=data.statistics_consent,
    )  # fmt: skip
    repository.add_peer_request(request)
    return _propose(repository, links, clock(), request, new_id)


def decline(
    repository: PeerRepository,
    links: CommunityLinks,
    clock: Clock,
    match_id: str,
    side: Side,
    token: str,
    new_id: Callable[[], str] = random_id,
) -> Outcome[str | None]:
    """Either side declines a proposed match with their link: the next volunteer is proposed
    (the id of the new match, None when none is left). Declining again changes nothing."""
    match = _by_link(links, f"decline-{side}", match_id, token, repository.match)
    if match.status != MatchStatus.PROPOSED:
        return Outcome(None)
    return _end(repository, links, clock(), match, MatchStatus.DECLINED, side, new_id)


def report(
    repository: PeerRepository,
    links: CommunityLinks,
    clock: Clock,
    match_id: str,
    side: Side,
    token: str,
    new_id: Callable[[], str] = random_id,
) -> Outcome[str | None]:
    """Either side reports a problem with a match with their link. The match ends (a
    `declined` step on `peers.matches`: the statistics and the timeline need no more) and the
    volunteer is introduced to nobody (`REPORTED`) until a moderator decides (`moderate`).
    The person who reported is proposed the next volunteer (the id of that match): a peer's
    problem is not theirs to bear; a person reported by the volunteer is proposed nobody
    until then. Reporting again changes nothing."""
    match = _by_link(links, f"report-{side}", match_id, token, repository.match)
    if match.status == MatchStatus.REPORTED:
        return Outcome(None)
    now = clock()
    volunteer = repository.volunteer(match.volunteer_id)
    if volunteer is not None and volunteer.status in (
        VolunteerStatus.APPROVED, VolunteerStatus.PAUSED
    ):  # fmt: skip
        repository.save_volunteer(replace(volunteer, status=VolunteerStatus.REPORTED,
                                          updated_at=now))  # fmt: skip
        repository.stop_attending(volunteer.id)  # listed nowhere until a moderator decides
    if match.status != MatchStatus.PROPOSED:  # declined before: the report is all that changes
        repository.save_match(replace(match, status=MatchStatus.REPORTED, declined_by=side))
        return Outcome(None)
    return _end(repository, links, now, match, MatchStatus.REPORTED, side, new_id,
                propose=side == "person")  # fmt: skip


def _end(
    repository: PeerRepository,
    links: CommunityLinks,
    now: datetime,
    match: Match,
    status: MatchStatus,
    side: str,
    new_id: Callable[[], str],
    *,
    propose: bool = True,
) -> Outcome[str | None]:
    """End a proposed match by `side` (`declined` on `peers.matches`), then, if `propose`,
    propose the next volunteer."""
    repository.save_match(replace(match, status=status, declined_by=side))
    request = repository.peer_request(match.reference)
    if request is None:  # the person was erased meanwhile
        return Outcome(None)
    tried = len(repository.matches_of(match.reference))
    declined = _step(request, PeerMatchStatus.DECLINED, tried, now, match.id)
    if not propose:
        return Outcome(None, [declined])
    outcome = _propose(repository, links, now, request, new_id)
    return Outcome(outcome.value, [declined, *outcome.messages])


def _propose(
    repository: PeerRepository,
    links: CommunityLinks,
    now: datetime,
    request: PeerRequest,
    new_id: Callable[[], str],
) -> Outcome[str | None]:
    earlier = repository.matches_of(request.reference)
    candidates = repository.volunteers(VolunteerStatus.APPROVED, request.region)
    introductions = repository.introductions_since([v.id for v in candidates], now - MONTH)
    chosen = choose_peer(request, candidates, {m.volunteer_id for m in earlier}, introductions)
    attempt = len(earlier) + (chosen is not None)
    if chosen is None:
        messages = [_step(request, PeerMatchStatus.UNMATCHED, attempt, now)]
        if request.email:
            messages.append(mail_message(_none_left(request), request.reference, now))
        return Outcome(None, messages)
    match = Match(new_id(), request.reference, chosen.id, MatchStatus.PROPOSED, now)
    repository.add_match(match)
    messages = [
        _step(request, PeerMatchStatus.PROPOSED, attempt, now, match.id),
        mail_message(_to_volunteer(links, chosen, request, match), request.reference, now),
    ]  # fmt: skip
    if request.email:
        messages.append(
            mail_message(_to_person(links, chosen, request, match), request.reference, now)
        )
    return Outcome(match.id, messages)


def _step(
    request: PeerRequest,
    status: PeerMatchStatus,
    attempt: int,
    now: datetime,
    match_id: str | None = None,
) -> Message:
    """A step of `request`'s match on `peers.matches`, with the person's statistics consent."""
    return match_message(
        request.reference, status, request.region, attempt, now, match_id,
        request.statistics_consent,
    )  # fmt: skip


def _to_person(
    links: CommunityLinks, volunteer: Volunteer, request: PeerRequest, match: Match
) -> Mail:
    """The person meets the volunteer: pseudonym, road, availability, and the contact the
    volunteer agreed to share; nothing else."""
    assert request.email is not None
    how = "par e-mail" if volunteer.contact_channel == "email" else "par téléphone"
    how_en = "by e-mail" if volunteer.contact_channel == "email" else "by phone"
    decline_link = links.decline_match(match.id, "person")
    report_link = links.report_match(match.id, "person")
    return Mail(
        CommunityMailKind.PEER_INTRODUCTION, request.email,
        f"Un pair pour échanger : {volunteer.pseudonym}", f"A peer to talk with: {volunteer.pseudonym}",
        f"Bonjour {request.first_name},\n\nVous avez souhaité échanger avec un entrepreneur "
        f"passé par là. {volunteer.pseudonym}, de votre région, a traversé une situation "
        f"proche de la vôtre et accepte d'en parler avec vous.\n\nLe ou la joindre {how} : "
        f"{volunteer.contact}\nDisponibilités : {volunteer.availability}\n\nCela ne vous "
        f"convient pas ? Ce lien propose une autre personne :\n{decline_link}\n\nUn problème "
        f"avec cet échange ? Signalez-le à l'équipe :\n{report_link}",
        f"Hello {request.first_name},\n\nYou asked to talk with an entrepreneur who has been "
        f"through it. {volunteer.pseudonym}, from your region, went through a situation close "
        f"to yours and is happy to talk with you.\n\nReach them {how_en}: {volunteer.contact}\n"
        f"Availability: {volunteer.availability}\n\nNot right for you? This link proposes "
        f"someone else:\n{decline_link}\n\nA problem with this exchange? Report it to the "
        f"team:\n{report_link}",
        request.locale, request.reference,
    )  # fmt: skip


def _to_volunteer(
    links: CommunityLinks, volunteer: Volunteer, request: PeerRequest, match: Match
) -> Mail:
    """The volunteer meets the person: first name and the contact the person agreed to share."""
    contacts = [c for c in (request.email, request.phone) if c]
    decline_link = links.decline_match(match.id, "volunteer")
    report_link = links.report_match(match.id, "volunteer")
    manage = links.manage_volunteer(volunteer.id)
    return Mail(
        CommunityMailKind.PEER_INTRODUCTION, volunteer.email,
        f"Une mise en relation : {request.first_name}", f"An introduction: {request.first_name}",
        f"Bonjour {volunteer.pseudonym},\n\n{request.first_name}, de votre région, traverse "
        "des difficultés proches de celles que vous avez connues et souhaite échanger avec un "
        f"pair. Pour le ou la joindre : {', '.join(contacts)}\n\nVous ne pouvez pas ? Ce lien "
        f"propose une autre personne à {request.first_name} :\n{decline_link}\n\nUn "
        f"problème avec cet échange ? Signalez-le à l'équipe :\n{report_link}\n\nPause ou "
        f"retrait : {manage}",
        f"Hello {volunteer.pseudonym},\n\n{request.first_name}, from your region, is going "
        "through difficulties close to those you knew and would like to talk with a peer. "
        f"To reach them: {', '.join(contacts)}\n\nCannot do it? This link proposes someone "
        f"else to {request.first_name}:\n{decline_link}\n\nA problem with this exchange? "
        f"Report it to the team:\n{report_link}\n\nPause or leave: {manage}",
        volunteer.locale, request.reference,
    )  # fmt: skip


def _none_left(request: PeerRequest) -> Mail:
    assert request.email is not None
    return Mail(
        CommunityMailKind.PEER_NONE, request.email,
        "Pas encore de pair disponible", "No peer available yet",
        f"Bonjour {request.first_name},\n\nNous n'avons pas, pour l'instant, d'entrepreneur "
        "bénévole disponible dans votre région. L'association vers laquelle vous avez été "
        "orienté·e reste à vos côtés ; les Conférences du rebond sont aussi l'occasion de "
        "rencontrer des personnes passées par là.",
        f"Hello {request.first_name},\n\nWe have no volunteer entrepreneur available in your "
        "region for now. The association you were referred to is still there for you; the "
        "Conférences du rebond are also a chance to meet people who have been through it.",
        request.locale, request.reference,
    )  # fmt: skip
