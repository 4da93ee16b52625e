"""Peer matching on a real Kafka broker: a request on `peers.requests` becomes a match, both
introductions arrive on `community.mail` with only what each side shared, and a decline
proposes the next volunteer; `peers.matches` carries each step without any contact."""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from rebond_contracts.payloads import PeerContactV1, PeerMatchV1, PeerRequestV1
from rebond_contracts.topics import COMMUNITY_MAIL, PEER_MATCHES, PEER_REQUESTS
from rebond_testing import TopicProbe, new_reference

from .conftest import KEYS
from .test_kafka import live, publish  # noqa: F401 (the fixture)
from .test_peers import link, sign_up_body

pytestmark = pytest.mark.kafka


def mails_to(probe: TopicProbe, address: str) -> list[dict[str, Any]]:
    found = [
        COMMUNITY_MAIL.read(r.value, r.headers).data for r in probe.records
        if r.topic == COMMUNITY_MAIL.name
    ]  # fmt: skip
    return [m.model_dump(mode="json") for m in found if m.to == address]


async def test_a_request_is_matched_introduced_and_a_decline_proposes_the_next_peer(
    live: Any,  # noqa: F811
    kafka_bootstrap: str,
) -> None:
    """Volunteers signed up, confirmed and approved; a published request → both introductions
    and a `proposed` step; the person declines → the next volunteer is introduced."""
    tag = uuid.uuid4().hex[:8]
    async with TopicProbe(kafka_bootstrap, [COMMUNITY_MAIL.name, PEER_MATCHES.name]) as probe:
        for name, stage in (("Paul", "after_liquidation"), ("Lina", "receivership")):
            email = f"{name.lower()}-{tag}@example.org"
            body = {**sign_up_body(name, stage=stage), "email": email}
            assert (await live.post("/v1/peers/volunteers", json=body)).status_code == 202
            [confirm] = await probe.until(lambda _, e=email: mails_to(probe, e), within_s=30)
            path, token = link(confirm["text"], "/confirmer")
            volunteer_id = path.split("/")[2]
            confirmed = await live.post(
                f"/v1/peers/volunteers/{volunteer_id}/confirm", json={"token": token}
            )
            assert confirmed.json() == {"status": "pending"}
            approved = await live.post(
                f"/v1/peers/volunteers/{volunteer_id}/approve",
                headers={"X-API-Key": KEYS["second-souffle"]},
            )
            assert approved.json() == {"status": "approved"}

        reference = new_reference()
        person = f"claire-{tag}@example.org"
        request = PeerRequestV1(
            reference=reference, region="75", stage="after_liquidation", sector="I",  # type: ignore[arg-type]
            contact=PeerContactV1(first_name="Claire", email=person),
            requested_at=datetime.now(UTC),
        )  # fmt: skip
        event = PEER_REQUESTS.envelope(request, subject=reference, correlationid=reference)
        await publish(
            kafka_bootstrap,
            [(reference.encode(), event.kafka_value(), event.kafka_headers())],
            topic=PEER_REQUESTS.name,
        )

        [to_person] = await probe.until(lambda _: mails_to(probe, person), within_s=60)
        [to_paul] = await probe.until(
            lambda _: [m for m in mails_to(probe, f"paul-{tag}@example.org")
                       if m["kind"] == "peer_introduction"],
            within_s=30,
        )  # fmt: skip
        assert "Paul" in to_person["text"] and "06 12 34 56 78" in to_person["text"]
        assert f"paul-{tag}@example.org" not in to_person["text"]
        assert person in to_paul["text"]

        path, token = link(to_person["text"], "/person")
        match_id = path.split("/")[3]
        declined = await live.post(
            f"/v1/peers/matches/{match_id}/decline", json={"token": token, "side": "person"}
        )
        assert declined.status_code == 200 and declined.json()["next_match_id"]
        second = await probe.until(
            lambda _: len(mails_to(probe, person)) >= 2 and mails_to(probe, person), within_s=30
        )
        assert "Lina" in second[-1]["text"]

        def steps(_: object) -> list[PeerMatchV1]:
            return [
                PEER_MATCHES.read(r.value, r.headers).data
                for r in probe.about(reference, lambda r: r.topic == PEER_MATCHES.name)
            ]

        matches = await probe.until(lambda _: len(steps(_)) >= 3 and steps(_), within_s=30)
        assert [(m.status.value, m.attempt) for m in matches] == [
            ("proposed", 1), ("declined", 1), ("proposed", 2),
        ]  # fmt: skip
        assert all("claire" not in json.dumps(m.model_dump(mode="json")) for m in matches)
