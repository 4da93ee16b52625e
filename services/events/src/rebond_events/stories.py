"""Success stories: people who bounced back tell how (issue 24).

A story is public only once a moderator approved it; its author's e-mail is kept only until the
moderation outcome is written to them, and no contact detail is ever shown: the texts that are
published refuse anything that looks like an address, a phone number or a link
(`contact_problem`), and the e-mail is never part of what a page or the API shows. The author
withdraws it with the signed link of their e-mails: the story is deleted, with the e-mails about
it not sent yet, so it is gone from every page and from the outbox.

Use cases are plain functions of a `StoryRepository` (one transaction) and a clock, returning
what they did and the messages announcing it (`ports.Outcome`).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints
from pydantic_core import PydanticCustomError

from rebond_contracts.payloads import CommunityMailKind
from rebond_contracts.questionnaire import Locale, Region, Sector, Stage
from rebond_events.errors import Conflict, Forbidden, NotFound
from rebond_events.letters import CommunityLinks, InvalidToken, Mail, mail_message
from rebond_events.models import PersonName, Received
from rebond_events.ports import Outcome, random_id
from rebond_sql.types import Clock

# --- What may be published ------------------------------------------------------------------

_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
#: Eight digits or more, with the spaces, dots and dashes people write phone numbers with.
_PHONE = re.compile(r"(?:\+|\b)\d(?:[\s.\-]?\d){7,}")
_LINK = re.compile(r"(?i)\b(?:https?://|www\.)|\b[a-z0-9-]+\.(?:fr|com|net|org|eu|io)\b")


def contact_problem(text: str) -> str | None:
    """Why `text` may not be published: it holds what looks like an e-mail address, a phone
    number or a link (a story is public: nobody's contact goes on a page). None when it may."""
    if _EMAIL.search(text):
        return "contains_email"
    if _PHONE.search(text):
        return "contains_phone"
    if _LINK.search(text):
        return "contains_link"
    return None


_CONTACT_MESSAGES = {
    "contains_email": "No e-mail address in a story: it is published",
    "contains_phone": "No phone number in a story: it is published",
    "contains_link": "No link or web address in a story: it is published",
}


def _publishable(value: str) -> str:
    if (problem := contact_problem(value)) is not None:
        raise PydanticCustomError(problem, _CONTACT_MESSAGES[problem])
    return value


#: Years 1950 up to this one: a failure to come is no story yet.
def _past_year(value: int) -> int:
    if value > datetime.now().year:
        raise PydanticCustomError("year_in_future", "The year of the failure is in the past")
    return value


StoryText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=40, max_length=4000),
    AfterValidator(_publishable),
]  # fmt: skip
Helped = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=1000), AfterValidator(_publishable)
]
FirstName = Annotated[PersonName, AfterValidator(_publishable)]


def _consented(value: bool) -> bool:
    if not value:
        raise PydanticCustomError("consent_required", "This consent is required")
    return value


#: A box the person must tick (explicit consent, unticked by default on the forms).
Consent = Annotated[bool, AfterValidator(_consented)]


class StoryIn(BaseModel):
    """What an author sends. Consent to publish is required; the e-mail is for the withdrawal
    link and the moderation outcome only."""

    model_config = ConfigDict(extra="forbid")

    text: StoryText
    first_name: FirstName | None = None
    region: Region
    stage: Stage
    sector: Sector
    failure_year: Annotated[int, Field(ge=1950), AfterValidator(_past_year)]
    helped: Helped | None = None
    email: EmailStr
    consent_publish: Consent
    locale: Locale = Locale.FR


class StoryEdit(BaseModel):
    """A moderator's edit: only with the author's agreement, said in `note`."""

    model_config = ConfigDict(extra="forbid")

    text: StoryText | None = None
    first_name: FirstName | None = None
    helped: Helped | None = None
    author_agreed: Literal[True]
    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]


class StoryStatus(StrEnum):
    PENDING = "pending"
    PUBLISHED = "published"


class StoryPublic(BaseModel):
    """A story as pages and the API show it: never its author's e-mail."""

    id: str
    text: str
    first_name: str | None
    region: str
    stage: str
    sector: str
    failure_year: int
    helped: str | None


class StoryForModerator(StoryPublic):
    status: StoryStatus
    submitted_at: datetime
    moderation_note: str | None


#: The answer to a submitted story (its own name in the API's document).
class StorySubmitted(Received):
    pass


@dataclass(frozen=True)
class Story:
    id: str
    status: StoryStatus
    text: str
    first_name: str | None
    region: str
    stage: str
    sector: str
    failure_year: int
    helped: str | None
    locale: str
    email: str | None
    submitted_at: datetime
    moderation_note: str | None = None
    moderated_by: str | None = None
    moderated_at: datetime | None = None

    def public(self) -> StoryPublic:
        """The fields `StoryPublic` names (never the e-mail)."""
        return StoryPublic.model_validate(self, from_attributes=True)

    def for_moderator(self) -> StoryForModerator:
        return StoryForModerator.model_validate(self, from_attributes=True)


class StoryRepository(Protocol):
    def story(self, story_id: str) -> Story | None: ...

    def add_story(self, story: Story) -> None: ...

    def save_story(self, story: Story) -> None: ...

    def delete_story(self, story_id: str) -> None:
        """Delete the story and the e-mails about it not sent yet."""
        ...

    def stories(
        self, status: StoryStatus, region: str | None = None, stage: str | None = None
    ) -> list[Story]:
        """Stories of `status` (of `region` and `stage` if given), newest first."""
        ...


# --- Use cases --------------------------------------------------------------------------------

RECEIVED = {
    "fr": "Merci pour votre témoignage ! Nous l'avons bien reçu : une personne de l'équipe le "
    "relit avant toute publication. Nous vous écrivons à l'adresse indiquée, avec un lien pour "
    "le retirer à tout moment.",
    "en": "Thank you for your story! We received it: someone from the team reads it before "
    "anything is published. We are writing to the address you gave, with a link to withdraw "
    "it at any time.",
}


def submit(
    repository: StoryRepository,
    links: CommunityLinks,
    clock: Clock,
    data: StoryIn,
    new_id: Callable[[], str] = random_id,
) -> Outcome[str]:
    """Keep a story for moderation, and e-mail its author the withdrawal link."""
    now = clock()
    story = Story(
        id=new_id(), status=StoryStatus.PENDING, text=data.text, first_name=data.first_name,
        region=data.region, stage=data.stage.value, sector=data.sector,
        failure_year=data.failure_year, helped=data.helped or None, locale=data.locale.value,
        email=str(data.email), submitted_at=now,
    )  # fmt: skip
    repository.add_story(story)
    withdraw = links.withdraw_story(story.id)
    mail = Mail(
        CommunityMailKind.STORY_RECEIVED, str(data.email),
        "Votre témoignage est bien reçu", "Your story was received",
        "Bonjour,\n\nMerci d'avoir pris le temps de raconter votre rebond. Une personne de "
        "l'équipe va le relire ; nous vous écrirons quand il sera publié.\n\nVous pouvez le "
        f"retirer à tout moment avec ce lien :\n{withdraw}",
        "Hello,\n\nThank you for taking the time to tell how you bounced back. Someone from "
        "the team will read it; we will write to you once it is published.\n\nYou can "
        f"withdraw it at any time with this link:\n{withdraw}",
        data.locale.value,
    )  # fmt: skip
    return Outcome(story.id, [mail_message(mail, story.id, now)])


def _pending(repository: StoryRepository, story_id: str) -> Story:
    story = repository.story(story_id)
    if story is None:
        raise NotFound(story_id)
    return story


def approve(
    repository: StoryRepository, links: CommunityLinks, clock: Clock, moderator: str, story_id: str
) -> Outcome[StoryForModerator]:
    """Publish a pending story; its author is told, and their address is then forgotten."""
    story = _pending(repository, story_id)
    if story.status != StoryStatus.PENDING:
        raise Conflict("the story is already published")
    now = clock()
    published = replace(
        story, status=StoryStatus.PUBLISHED, email=None, moderated_by=moderator, moderated_at=now
    )
    repository.save_story(published)
    messages = []
    if story.email:
        withdraw = links.withdraw_story(story.id)
        mail = Mail(
            CommunityMailKind.STORY_MODERATED, story.email,
            "Votre témoignage est publié", "Your story is published",
            "Bonjour,\n\nVotre témoignage est en ligne : d'autres entrepreneurs pourront y "
            f"trouver du courage. Merci.\n{links.stories()}\n\nPour le retirer à tout "
            f"moment :\n{withdraw}",
            "Hello,\n\nYour story is online: other entrepreneurs may find courage in it. Thank "
            f"you.\n{links.stories()}\n\nTo withdraw it at any time:\n{withdraw}",
            story.locale,
        )  # fmt: skip
        messages.append(mail_message(mail, story.id, now))
    return Outcome(published.for_moderator(), messages)


def reject(
    repository: StoryRepository, clock: Clock, moderator: str, story_id: str
) -> Outcome[None]:
    """Decline a pending story: its author is told kindly, and the story is deleted (nothing
    is kept of what will not be published)."""
    story = _pending(repository, story_id)
    if story.status != StoryStatus.PENDING:
        raise Conflict("a published story is withdrawn by its author, not rejected")
    repository.delete_story(story.id)
    messages = []
    if story.email:
        mail = Mail(
            CommunityMailKind.STORY_MODERATED, story.email,
            "Votre témoignage", "Your story",
            "Bonjour,\n\nMerci pour votre témoignage. Nous ne pouvons pas le publier tel "
            "quel (par exemple parce qu'il permettrait de reconnaître une personne ou une "
            "entreprise). Il a été effacé ; vous pouvez en proposer une nouvelle version quand "
            "vous le souhaitez.",
            "Hello,\n\nThank you for your story. We cannot publish it as it is (for instance "
            "because it would let someone recognise a person or a company). It was deleted; "
            "you are welcome to send a new version whenever you wish.",
            story.locale,
        )  # fmt: skip
        messages.append(mail_message(mail, story.id, clock()))
    return Outcome(None, messages)


def edit(
    repository: StoryRepository, clock: Clock, moderator: str, story_id: str, data: StoryEdit
) -> Outcome[StoryForModerator]:
    """Change a story's words with its author's agreement (`data.note` says so)."""
    story = _pending(repository, story_id)
    changes = data.model_dump(exclude_unset=True, exclude={"author_agreed", "note"})
    edited = replace(
        story, **changes, moderation_note=data.note, moderated_by=moderator,
        moderated_at=clock(),
    )  # fmt: skip
    repository.save_story(edited)
    return Outcome(edited.for_moderator())


def withdraw(
    repository: StoryRepository, links: CommunityLinks, story_id: str, token: str
) -> Outcome[None]:
    """The author withdraws their story with the signed link: it is deleted everywhere.
    Withdrawing again changes nothing."""
    try:
        links.signed.check("withdraw-story", story_id, token)
    except InvalidToken as error:
        raise Forbidden("invalid withdrawal link") from error
    if repository.story(story_id) is not None:
        repository.delete_story(story_id)
    return Outcome(None)
