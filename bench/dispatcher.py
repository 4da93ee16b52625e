"""The notifier's delivery dispatcher alone: deliveries per second and CPU per delivery.

    uv run python bench/dispatcher.py [--deliveries 3000] [--rate 0]

Records N e-mail deliveries across the five associations in a fresh SQLite delivery log, then
runs the `Dispatcher` as the notifier does, against a real SMTP server (`rebond_notifier.mailsink`
in a separate process, so the sink's CPU is not counted) until every delivery is sent and its
outcome published. Kafka is left out: the outcome publisher acknowledges at once, like the tests'
fakes. With `--rate R` the deliveries arrive R per second in small batches, each followed by a
`wake()` as the consumer does; with 0 (the default) they are all recorded before it starts.

Prints one JSON line: deliveries/s and this process's CPU seconds per 1,000 deliveries
(`time.process_time`: the dispatcher, the store and its SQLite thread, logging included), beside the
same-run baseline: the same mails sent by the bare `SmtpMailer`, five lanes at once, with no
delivery log. The ratio of the two is what the dispatcher and its store add to sending.
`make bench` runs it as its `dispatcher` phase.
"""

import argparse
import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from rebond_contracts.associations import AssociationId
from rebond_notifier.channels import Retry, SmtpMailer
from rebond_notifier.config import load_associations
from rebond_notifier.dispatcher import Dispatcher, RetryPolicy
from rebond_notifier.store import DeliveryStore, NewDelivery, migrate
from rebond_notifier.templates import Mail
from rebond_observability.logging import configure_logging
from rebond_sql.outbox import Message
from rebond_sql.testing import acknowledged
from rebond_testing import free_port

BATCH = 20  # deliveries per consumer batch in --rate mode


def start_mail_sink(port: int, directory: Path) -> subprocess.Popen[bytes]:
    """The development mail sink in its own process; returns once it accepts connections."""
    command = [sys.executable, "-m", "rebond_notifier.mailsink", "--port", str(port)]
    sink = subprocess.Popen([*command, "--dir", str(directory)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return sink
        if sink.poll() is not None:
            raise RuntimeError("the mail sink exited")
        time.sleep(0.05)
    sink.terminate()
    raise RuntimeError("the mail sink did not start")


def deliveries(count: int) -> list[NewDelivery]:
    """E-mails to the associations, spread evenly over the five lanes."""
    associations = list(AssociationId)
    items = []
    for n in range(count):
        association = associations[n % len(associations)]
        reference = f"RB-BNCH-{n // 10000:04d}-{n % 10000:04d}-0000"
        items.append(
            NewDelivery(
                referral_id=str(uuid.uuid4()),
                channel="association_email",
                kind="offer",
                reference=reference,
                association_id=association.value,
                correlation_id=reference,
                payload={
                    "to": f"contact@{association.value}.example",
                    "subject": f"Nouvelle orientation {reference}",
                    "text": "Bonjour,\n\nUne personne vous est orientée.\n" * 8,
                },
            )
        )
    return items


class NoWebhooks:
    async def post(
        self, url: str, secret: bytes, body: bytes, timeout_s: float, delivery_id: str
    ) -> None:
        raise Retry("no webhooks in this benchmark")


class Outcomes:
    """Stands in for the Kafka producer of the outbox's relay: every outcome acknowledged at
    once."""

    def __init__(self) -> None:
        self.event_ids: list[str] = []
        self.all_published = asyncio.Event()
        self.expected = 0

    async def send(self, message: Message) -> Any:
        self.event_ids.append(message.headers["ce_id"])
        if len(self.event_ids) >= self.expected:
            self.all_published.set()
        return acknowledged()


async def feed(
    store: DeliveryStore, dispatcher: Dispatcher, items: list[NewDelivery], rate: float
) -> None:
    """Record `items` BATCH at a time at `rate` per second, waking the dispatcher each time."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    for start in range(0, len(items), BATCH):
        await asyncio.sleep(max(0.0, started + start / rate - loop.time()))
        await store.enqueue(items[start : start + BATCH])
        dispatcher.wake()


async def measure(count: int, rate: float, smtp_port: int, folder: Path) -> dict[str, Any]:
    url = f"sqlite+aiosqlite:///{folder / 'log.sqlite3'}"
    migrate(url)
    store = DeliveryStore.from_url(url)
    outcomes = Outcomes()
    outcomes.expected = count
    dispatcher = Dispatcher(
        store,
        SmtpMailer("127.0.0.1", smtp_port, "notifications@rebond.example"),
        NoWebhooks(),
        load_associations(),
        store.relay(outcomes.send),
        RetryPolicy(),
    )
    items = deliveries(count)
    if not rate:
        await store.enqueue(items)
    wall, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(dispatcher.run())
    feeder = asyncio.create_task(feed(store, dispatcher, items, rate)) if rate else None
    try:
        await asyncio.wait_for(outcomes.all_published.wait(), timeout=max(120, count / 10))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        for running in (task, feeder):
            if running is not None:
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
        await store.close()
    return {
        "deliveries": count,
        "rate": rate or "backlog",
        "seconds": round(wall, 3),
        "deliveries_per_s": round(count / wall, 1),
        "cpu_s_per_1000": round(cpu / count * 1000, 3),
        "outcomes_published": len(outcomes.event_ids),
        "distinct_outcomes": len(set(outcomes.event_ids)),
    }


async def bare(count: int, smtp_port: int) -> dict[str, Any]:
    """The baseline: the same e-mails through `SmtpMailer` alone, one lane per association."""
    mailer = SmtpMailer("127.0.0.1", smtp_port, "notifications@rebond.example")
    lanes: dict[str, list[Mail]] = {}
    for item in deliveries(count):
        payload = item.payload or {}
        mail = Mail(payload["to"], payload["subject"], payload["text"], str(uuid.uuid4()))
        lanes.setdefault(item.association_id, []).append(mail)

    async def lane(mails: list[Mail]) -> None:
        for mail in mails:
            await mailer.send(mail)

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(lane(mails) for mails in lanes.values()))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "deliveries_per_s": round(count / wall, 1),
        "cpu_s_per_1000": round(cpu / count * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=0.0, help="per second; 0: all at once")
    args = parser.parse_args()
    configure_logging("INFO")  # as in production, JSON lines, but written nowhere
    [handler] = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the whole run
    with tempfile.TemporaryDirectory(prefix="rebond-bench-dispatcher-") as tmp:
        folder = Path(tmp)
        port = free_port()
        sink = start_mail_sink(port, folder / "mail")
        try:
            baseline = asyncio.run(bare(args.deliveries, port))
            before = len(list((folder / "mail").glob("*.eml")))
            result = asyncio.run(measure(args.deliveries, args.rate, port, folder))
        finally:
            sink.terminate()
            sink.wait(timeout=10)
        result["mails_received"] = len(list((folder / "mail").glob("*.eml"))) - before
    result["bare_smtp"] = baseline
    result["cpu_ratio_to_bare"] = round(result["cpu_s_per_1000"] / baseline["cpu_s_per_1000"], 2)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
