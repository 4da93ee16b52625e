"""The committed AsyncAPI document, the development mail sink, and the outcome outbox."""

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiosmtplib
import yaml

from rebond_contracts.payloads import DeliveryV1
from rebond_notifier.asyncapi import COMMITTED, document
from rebond_notifier.channels import Retry
from rebond_notifier.config import load_associations
from rebond_notifier.dispatcher import Dispatcher, RetryPolicy
from rebond_notifier.mailsink import serve
from rebond_notifier.store import DeliveryStore, NewDelivery
from rebond_notifier.templates import Mail

from .conftest import free_port, poll_until


def test_committed_asyncapi_document_is_up_to_date() -> None:
    """services/notifier/asyncapi.yaml matches the code (run python -m rebond_notifier.asyncapi)."""
    assert COMMITTED.read_text() == document()


def test_asyncapi_names_every_channel_with_its_payload() -> None:
    """Both inputs and every output topic are in the document, with their payload schema."""
    spec = yaml.safe_load(document())
    channels = set(spec["channels"])
    assert {"routing.decisions", "referrals.status", "notifications.deliveries"} <= channels
    assert {"referrals.apesa", "responses.apesa", "deadletter.notifier"} <= channels
    messages = spec["components"]["messages"]
    decision = messages["routing.decisions:SubscribeMessage"]["payload"]["$ref"]
    assert decision.endswith("/RoutingDecisionV1")


async def test_mail_sink_keeps_each_message_as_a_file(tmp_path: Path) -> None:
    """`python -m rebond_notifier.mailsink` accepts SMTP and writes one .eml file per message."""
    port = free_port()
    server = asyncio.create_task(serve("127.0.0.1", port, tmp_path))
    try:
        for attempt in range(50):
            try:
                await aiosmtplib.send(
                    "Subject: Bonjour RB-TEST\r\n\r\ncorps",
                    sender="a@x.org",
                    recipients=["b@x.org"],
                    hostname="127.0.0.1",
                    port=port,
                )
                break
            except aiosmtplib.SMTPConnectError:
                await asyncio.sleep(0.05 * attempt)
        [kept] = await asyncio.to_thread(lambda: [p.read_bytes() for p in tmp_path.glob("*.eml")])
        assert b"Subject: Bonjour RB-TEST" in kept
    finally:
        server.cancel()


class _Mailer:
    def __init__(self) -> None:
        self.sent: list[Mail] = []

    async def send(self, mail: Mail) -> None:
        self.sent.append(mail)


class _NoWebhooks:
    async def post(
        self, url: str, secret: bytes, body: bytes, timeout_s: float, delivery_id: str
    ) -> None:
        raise Retry("unused")


async def test_an_outcome_kafka_refused_is_published_later(tmp_path: Path) -> None:
    """If Kafka refuses the outcome, the e-mail is not resent and the outcome is published later."""
    store = DeliveryStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'log.sqlite3'}")
    await store.create_schema()
    published: list[tuple[DeliveryV1, str]] = []
    refusals = [ConnectionError("kafka down")]

    async def publish(event: DeliveryV1, event_id: str, correlation_id: str) -> Any:
        if refusals:
            raise refusals.pop()
        published.append((event, event_id))
        acknowledged = asyncio.get_running_loop().create_future()
        acknowledged.set_result(None)
        return acknowledged

    mailer = _Mailer()
    dispatcher = Dispatcher(
        store, mailer, _NoWebhooks(), load_associations(), publish, RetryPolicy(),
        poll_interval_s=0.05,
    )  # fmt: skip
    await store.enqueue([
        NewDelivery(
            referral_id="da6e70fb-f7ab-5902-904a-60821a89176b", channel="association_email",
            kind="offer", reference="RB-7K3M-Q9XA-2DFE-W8NB", association_id="apesa",
            correlation_id="RB-7K3M-Q9XA-2DFE-W8NB",
            payload={"to": "a@x.org", "subject": "s", "text": "t"},
        )
    ])  # fmt: skip
    task = asyncio.create_task(dispatcher.run())
    try:
        await poll_until(lambda: bool(published), 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
    assert len(mailer.sent) == 1
    [(event, _)] = published
    assert json.loads(event.model_dump_json())["outcome"] == "sent"


async def test_outcomes_go_out_together_and_only_the_refused_one_again(tmp_path: Path) -> None:
    """Outcomes are in flight together: one Kafka refuses (its acknowledgement fails) goes out
    on a later round, and the one Kafka took is not published twice."""
    store = DeliveryStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'log.sqlite3'}")
    await store.create_schema()
    handed: list[str] = []
    acknowledged: list[str] = []
    refuse = {"once": True}

    async def publish(event: DeliveryV1, event_id: str, correlation_id: str) -> Any:
        handed.append(event_id)
        ack = asyncio.get_running_loop().create_future()
        if refuse["once"] and event.referral_id == first:
            refuse["once"] = False
            ack.set_exception(ConnectionError("not acknowledged"))
        else:
            acknowledged.append(event_id)
            ack.set_result(None)
        return ack

    first, second = (uuid.uuid4() for _ in range(2))
    mailer = _Mailer()
    dispatcher = Dispatcher(
        store, mailer, _NoWebhooks(), load_associations(), publish, RetryPolicy(),
        poll_interval_s=0.05,
    )  # fmt: skip
    await store.enqueue([
        NewDelivery(
            referral_id=str(referral), channel="association_email", kind="offer",
            reference="RB-7K3M-Q9XA-2DFE-W8NB", association_id="apesa",
            correlation_id="RB-7K3M-Q9XA-2DFE-W8NB",
            payload={"to": "a@x.org", "subject": "s", "text": "t"},
        )
        for referral in (first, second)
    ])  # fmt: skip
    task = asyncio.create_task(dispatcher.run())
    try:
        await poll_until(lambda: len(acknowledged) == 2, 5)
        await asyncio.sleep(0.3)  # a few more rounds: nothing more may be published
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
    assert len(mailer.sent) == 2
    assert len(set(acknowledged)) == 2 and len(acknowledged) == 2
    assert len(handed) == 3  # the refused one was handed over twice, the other once
