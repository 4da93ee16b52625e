"""Capacity holds under concurrency, on the real databases (PostgreSQL and SQLite)."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from rebond_contracts.topics import REGISTRATIONS

from .conftest import Running, in_days, running, settings_for


@pytest.fixture(params=["postgresql", "sqlite"])
async def on_database(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[Running]:
    """The app on a fresh PostgreSQL database (row locks) or SQLite file (BEGIN IMMEDIATE)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else sqlite_url
    async for value in running(settings_for(url)):
        yield value


async def test_fifty_simultaneous_registrations_for_ten_seats(on_database: Running) -> None:
    """50 people registering at once for 10 seats: exactly 10 confirmed and 40 waitlisted."""
    service = on_database
    created = await service.client.post(
        "/v1/events",
        json={
            "title": "Échanges entre pairs",
            "kind": "peer_exchange",
            "starts_at": in_days(20).isoformat(),
            "ends_at": in_days(20, 21).isoformat(),
            "venue_address": "3 rue Nationale",
            "city": "Lille",
            "region": "32",
            "department": "59",
            "capacity": 10,
        },
        headers=service.headers["second-souffle"],
    )
    event_id = created.json()["id"]
    answers = await asyncio.gather(
        *(
            service.client.post(
                f"/v1/events/{event_id}/registrations",
                json={"name": "Personne", "email": f"p{n}@example.org", "consent": True},
            )
            for n in range(50)
        )
    )
    assert {a.status_code for a in answers} == {202}
    await service.settled()
    mails = service.sink.payloads(REGISTRATIONS.name)
    positions = sorted(p["waitlist_position"] for p in mails if p["waitlist_position"])
    assert positions == list(range(1, 41))
    detail = (await service.client.get(f"/v1/events/{event_id}")).json()
    assert (detail["confirmed"], detail["waitlisted"], detail["seats_left"]) == (10, 40, 0)
    changes = [p["change"] for p in service.sink.payloads(REGISTRATIONS.name)]
    assert changes.count("confirmed") == 10 and changes.count("waitlisted") == 40
