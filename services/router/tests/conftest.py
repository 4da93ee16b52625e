"""Router test helpers: questionnaires, a controllable clock, a fake Kafka for the outbox."""

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import Envelope
from rebond_contracts.payloads import (
    Answer,
    DeclineReason,
    QuestionnaireCompletedV1,
    ReferralResponseV1,
)
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE
from rebond_contracts.topics import QUESTIONNAIRES, find, responses
from rebond_router.directory import Directory, load_directory
from rebond_router.lifecycle import Router
from rebond_router.store import Store, migrate
from rebond_sql.outbox import Message

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)  # a Thursday
REFERENCE = "RB-7K3M-Q9XA-2DFE-W8NB"
#: The associations the tests name most.
SIXTY = AssociationId.SOIXANTE_MILLE_REBONDS
SOUFFLE = AssociationId.SECOND_SOUFFLE
APESA = AssociationId.APESA


def answers(**changes: Any) -> dict[str, Any]:
    """The questionnaire.md example with `section__field=value` changes (None removes)."""
    data = copy.deepcopy(EXAMPLE_QUESTIONNAIRE)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node: Any = data
        for part in parents:
            node = node[part]
        node[leaf] = value
    return data


def submitted(reference: str = REFERENCE, **changes: Any) -> QuestionnaireCompletedV1:
    return QuestionnaireCompletedV1.model_validate(
        {"reference": reference, "received_at": NOW, "questionnaire": answers(**changes)}
    )


def questionnaire(event_id: str = "event-1", **changes: Any) -> Envelope[QuestionnaireCompletedV1]:
    """The example questionnaire's event (reference `REFERENCE`), with `changes`."""
    return QUESTIONNAIRES.envelope(
        submitted(**changes), subject=REFERENCE, correlationid=REFERENCE, id=event_id
    )


def answer(
    association: AssociationId,
    referral_id: str | UUID,
    event_id: str,
    decline: DeclineReason | None = None,
) -> Envelope[ReferralResponseV1]:
    """`association`'s answer about `referral_id` of `REFERENCE`: a decline with a reason, else
    an acceptance."""
    payload = ReferralResponseV1(
        referral_id=UUID(str(referral_id)),
        reference=REFERENCE,
        answer=Answer.DECLINE if decline else Answer.ACCEPT,
        reason=decline,
        answered_at=NOW,
    )
    return responses(association).envelope(
        payload, subject=REFERENCE, correlationid=REFERENCE, id=event_id
    )


def anonymous(**changes: Any) -> dict[str, Any]:
    """Changes for a person who does not consent to be contacted."""
    return {"contact": None, "consents__share_with_association": False, **changes}


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Sent:
    topic: str
    key: str
    headers: dict[str, str]
    data: dict[str, Any]


@dataclass
class FakeOutputs:
    """Records what would go to Kafka, parsed through the registry (so contracts are checked)."""

    sent: list[Sent] = field(default_factory=list)
    fail_next: int = 0

    async def send(self, message: Message) -> "asyncio.Future[None]":
        """Acknowledged at once, or (with `fail_next`) refused: the acknowledgement raises."""
        acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail_next:
            self.fail_next -= 1
            acknowledged.set_exception(OSError("broker unreachable"))
            return acknowledged
        headers = dict(message.headers)
        find(message.topic).read(message.value, [(k, v.encode()) for k, v in headers.items()])
        self.sent.append(Sent(message.topic, message.key, headers, json.loads(message.value)))
        acknowledged.set_result(None)
        return acknowledged

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [s.data for s in self.sent if s.topic == topic]

    def statuses(self) -> list[tuple[str, str | None]]:
        return [(d["status"], d["association_id"]) for d in self.on("referrals.status")]


def router_on(
    store: Store,
    directory: Directory,
    outputs: FakeOutputs,
    clock: Callable[[], datetime],
    **options: Any,
) -> Router:
    """The real `Router` on `store`, publishing its outbox to `outputs`."""
    return Router(store, store.relay(outputs.send, clock), directory, clock, **options)


@pytest.fixture(scope="session")
def directory() -> Directory:
    return load_directory()


async def open_store(url: str) -> Store:
    """A store at `url`, migrated and open."""
    migrate(url)
    store = Store.from_url(url)
    await store.start()
    return store


@pytest.fixture
async def store(sql_url: str) -> AsyncIterator[Store]:
    store = await open_store(sql_url)
    yield store
    await store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outputs() -> FakeOutputs:
    return FakeOutputs()


@pytest.fixture
def router(store: Store, directory: Directory, outputs: FakeOutputs, clock: Clock) -> Router:
    return router_on(store, directory, outputs, clock)


def current_referral(outputs: FakeOutputs) -> str:
    return str(outputs.on("routing.decisions")[-1]["referral"]["referral_id"])
