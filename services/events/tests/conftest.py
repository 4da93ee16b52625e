"""Fixtures of the events service's tests: the app on a real database, a fake Kafka sink."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from fastapi import FastAPI

from rebond_events.app import Events, build
from rebond_events.domain import PARIS
from rebond_events.settings import EventsSettings, hash_api_key
from rebond_sql.outbox import Message
from rebond_sql.testing import Acknowledging

KEYS = {"second-souffle": "key-second-souffle-test", "60000-rebonds": "key-60000-rebonds-test"}
BASE = "http://events.test"


class FakeSink(Acknowledging):
    """Stands in for Kafka (`rebond_sql.outbox.Send`): keeps what was published, acknowledged
    at once; `down` makes it refuse like a dead broker."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def send(self, message: Message) -> "asyncio.Future[None]":
        if self.down:
            raise KafkaConnectionError("broker down (fake)")
        return await super().send(message)

    def payloads(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(m.value) for m in self.sent if m.topic == topic]


class Clock:
    """The time of day the app sees: now, unless a test moves it on."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@dataclass
class Running:
    events: Events
    client: httpx.AsyncClient
    sink: FakeSink
    settings: EventsSettings
    clock: Clock
    headers: dict[str, dict[str, str]] = field(
        default_factory=lambda: {org: {"X-API-Key": key} for org, key in KEYS.items()}
    )

    async def settled(self) -> None:
        """Wait for the publishes a request left to the background (registrations)."""
        await self.events.publisher.settled()

    @property
    def app(self) -> FastAPI:
        return self.events.web


def settings_for(database_url: str, **overrides: Any) -> EventsSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "organiser_keys": {org: hash_api_key(key) for org, key in KEYS.items()},
        "public_base_url": BASE,
        "outbox_interval_s": 3600,
        "rate_limit_per_minute": 0,
    }
    return EventsSettings(**{**values, **overrides})


async def running(settings: EventsSettings) -> AsyncIterator[Running]:
    sink, clock = FakeSink(), Clock()
    events = build(settings, send=sink.send, clock=clock)
    app = events.web
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        yield Running(events, client, sink, settings, clock)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'events.db'}"


@pytest.fixture
async def service(sqlite_url: str) -> AsyncIterator[Running]:
    """The app on a fresh SQLite file, events going to a fake sink."""
    async for value in running(settings_for(sqlite_url)):
        yield value


def in_days(days: int, hour: int = 18, minute: int = 30) -> datetime:
    """A Paris wall-clock time `days` from now (naive, as organisers send it)."""
    day = (datetime.now(PARIS) + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, minute)


@pytest.fixture
def event_body() -> Callable[..., dict[str, Any]]:
    def make(**changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "title": "Rebondir après une liquidation",
            "description": "Trois entrepreneurs racontent comment ils ont rebondi.",
            "kind": "success_stories",
            "starts_at": in_days(30).isoformat(),
            "ends_at": in_days(30, 20, 30).isoformat(),
            "venue_address": "12 place de la Bourse",
            "city": "Bordeaux",
            "region": "75",
            "department": "33",
            "online_url": None,
            "capacity": 2,
        }
        body.update(changes)
        return {k: v for k, v in body.items() if v is not ...}

    return make
