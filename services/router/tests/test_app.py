"""The composition root: health endpoints, and a bad directory stops the router at start-up."""

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError
from fastapi.testclient import TestClient

from rebond_router.app import build, create_app, watch_deadlines
from rebond_router.consumer import new_broker
from rebond_router.directory import Directory, DirectoryError
from rebond_router.lifecycle import outbox_messages
from rebond_router.referral import Referral
from rebond_router.rules import decide
from rebond_router.settings import RouterSettings
from rebond_router.store import OUTBOX, migrate
from rebond_testing import free_port
from rebond_testing.leaks import unclosed_clients

from .conftest import NOW, REFERENCE, Clock, FakeOutputs, questionnaire


def test_alive_but_not_ready_while_kafka_is_unreachable(tmp_path: Path) -> None:
    """With no broker the router stays up and retrying: /healthz 200, /readyz 503."""
    settings = RouterSettings(
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/router.sqlite3",
        environment="test",
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"kafka": "unreachable", "store": "ready"}
    assert (tmp_path / "router.sqlite3").is_file()  # the store was created at start-up


async def test_the_broker_is_durable_and_a_failed_start_leaves_no_producer_open() -> None:
    """The router's producer is acks=all and idempotent to each bootstrap server, and a start
    against an unreachable Kafka (retried by the host while it is away) leaves no unclosed
    producer behind."""
    servers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    broker = new_broker(RouterSettings(kafka_bootstrap_servers=",".join(servers)))
    kwargs = broker._connection_kwargs
    assert (kwargs["acks"], kwargs["enable_idempotence"]) == ("all", True)
    assert (kwargs["bootstrap_servers"], kwargs["client_id"]) == (servers, "rebond-router")
    with unclosed_clients() as unclosed:
        with pytest.raises(KafkaConnectionError):
            await broker.start()
        await broker.stop()
    assert unclosed == []


def test_with_an_operators_port_metrics_leave_the_preview_port(tmp_path: Path) -> None:
    """ROUTER_INTERNAL_PORT set: `/metrics` and `/openapi.json` answer 404 on the public port
    (the console's preview port), the probes still answer there."""
    settings = RouterSettings(
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/router.sqlite3",
        environment="test",
        internal_port=free_port(),
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/openapi.json").status_code == 404
        assert client.get("/healthz").status_code == 200


def test_a_bad_directory_stops_the_router_before_it_starts(tmp_path: Path) -> None:
    """A typo in the directory is reported, naming the association, instead of routing wrongly."""
    bad = tmp_path / "directory.yaml"
    bad.write_text(
        Path(RouterSettings().directory_path)
        .read_text()
        .replace("weekly_capacity: 5", "weekly_capacity: five")
    )
    with pytest.raises(DirectoryError, match="association 're-creer', field 'weekly_capacity'"):
        create_app(RouterSettings(directory_path=bad, database_url="sqlite+aiosqlite://"))


def test_a_zero_retry_delay_is_refused_naming_the_setting() -> None:
    """A retry delay of 0 would retry transient failures in a hot loop: refused at start-up."""
    with pytest.raises(ValueError, match="retry_backoff_s"):
        RouterSettings(retry_backoff_s=0)


async def test_each_deadline_round_publishes_what_a_crashed_instance_left(
    tmp_path: Path, directory: Directory
) -> None:
    """A round of the deadline task publishes the outputs left unpublished longer than
    `outbox_stale_after_s` (an instance crashed between its commit and its flush); fresher ones
    are left to the flush of the instance that wrote them."""
    settings = RouterSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/router.sqlite3", outbox_stale_after_s=30
    )
    clock = Clock()
    parts = build(settings, clock=clock)
    migrate(settings.database_url)
    kafka = FakeOutputs()
    parts = replace(parts, relay=parts.store.relay(kafka.send, clock))
    event = questionnaire()
    done = Referral.offer(
        decide(event.id, event.data, NOW, directory, {}), event.data, REFERENCE, NOW, directory
    )
    old, fresh = outbox_messages(done)[:2]
    await parts.store.database.run(lambda c: OUTBOX.add(c, [old], NOW - timedelta(minutes=1)))
    await parts.store.database.run(lambda c: OUTBOX.add(c, [fresh], NOW - timedelta(seconds=5)))

    async def one_round_only(_seconds: float) -> None:
        raise asyncio.CancelledError

    try:
        with pytest.raises(asyncio.CancelledError):
            await watch_deadlines(parts, sleep=one_round_only)
    finally:
        await parts.store.close()
    assert [sent.topic for sent in kafka.sent] == [old.topic]
