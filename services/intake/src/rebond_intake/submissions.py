"""What a person does with intake, as use cases: send the questionnaire, read their status,
withdraw and have their data erased. The routes (`api.py`, and any page posting a form) only
translate: they parse, call one of these, and turn the outcome, a value, into a reply.

Each use case works through ports: the status store (`store.StatusStore`), the publisher
(`publisher.SubmissionPublisher`), this replica's memory of what it just had acknowledged
(`recent.RecentlyReceived`) and a clock; tests give them fakes.

Why an accepted submission is never lost, nor sent twice:

- **Kafka's acknowledgement is the acceptance.** `Accepted` comes only once the event is
  durably in Kafka (acks=all), within `publish_timeout_s`; otherwise `NotAccepted`, and the
  person is told to send again.
- **Without an Idempotency-Key nothing is written first**: the reference is new and random (80
  bits), its erasure secret derived from it (`rebond_intake.erasure`), and the status store
  learns of it from Kafka (the consumer reads `questionnaires.completed` back).
- **With a key**, one insert first claims the key, so that a retry, or the same key sent twice at
  once, gets the same reference and event id (derived from the key); when Kafka fails the claim
  stays and the retry publishes again. A retry after a success publishes nothing once intake
  has read the event back (or this replica accepted it); before that, on another replica, it
  publishes the same event again (same id, same reference), which every reader takes once.
"""

import asyncio
import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import structlog

from rebond_contracts.envelope import Envelope
from rebond_contracts.payloads import (
    REFERENCE_PATTERN,
    ErasureRequestedV1,
    QuestionnaireCompletedV1,
    new_reference,
)
from rebond_contracts.questionnaire import Distress, QuestionnaireV1
from rebond_contracts.topics import ERASURES, QUESTIONNAIRES, erasure_window_days
from rebond_intake.crisis import mentions_crisis
from rebond_intake.erasure import erasure_secret, matches, matches_stored
from rebond_intake.publisher import BrokerUnavailable, SubmissionPublisher
from rebond_intake.questionnaire_form import SENSITIVE_WHEN
from rebond_intake.recent import RecentlyReceived
from rebond_intake.resources import RESOURCES, Resource
from rebond_intake.store import StatusStore, StoreUnavailable, Submission
from rebond_intake.timeline import Step, build_timeline, current_status, received
from rebond_sql.types import Clock

log = structlog.get_logger(__name__)

#: Event ids of submissions sent with an Idempotency-Key are derived from the key.
IDEMPOTENCY_NAMESPACE = uuid.UUID("9b0f3c55-2b43-4a55-9f0e-3f4f4a2b6c11")
#: Erasure event ids derive from the reference: asking twice publishes the same event.
ERASURE_NAMESPACE = uuid.UUID("5a4f2e0c-7d7b-4c55-9c1e-2b6f0f8f3e71")


@dataclass(frozen=True)
class Accepted:
    """Kafka has the submission (202)."""

    reference: str
    #: With the reference, it lets the person withdraw and see their full status; derived,
    #: never stored: a replay of the same key gets the same one.
    erasure_secret: str
    #: Whom to call, right now, when the person said they are in distress or their free text
    #: speaks of suicide or self-harm; else None.
    resources: list[Resource] | None
    #: The free text speaks of suicide or self-harm (`crisis.mentions_crisis`): the page shows
    #: the 3114 and 15/112 first, whatever the consents.
    crisis_words: bool = False
    #: The same key and answers came before and Kafka already had them: nothing was sent.
    replayed: bool = False


@dataclass(frozen=True)
class KeyReused:
    """The Idempotency-Key came before with other answers: nothing was sent (409)."""


@dataclass(frozen=True)
class NotText:
    """The answers hold text that is not text (a lone surrogate): nothing was sent (422)."""


@dataclass(frozen=True)
class NotAccepted:
    """Kafka or the store failed: nothing is claimed done; the person may try again (503)."""

    reason: str


@dataclass(frozen=True)
class UnknownReference:
    """No submission of intake has this reference, or it is no reference at all (404)."""


@dataclass(frozen=True)
class WrongSecret:
    """A secret came that is not the reference's erasure secret (403)."""


@dataclass(frozen=True)
class Erased:
    """The erasure request is on Kafka and intake's own store kept only the tombstone (202)."""

    reference: str
    #: `erasure_window_days()`: when the copies that travelled through Kafka are gone too.
    kafka_copies_gone_within_days: int


@dataclass(frozen=True)
class Timeline:
    """A person's status: the steps of their timeline in one language (200)."""

    reference: str
    status: str
    steps: list[Step]
    #: Whether the erasure secret came: every association named, every reason given.
    full_view: bool


SubmitOutcome = Accepted | KeyReused | NotText | NotAccepted
EraseOutcome = Erased | UnknownReference | WrongSecret | NotAccepted
StatusOutcome = Timeline | UnknownReference | WrongSecret | NotAccepted


def resources_for(
    questionnaire: QuestionnaireV1, crisis_words: bool = False
) -> list[Resource] | None:
    """The crisis resources a person sees at once with their reference: for `distress: yes`,
    or a free text that speaks of suicide or self-harm."""
    return RESOURCES if questionnaire.distress == Distress.YES or crisis_words else None


def sensitive_consent(questionnaire: QuestionnaireV1) -> bool:
    """Whether the art. 9 consent counts: given, and asked (distress answered "yes"). A box
    ticked with another answer (the page without JavaScript shows it to everyone) is ignored."""
    return questionnaire.consents.sensitive_data and questionnaire.distress.value in SENSITIVE_WHEN


def outbound(
    questionnaire: QuestionnaireV1, crisis_words: bool
) -> tuple[QuestionnaireV1, bool | None]:
    """What leaves intake on `questionnaires.completed`: the answers and `crisis_words`.

    Without the art. 9 consent nothing about distress leaves intake: the distress answer is
    published as `prefer_not_to_say`, the consent as not given, `crisis_words` as None, and a
    free text that speaks of suicide or self-harm (health data itself) stays here too. The
    contract is unchanged: every value is one it already allows."""
    if sensitive_consent(questionnaire):
        return questionnaire, crisis_words
    consents = questionnaire.consents.model_copy(update={"sensitive_data": False})
    withheld = questionnaire.model_copy(
        update={
            "distress": Distress.PREFER_NOT_TO_SAY,
            "consents": consents,
            "message": None if crisis_words else questionnaire.message,
        }
    )
    return withheld, None


class Submissions:
    """The use cases, on their ports (see the module)."""

    def __init__(
        self,
        store: StatusStore,
        publisher: SubmissionPublisher,
        *,
        erasure_key: str,
        publish_timeout_s: float,
        clock: Clock,
        recent: RecentlyReceived | None = None,
        new_reference: Callable[[], str] = new_reference,
        new_event_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._erasure_key = erasure_key
        self._publish_timeout_s = publish_timeout_s
        self._clock = clock
        self._recent = recent or RecentlyReceived()
        self._new_reference = new_reference
        self._new_event_id = new_event_id

    async def submit(
        self, questionnaire: QuestionnaireV1, idempotency_key: str | None = None
    ) -> SubmitOutcome:
        """Send `questionnaire` to Kafka under a new reference (or, with `idempotency_key`, the
        one the key claimed); see the module for why nothing is lost or sent twice."""
        try:
            canonical = questionnaire.model_dump_json().encode("utf-8")
        except (ValueError, UnicodeError):
            return NotText()
        received_at = self._clock()
        reference, event_id = self._new_reference(), self._new_event_id()
        claimed_before = False
        if idempotency_key is not None:
            wanted = Submission(
                reference,
                received_at,
                str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, idempotency_key)),
                idempotency_key,
                hashlib.sha256(canonical).hexdigest(),
            )
            try:
                claimed = await self._store.claim(wanted)
            except StoreUnavailable as error:
                return _not_accepted("submission_not_accepted", f"store: {error}")
            if claimed.body_hash != wanted.body_hash:
                return KeyReused()
            claimed_before = claimed.reference != reference
            reference, event_id = claimed.reference, claimed.event_id
            received_at = claimed.received_at
        crisis_words = bool(questionnaire.message) and mentions_crisis(questionnaire.message or "")
        accepted = Accepted(
            reference,
            erasure_secret(self._erasure_key, reference),
            resources_for(questionnaire, crisis_words),
            crisis_words,
        )
        with structlog.contextvars.bound_contextvars(reference=reference, event_id=event_id):
            try:
                replayed = claimed_before and await self._in_kafka(reference, event_id)
            except StoreUnavailable as error:
                return _not_accepted("submission_not_accepted", f"store: {error}")
            if replayed:
                log.info("submission_replayed")
                return replace(accepted, replayed=True)
            shared, shared_crisis_words = outbound(questionnaire, crisis_words)
            event = QUESTIONNAIRES.envelope(
                QuestionnaireCompletedV1(
                    reference=reference,
                    received_at=received_at,
                    questionnaire=shared,
                    crisis_words=shared_crisis_words,
                ),
                subject=reference,
                correlationid=reference,
                id=event_id,
            ).model_copy(update={"time": received_at})
            try:
                await self._publish(self._publisher.publish, event)
            except BrokerUnavailable as error:
                return _not_accepted("submission_not_accepted", str(error))
            self._recent.note(received(event_id, reference, received_at))
            log.info("submission_accepted")
        return accepted

    async def erase(self, reference: str, secret: str) -> EraseOutcome:
        """With the erasure secret shown at submission: publish the erasure request (every
        service erases or anonymises what it holds about `reference`, and the association
        holding the referral is told), then keep only the tombstone here. Published first: a
        request Kafka refused leaves intake's store as it was, and the person may ask again."""
        if not re.fullmatch(REFERENCE_PATTERN, reference):
            return UnknownReference()
        try:
            allowed = await self._holds_secret(reference, secret)
            if not allowed and not await self._known(reference):
                return UnknownReference()
        except StoreUnavailable as error:
            return NotAccepted(f"store: {error}")
        if not allowed:
            log.warning("erasure_refused", reference=reference, reason="wrong secret")
            return WrongSecret()
        now = self._clock()
        event_id = str(uuid.uuid5(ERASURE_NAMESPACE, reference))
        event = ERASURES.envelope(
            ErasureRequestedV1(reference=reference, requested_at=now),
            subject=reference,
            correlationid=reference,
            id=event_id,
        )
        with structlog.contextvars.bound_contextvars(reference=reference, event_id=event_id):
            try:
                await self._publish(self._publisher.publish_erasure, event)
                just_received = self._recent.get(reference)
                await self._store.erase(reference, now, just_received.at if just_received else None)
            except (BrokerUnavailable, StoreUnavailable) as error:
                return _not_accepted("erasure_not_accepted", str(error))
            log.info("erasure_requested")
        return Erased(reference, erasure_window_days())

    async def status(self, reference: str, locale: str, secret: str | None = None) -> StatusOutcome:
        """Received, oriented to whom and why, accepted / declined / re-oriented, closed; once
        erased, only received and erased.

        The reference alone travels in URLs, e-mail subjects and logs, so it opens only the
        public view: for a person who said they are in distress it names no association and
        gives no reason (`timeline.build_timeline`). The erasure secret opens the full view."""
        if not re.fullmatch(REFERENCE_PATTERN, reference):
            return UnknownReference()
        try:
            full = secret is not None and await self._holds_secret(reference, secret)
            records = await self._store.records(reference)
        except StoreUnavailable as error:
            return NotAccepted(f"store: {error}")
        if secret is not None and not full:
            return WrongSecret()
        if (just_received := self._recent.get(reference)) is not None:
            records.append(just_received)
        if not records:
            return UnknownReference()
        steps = build_timeline(records, locale, private=full)
        return Timeline(reference, current_status(steps), steps, full)

    async def _publish(
        self, send: Callable[[Envelope[Any]], Awaitable[None]], event: Envelope[Any]
    ) -> None:
        """`send(event)`, given `publish_timeout_s` to be acknowledged: a person waits no
        longer for a broker that does not answer (`asyncio.timeout`: no task of its own, as
        `wait_for` makes)."""
        try:
            async with asyncio.timeout(self._publish_timeout_s):
                await send(event)
        except TimeoutError as error:
            raise BrokerUnavailable("TimeoutError") from error

    async def _in_kafka(self, reference: str, event_id: str) -> bool:
        """Whether the submission's event is known to be in Kafka (read back, or sent from
        this replica)."""
        if self._recent.get(reference) is not None:
            return True
        return any(r.event_id == event_id for r in await self._store.records(reference))

    async def _known(self, reference: str) -> bool:
        """Whether intake accepted `reference` (its status store, this replica's memory, or the
        hash of an older submission's random erasure secret)."""
        return (
            self._recent.get(reference) is not None
            or bool(await self._store.records(reference))
            or await self._store.secret_hash(reference) is not None
        )

    async def _holds_secret(self, reference: str, given: str) -> bool:
        """Whether `given` is the erasure secret of `reference`: derived from it under intake's
        key, or, for a submission older than that, the random one whose hash the store kept."""
        if matches(self._erasure_key, reference, given):
            return True
        kept = await self._store.secret_hash(reference)
        return kept is not None and matches_stored(kept, given)


def _not_accepted(event: str, reason: str) -> NotAccepted:
    """Log why nothing was accepted (`event`), and say so."""
    log.warning(event, reason=reason)
    return NotAccepted(reason)
