"""The console's events client (`HttpEvents`) against the real events app, over HTTP (in
process, on a real SQLite store): the moderation of stories and peer volunteers (issue 24)."""

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from rebond_contracts.payloads import PeerContactV1, PeerRequestV1
from rebond_contracts.topics import COMMUNITY_MAIL
from rebond_coordination.clients import HttpEvents
from rebond_coordination.ports import EventsNotFound
from rebond_events.app import Events, build
from rebond_events.settings import EventsSettings, hash_api_key
from rebond_sql.testing import Acknowledging
from rebond_testing import until_async

KEY = "key-second-souffle-moderation-test"
BASE = "http://events.test"


class Sent(Acknowledging):
    """Stands in for Kafka: keeps what the events service published, acknowledged at once."""

    def mails(self) -> list[dict[str, Any]]:
        return [json.loads(m.value) for m in self.sent if m.topic == COMMUNITY_MAIL.name]


@pytest.fixture
async def events(
    tmp_path: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, HttpEvents, Sent, Events]]:
    """The events app on a fresh SQLite file, a client of it, the console's `HttpEvents`, and
    the events service itself (its Kafka handlers' use cases)."""
    settings = EventsSettings(
        environment="test", database_url=f"sqlite:///{tmp_path / 'events.db'}",
        organiser_keys={"second-souffle": hash_api_key(KEY)}, public_base_url=BASE,
        outbox_interval_s=3600, rate_limit_per_minute=0,
    )  # fmt: skip
    sent = Sent()
    built = build(settings, send=sent.send)
    app = built.web
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        yield client, HttpEvents(client, {"second-souffle": SecretStr(KEY)}), sent, built
        await built.publisher.settled()


async def _links(sent: Sent, path: str) -> list[tuple[str, str]]:
    """(id, token) of each link to `…/<id><path>` in the mails, once there is one (they are
    published in the background; each is there twice, in French then in English)."""

    async def found() -> list[tuple[str, str]]:
        texts = " ".join(m["text"] for m in sent.mails())
        return re.findall(rf"/([0-9a-f-]+){path}\?token=(\S+)", texts)

    links: list[tuple[str, str]] = await until_async(found, within_s=10)
    return links


async def _confirmed_volunteer(client: httpx.AsyncClient, sent: Sent) -> str:
    """Paul signs up and confirms his address with the e-mailed link: his id."""
    volunteer = {
        "pseudonym": "Paul", "region": "75", "stage": "receivership", "sector": "C",
        "contact_channel": "phone", "contact": "0612345678", "email": "paul@example.org",
        "availability": "le soir", "monthly_limit": 5, "consent": True,
    }  # fmt: skip
    assert (await client.post("/v1/peers/volunteers", json=volunteer)).status_code == 202
    volunteer_id, token = (await _links(sent, "/confirmer"))[0]
    await client.post(f"/v1/peers/volunteers/{volunteer_id}/confirm", json={"token": token})
    return volunteer_id


async def test_the_console_moderates_a_story_and_a_volunteer_through_the_events_api(
    events: tuple[httpx.AsyncClient, HttpEvents, Sent, Events],
) -> None:
    """Pending items come back parsed, without contact; an approval publishes the story, a
    refusal deletes the volunteer; deciding again is `EventsNotFound` (409 or 404), not an
    outage."""
    client, http_events, sent, _ = events
    story = {
        "text": "Après la liquidation de mon atelier, un parrain m'a aidé à retrouver un emploi.",
        "region": "75", "stage": "after_liquidation", "sector": "C", "failure_year": 2018,
        "email": "karim@example.org", "consent_publish": True,
    }  # fmt: skip
    assert (await client.post("/v1/stories", json=story)).status_code == 202
    [pending] = await http_events.stories_to_moderate("second-souffle")
    await http_events.moderate_story("second-souffle", pending.id, approve=True)
    assert [s["id"] for s in (await client.get("/v1/stories")).json()] == [pending.id]
    with pytest.raises(EventsNotFound):
        await http_events.moderate_story("second-souffle", pending.id, approve=True)

    volunteer_id = await _confirmed_volunteer(client, sent)
    [waiting] = await http_events.volunteers_to_moderate("second-souffle")
    assert waiting.pseudonym == "Paul" and "0612345678" not in waiting.model_dump_json()
    await http_events.moderate_volunteer("second-souffle", volunteer_id, approve=False)
    assert await http_events.volunteers_to_moderate("second-souffle") == []
    with pytest.raises(EventsNotFound):
        await http_events.moderate_volunteer("second-souffle", volunteer_id, approve=True)


async def test_a_reported_volunteer_comes_to_the_console_and_goes_back_to_matching(
    events: tuple[httpx.AsyncClient, HttpEvents, Sent, Events],
) -> None:
    """A person reports their peer with the introduction's link: the console lists the
    volunteer as reported by the person (no contact); approving them makes them matchable
    again."""
    client, http_events, sent, built = events
    volunteer_id = await _confirmed_volunteer(client, sent)
    await http_events.moderate_volunteer("second-souffle", volunteer_id, approve=True)

    def request(reference: str) -> PeerRequestV1:
        return PeerRequestV1(
            reference=reference, region="75", stage="receivership",
            contact=PeerContactV1(first_name="Claire", email="claire@example.org"),
            requested_at=datetime.now(UTC),
        )  # fmt: skip

    match_id = await built.community.request_peer(request("RB-7K3M-Q9XA-2DFE-W8NB"))
    assert match_id is not None
    reported_match, report_token = (await _links(sent, "/person/signaler"))[0]
    assert reported_match == match_id
    reported = await client.post(
        f"/v1/peers/matches/{match_id}/report", json={"token": report_token, "side": "person"}
    )
    assert reported.json() == {"status": "reported", "next_match_id": None}

    [held] = await http_events.volunteers_to_moderate("second-souffle")
    assert (held.id, held.status, held.reported_by) == (volunteer_id, "reported", "person")
    assert "0612345678" not in held.model_dump_json()
    assert await built.community.request_peer(request("RB-7K3M-Q9XA-2DFE-W8NC")) is None
    await http_events.moderate_volunteer("second-souffle", volunteer_id, approve=True)
    assert await http_events.volunteers_to_moderate("second-souffle") == []
    assert await built.community.request_peer(request("RB-7K3M-Q9XA-2DFE-W8ND")) is not None
