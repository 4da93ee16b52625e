"""The notifier's trace propagation, log context and /metrics against the real broker."""

import asyncio
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from rebond_contracts.associations import AssociationId
from rebond_contracts.topics import DECISIONS, referrals
from rebond_contracts.tracing import TraceParent
from rebond_kafka.testing import move_group_to_end
from rebond_notifier.app import create_app
from rebond_notifier.settings import NotifierSettings
from rebond_testing import TopicProbe
from rebond_testing.serving import ready_within

from .conftest import MailBox, make_decision

PUBLISHED = re.compile(
    r'^rebond_notifier_referrals_published_total\{association="60000-rebonds"\} (\S+)$', re.M
)
SENT = 'rebond_notifier_deliveries_total{channel="association_email",outcome="sent"}'

pytestmark = pytest.mark.kafka
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_referral_continues_the_trace_and_metrics_show_it(
    kafka_bootstrap: str, smtp_server: MailBox, tmp_path: Path
) -> None:
    """A decision's traceparent is continued on its referral; /metrics then counts the referral
    per association, the deliveries, the records consumed and published and the group's lag,
    with no reference in any label."""
    group = f"notifier-obs-{uuid.uuid4().hex[:8]}"
    await move_group_to_end(kafka_bootstrap, group, [DECISIONS.name])  # reads only its decision
    settings = NotifierSettings(
        kafka_bootstrap_servers=kafka_bootstrap, environment="test", group_id=group,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'log.sqlite3'}",
        smtp_host=smtp_server.host, smtp_port=smtp_server.port, poll_interval_s=0.2,
    )  # fmt: skip
    app = create_app(settings)
    decision = make_decision(AssociationId.SOIXANTE_MILLE_REBONDS)
    reference = decision.reference
    event = DECISIONS.envelope(
        decision, subject=reference, correlationid=reference, id=str(decision.decision_id)
    )
    headers = [(k, v.encode()) for k, v in event.kafka_headers().items()]
    headers.append(("traceparent", f"00-{TRACE}-00f067aa0ba902b7-01".encode()))
    async with TopicProbe(
        kafka_bootstrap, [referrals(AssociationId.SOIXANTE_MILLE_REBONDS).name]
    ) as watcher:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://n") as client:
                    assert await ready_within(client), "the notifier never connected"
                    await producer.send_and_wait(
                        DECISIONS.name, event.kafka_value(), key=reference.encode(), headers=headers
                    )
                    [record] = await watcher.wait_for(reference, 1)
                    sent = TraceParent.parse(dict(record.headers)["traceparent"])
                    assert sent is not None and sent.trace_id == TRACE
                    await smtp_server.wait_for(reference, 2)
                    # Until both counters show what was published and sent: the deliveries'
                    # outcomes are published after the e-mails go out, not with them.
                    deadline = time.monotonic() + 10
                    while True:
                        text = (await client.get("/metrics")).text
                        if (PUBLISHED.search(text) and SENT in text) or time.monotonic() > deadline:
                            break
                        await asyncio.sleep(0.2)
        finally:
            await producer.stop()
    # At least once: a rebalance on a loaded machine may hand the decision over again.
    published = PUBLISHED.search(text)
    assert published is not None and float(published[1]) >= 1, text
    assert SENT in text
    assert f'handler="{DECISIONS.name}"' in text
    assert 'destination="referrals.60000-rebonds",status="success"' in text
    assert f'rebond_consumer_lag{{group="{group}",partition="0",topic="{DECISIONS.name}"}}' in text
    assert reference not in text
