"""The committed AsyncAPI document, the development mail sink, and the outcome outbox."""

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosmtplib
import yaml

from rebond_notifier.asyncapi import COMMITTED, document
from rebond_notifier.config import load_associations
from rebond_notifier.dispatcher import Dispatcher, RetryPolicy
from rebond_notifier.mailsink import serve
from rebond_notifier.store import NewDelivery
from rebond_sql.outbox import Message, Send
from rebond_sql.testing import acknowledged

from .conftest import FakeMailer, NoWebhooks, free_port, poll_until, sqlite_store


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


def _mail(referral: uuid.UUID) -> NewDelivery:
    return NewDelivery(
        referral_id=str(referral), channel="association_email", kind="offer",
        reference="RB-7K3M-Q9XA-2DFE-W8NB", association_id="apesa",
        correlation_id="RB-7K3M-Q9XA-2DFE-W8NB",
        payload={"to": "a@x.org", "subject": "s", "text": "t"},
    )  # fmt: skip


async def _dispatching(
    tmp_path: Path, send: Send, items: list[NewDelivery], done: Callable[[], bool]
) -> FakeMailer:
    """Run a dispatcher (its relay publishing through `send`) over `items` until `done()`."""
    store = await sqlite_store(tmp_path)
    mailer = FakeMailer()
    dispatcher = Dispatcher(
        store, mailer, NoWebhooks(), load_associations(), store.relay(send), RetryPolicy(),
        poll_interval_s=0.05,
    )  # fmt: skip
    await store.enqueue(items)
    task = asyncio.create_task(dispatcher.run())
    try:
        await poll_until(done, 5)
        await asyncio.sleep(0.3)  # a few more rounds: nothing more may be published
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
    return mailer


async def test_an_outcome_kafka_refused_is_published_later(tmp_path: Path) -> None:
    """If Kafka refuses the outcome, the e-mail is not resent and the outcome is published later."""
    published: list[Message] = []
    refusals = [ConnectionError("kafka down")]

    async def send(message: Message) -> Awaitable[object]:
        if refusals:
            raise refusals.pop()
        published.append(message)
        return acknowledged()

    mailer = await _dispatching(tmp_path, send, [_mail(uuid.uuid4())], lambda: bool(published))
    assert len(mailer.sent) == 1
    [message] = published
    assert json.loads(message.value)["outcome"] == "sent"


async def test_outcomes_go_out_together_and_only_the_refused_one_again(tmp_path: Path) -> None:
    """Outcomes are in flight together: one Kafka refuses (its acknowledgement fails) goes out
    on a later round, and the one Kafka took is not published twice."""
    handed: list[str] = []
    acknowledged: list[str] = []
    refuse = {"once": True}
    first, second = (uuid.uuid4() for _ in range(2))

    async def send(message: Message) -> Awaitable[object]:
        event_id = message.headers["ce_id"]
        handed.append(event_id)
        ack: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if refuse["once"] and json.loads(message.value)["referral_id"] == str(first):
            refuse["once"] = False
            ack.set_exception(ConnectionError("not acknowledged"))
        else:
            acknowledged.append(event_id)
            ack.set_result(None)
        return ack

    items = [_mail(first), _mail(second)]
    mailer = await _dispatching(tmp_path, send, items, lambda: len(acknowledged) == 2)
    assert len(mailer.sent) == 2
    assert len(set(acknowledged)) == 2 and len(acknowledged) == 2
    assert len(handed) == 3  # the refused one was handed over twice, the other once
