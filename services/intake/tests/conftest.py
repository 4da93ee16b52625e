"""Fakes of intake's own ports (publisher, store) and a client built with them."""

import asyncio
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from rebond_contracts.envelope import Envelope
from rebond_contracts.payloads import ErasureRequestedV1, QuestionnaireCompletedV1
from rebond_intake.app import build
from rebond_intake.publisher import BrokerUnavailable
from rebond_intake.settings import IntakeSettings
from rebond_intake.store import StoreUnavailable, Submission
from rebond_intake.timeline import Record, received


class FakePublisher:
    """Keeps what it was given; can be switched to behave like an unreachable broker, or like
    one that never answers (`silent`)."""

    def __init__(self, *, down: bool = False, silent: bool = False) -> None:
        self.events: list[Envelope[QuestionnaireCompletedV1]] = []
        self.erasures: list[Envelope[ErasureRequestedV1]] = []
        self.down = down
        self.silent = silent

    async def _acknowledge(self) -> None:
        if self.down:
            raise BrokerUnavailable("KafkaConnectionError")
        if self.silent:
            await asyncio.Event().wait()

    async def publish(self, event: Envelope[QuestionnaireCompletedV1]) -> None:
        await self._acknowledge()
        self.events.append(event)

    async def publish_erasure(self, event: Envelope[ErasureRequestedV1]) -> None:
        await self._acknowledge()
        self.erasures.append(event)

    def ready(self) -> bool:
        return not self.down


class FakeStore:
    """An in-memory status store with the same behaviour as the SQL one; `down` makes the
    requests' operations fail as an unreachable database does."""

    def __init__(self) -> None:
        self.down = False
        self.submissions: dict[str, Submission] = {}
        self.kept: dict[str, Record] = {}
        #: Hashes of random erasure secrets, as an older intake kept them.
        self.secrets: dict[str, str] = {}
        #: Erased references: (received at, erased at).
        self.erased: dict[str, tuple[datetime | None, datetime]] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _reachable(self) -> None:
        if self.down:
            raise StoreUnavailable("OperationalError")

    async def claim(self, submission: Submission) -> Submission:
        self._reachable()
        for existing in self.submissions.values():
            if existing.idempotency_key == submission.idempotency_key:
                return existing
        self.submissions[submission.reference] = submission
        return submission

    async def add(self, record: Record) -> bool:
        if record.reference in self.erased:
            if record.kind == "received":
                first, erased_at = self.erased[record.reference]
                self.erased[record.reference] = (first or record.at, erased_at)
            return False
        if record.event_id in self.kept:
            return False
        self.kept[record.event_id] = record
        return True

    async def add_many(self, records: list[Record]) -> set[str]:
        return {record.event_id for record in records if await self.add(record)}

    async def erase(
        self, reference: str, at: datetime, received_at: datetime | None = None
    ) -> None:
        self._reachable()
        mine = [r for r in self.kept.values() if r.reference == reference]
        times = [r.at for r in mine if r.kind == "received"] + [received_at] * bool(received_at)
        if reference in self.submissions:
            times.append(self.submissions.pop(reference).received_at)
        earlier, erased_at = self.erased.get(reference, (None, at))
        self.erased[reference] = (earlier or min(times, default=None), erased_at)
        for record in mine:
            del self.kept[record.event_id]

    async def records(self, reference: str) -> list[Record]:
        self._reachable()
        if reference in self.erased:
            first, erased_at = self.erased[reference]
            kept = [Record("erasure", reference, "erasure", erased_at)]
            return ([received("received", reference, first)] if first else []) + kept
        return [r for r in self.kept.values() if r.reference == reference]

    async def secret_hash(self, reference: str) -> str | None:
        self._reachable()
        return self.secrets.get(reference)

    async def expire(self, before: object) -> int:
        return 0


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def make_client(publisher: FakePublisher, store: FakeStore) -> Iterator[Callable[..., TestClient]]:
    """`make_client(**settings)`: a TestClient of intake with the fakes above."""
    opened: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        settings = IntakeSettings(**{"retry_after_s": 7, "rate_limit_per_minute": 0, **overrides})
        client = TestClient(build(settings, publisher=publisher, store=store).web)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def fake_publisher_class() -> type[FakePublisher]:
    return FakePublisher


@pytest.fixture(scope="session")
def fake_store_class() -> type[FakeStore]:
    return FakeStore
