"""A repeat registration e-mails the cancellation link again, and only to the address first
registered: the events service's outbox read by the notifier's own planning and delivery log
(a real SQLite store), as its `conferences.registrations` consumer does."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from rebond_contracts.topics import REGISTRATIONS
from rebond_events.app import build
from rebond_events.settings import EventsSettings, hash_api_key
from rebond_notifier import planning
from rebond_notifier.store import DeliveryStore, migrate
from rebond_sql.testing import Acknowledging

KEY = "an-organiser-key-for-this-test"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_a_repeat_registration_becomes_a_second_email_to_the_first_address(
    tmp_path: Path,
) -> None:
    """Twice the same person (the second time as `+x`, under another name, eleven minutes
    later): the notifier records two e-mails, both to the first address, each with a link."""
    settings = EventsSettings(
        environment="test", database_url=f"sqlite:///{tmp_path / 'events.db'}",
        organiser_keys={"second-souffle": hash_api_key(KEY)}, outbox_interval_s=3600,
        public_base_url="https://conferences.example",
    )  # fmt: skip
    sink, clock = Acknowledging(), Clock()
    events = build(settings, send=sink.send, clock=clock)
    app = events.web
    day = (clock.now + timedelta(days=20)).date().isoformat()
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://e") as client,
    ):
        event = await client.post(
            "/v1/events",
            headers={"X-API-Key": KEY},
            json={
                "title": "Rebondir", "kind": "conference", "starts_at": f"{day}T18:30:00",
                "ends_at": f"{day}T20:30:00", "venue_address": "1 rue Nationale", "city": "Lille",
                "region": "32", "department": "59", "capacity": 10,
            },
        )  # fmt: skip
        url = f"/v1/events/{event.json()['id']}/registrations"
        await client.post(
            url, json={"name": "Claire", "email": "claire@example.org", "consent": True}
        )
        clock.now += timedelta(minutes=11)
        await client.post(
            url, json={"name": "Mallory", "email": "claire+x@example.org", "consent": True}
        )
        await events.publisher.settled()

    records = [e for e in sink.sent if e.topic == REGISTRATIONS.name]
    deliveries = [
        delivery
        for record in records
        for delivery in planning.for_registration(
            REGISTRATIONS.read(record.value, [(k, v.encode()) for k, v in record.headers.items()])
        )
    ]
    url = f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}"
    await asyncio.to_thread(migrate, url)
    store = DeliveryStore.from_url(url)
    try:
        assert await store.enqueue(deliveries) == 2
        assert await store.enqueue(deliveries) == 0  # a redelivered record sends nothing more
    finally:
        await store.close()
    mails = [d.payload for d in deliveries]
    assert [m["to"] for m in mails] == ["claire@example.org", "claire@example.org"]
    assert all("Bonjour Claire," in m["text"] and "Mallory" not in m["text"] for m in mails)
    assert all("https://conferences.example/inscriptions/" in m["text"] for m in mails)
