"""The associations' side end to end, on the real broker, real SMTP and real HTTP.

One submission gives one referral on the right topic (headers included), one e-mail to the
association and one to the person, one signed webhook; the association's accept, sent with the
`rebond-association` client under its own principal, reaches the person's status timeline.
"""

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiosmtpd.controller import Controller
from standardwebhooks import Webhook

from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE

pytestmark = pytest.mark.kafka

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"e2e-webhook-key-of-32-bytes-long").decode()


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"

    def about(self, reference: str, address: str) -> list[Message]:
        """Messages to `address` that name `reference` (the session broker holds other tests')."""
        return [
            message
            for rcpts, message in self.messages
            if address in rcpts and reference in _text(message)
        ]


def _text(message: Message) -> str:
    parts = message.walk() if message.is_multipart() else [message]
    return "".join(
        part.get_payload(decode=True).decode("utf-8", "replace")  # type: ignore[union-attr]
        for part in parts
        if part.get_content_maintype() == "text"
    )


class Hooks(list[tuple[dict[str, str], bytes]]):
    """Webhook requests received, as (headers, body)."""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        return Handler


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def webhook() -> Iterator[tuple[Hooks, str]]:
    hooks = Hooks()
    server = ThreadingHTTPServer(("127.0.0.1", 0), hooks.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield hooks, f"http://127.0.0.1:{server.server_address[1]}/rebond"
    finally:
        server.shutdown()


@pytest.fixture
def pipeline(kafka_secure, smtp, webhook, launch):  # type: ignore[no-untyped-def]
    """intake, router and notifier as processes, each under its own principal."""
    folder = Path(tempfile.mkdtemp(prefix="rebond-association-flow-"))
    others = ("sos-entrepreneur", "second-souffle", "re-creer", "apesa")
    (folder / "associations.yaml").write_text(
        "associations:\n"
        "  60000-rebonds:\n"
        "    email: orientation@60000rebonds.example\n"
        f"    webhook_url: {webhook[1]}\n"
        "    webhook_secret: env:TEST_WEBHOOK_SECRET\n"
        + "".join(f"  {other}:\n    email: orientation@{other}.example\n" for other in others)
    )
    os.environ["TEST_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    tag = str(time.time_ns())[-8:]
    return {
        "intake": launch(
            "intake", kafka_secure.bootstrap, folder, sasl=kafka_secure.sasl("intake"),
            rate_limit_per_minute="0", group_id=f"rebond-intake.flow-{tag}",
        ),
        "router": launch(
            "router", kafka_secure.bootstrap, folder, sasl=kafka_secure.sasl("router"),
            group_id=f"rebond-router.flow-{tag}",
        ),
        "notifier": launch(
            "notifier", kafka_secure.bootstrap, folder, sasl=kafka_secure.sasl("notifier"),
            group_id=f"rebond-notifier.flow-{tag}", smtp_port=str(smtp[1]),
            associations_file=str(folder / "associations.yaml"),
        ),
    }  # fmt: skip


async def _referrals_after(kafka_secure, reference: str, within_s: float) -> list[Any]:  # type: ignore[no-untyped-def]
    """Read referrals.60000-rebonds as the association itself would, keeping `reference`'s."""
    consumer = AIOKafkaConsumer(
        "referrals.60000-rebonds",
        bootstrap_servers=kafka_secure.bootstrap,
        group_id=f"association-60000-rebonds.test-{reference}",
        auto_offset_reset="earliest",
        **kafka_secure.sasl("association-60000-rebonds"),
    )
    await consumer.start()
    found: list[Any] = []
    try:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            found += [r for rs in batches.values() for r in rs if r.key == reference.encode()]
            if found and time.monotonic() > deadline - within_s + 3:
                break  # give a duplicate, if any, three seconds to show up
        return found
    finally:
        await consumer.stop()


def _until(check: Any, within_s: float) -> Any:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    return check()


def test_one_submission_reaches_the_association_every_way_and_its_accept_reaches_the_person(  # type: ignore[no-untyped-def]
    kafka_secure, pipeline, smtp, webhook
) -> None:
    """Topic, two e-mails, one signed webhook; the CLI accept shows on the status timeline."""
    inbox, _ = smtp
    hooks, _ = webhook
    reply = httpx.post(f"{pipeline['intake'].url}/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
    assert reply.status_code == 202, reply.text
    reference = reply.json()["reference"]

    records = asyncio.run(_referrals_after(kafka_secure, reference, within_s=20))
    assert len(records) == 1, f"{len(records)} referral records for {reference}"
    headers = {k: v.decode() for k, v in records[0].headers}
    assert headers["ce_subject"] == reference and headers["ce_type"] == "fr.rebond.referral.offered"
    assert json.loads(records[0].value)["association_id"] == "60000-rebonds"

    to_association = _until(lambda: inbox.about(reference, "orientation@60000rebonds.example"), 30)
    to_person = _until(lambda: inbox.about(reference, "claire@example.org"), 30)

    def ours() -> list[tuple[dict[str, str], bytes]]:
        return [(h, body) for h, body in hooks if json.loads(body)["subject"] == reference]

    assert _until(ours, 30)
    time.sleep(1)  # a second e-mail or call, if any, would arrive now
    assert (
        len(inbox.about(reference, "orientation@60000rebonds.example")) == len(to_association) == 1
    )
    assert len(inbox.about(reference, "claire@example.org")) == len(to_person) == 1
    assert len(ours()) == 1
    hook_headers, body = ours()[0]
    # What an association does: a ready-made Standard Webhooks verifier (id, timestamp, body).
    Webhook(WEBHOOK_SECRET).verify(body, hook_headers)
    event = json.loads(body)  # the whole CloudEvent, structured mode
    assert event["subject"] == reference and event["data"]["reference"] == reference

    answer = subprocess.run(
        [sys.executable, "-m", "rebond_notifier.association_cli", "accept", reference,
         "--association", "60000-rebonds"],
        env={
            **os.environ,
            "REBOND_KAFKA_BOOTSTRAP_SERVERS": kafka_secure.bootstrap,
            "REBOND_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "REBOND_KAFKA_SASL_USERNAME": "association-60000-rebonds",
            "REBOND_KAFKA_SASL_PASSWORD": kafka_secure.credentials["association-60000-rebonds"],
        },
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stderr

    def accepted() -> bool:
        status = httpx.get(f"{pipeline['intake'].url}/v1/submissions/{reference}").json()
        return "accepted" in [step["code"] for step in status["timeline"]]

    assert _until(accepted, 20), httpx.get(
        f"{pipeline['intake'].url}/v1/submissions/{reference}"
    ).text
