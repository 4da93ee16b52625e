"""Fixtures of the privacy end-to-end tests: the four services on the secured broker, a mail
sink, and helpers to read an association's topic and a service's SQLite store."""

import asyncio
import socket
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiosmtpd.controller import Controller

ASSOCIATIONS = ("60000-rebonds", "sos-entrepreneur", "second-souffle", "re-creer", "apesa")


class MailSink:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [message for rcpts, message in self.messages if address in rcpts]


@dataclass
class PrivacyPipeline:
    services: dict[str, Any]
    folder: Path
    mail: MailSink

    def rows(self, service: str, query: str, *args: object) -> list[tuple[Any, ...]]:
        """Rows of `query` on `service`'s own SQLite store (read-only)."""
        path = next(self.folder.glob(f"{service}.sqlite3"))
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as connection:
            return connection.execute(query, args).fetchall()


@pytest.fixture
def privacy_pipeline(kafka_secure, launch, monkeypatch) -> Iterator[PrivacyPipeline]:  # type: ignore[no-untyped-def]
    """intake, router, notifier and events as processes under their own principals (ACLs apply),
    each with its own fresh store and consumer groups, e-mails to a local aiosmtpd."""
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")  # each log line reaches its file at once
    mail = MailSink()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        smtp_port = sock.getsockname()[1]
    controller = Controller(mail, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    folder = Path(tempfile.mkdtemp(prefix="rebond-privacy-"))
    (folder / "associations.yaml").write_text(
        "associations:\n"
        + "".join(f"  {a}:\n    email: orientation@{a}.example\n" for a in ASSOCIATIONS)
    )
    tag = str(time.time_ns())[-9:]

    def start(name: str, **env: str) -> Any:
        return launch(
            name, kafka_secure.bootstrap, folder, sasl=kafka_secure.sasl(name),
            group_id=f"rebond-{name}.privacy-{tag}", **env,
        )  # fmt: skip

    try:
        services = {
            "intake": start("intake", rate_limit_per_minute="0"),
            "router": start("router"),
            "notifier": start(
                "notifier",
                smtp_port=str(smtp_port),
                associations_file=str(folder / "associations.yaml"),
            ),
            "events": start("events"),
        }
        yield PrivacyPipeline(services, folder, mail)
    finally:
        controller.stop()


def until(check: Callable[[], Any], within_s: float) -> Any:
    """`check()` once it is truthy, else its last value after `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.25)
    return check()


async def _association_records(
    kafka_secure: Any, association: str, reference: str, wanted: set[str], within_s: float
) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(
        f"referrals.{association}",
        bootstrap_servers=kafka_secure.bootstrap,
        group_id=f"association-{association}.privacy-{time.time_ns()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **kafka_secure.sasl(f"association-{association}"),
    )
    await consumer.start()
    found: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline and not wanted <= found.keys():
            batches = await consumer.getmany(timeout_ms=300)
            for record in (r for rs in batches.values() for r in rs):
                if record.key == reference.encode():
                    found[dict(record.headers)["ce_type"].decode()] = record
        return found
    finally:
        await consumer.stop()


def association_records(
    kafka_secure: Any, association: str, reference: str, wanted: set[str], within_s: float = 40
) -> dict[str, Any]:
    """Records of `reference` on `referrals.<association>` read as that association, by
    ce_type, once every type in `wanted` was seen (or after `within_s`)."""
    return asyncio.run(_association_records(kafka_secure, association, reference, wanted, within_s))
