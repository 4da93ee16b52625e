"""The notifier on the broker's secured listener, as its own principal. In a module of its own:
no other notifier may be consuming the decisions meanwhile (each would publish the referral)."""

import uuid
from pathlib import Path

import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.topics import DECISIONS, referrals
from rebond_notifier.app import build
from rebond_notifier.settings import NotifierSettings

from .conftest import MailBox, TopicWatcher, make_decision, publish

pytestmark = pytest.mark.kafka


async def _send_decision(bootstrap: str, decision) -> None:  # type: ignore[no-untyped-def]
    event = DECISIONS.envelope(
        decision, subject=decision.reference, correlationid=decision.reference,
        id=str(decision.decision_id),
    )  # fmt: skip
    await publish(bootstrap, DECISIONS.name, event, decision.reference)


async def test_notifier_connects_with_its_own_sasl_principal(
    kafka_bootstrap: str,
    kafka_secure,  # type: ignore[no-untyped-def]
    smtp_server: MailBox,
    tmp_path: Path,
) -> None:
    """On the secured listener the notifier, as principal `notifier`, consumes and publishes referrals."""
    settings = NotifierSettings(
        kafka_bootstrap_servers=kafka_secure.bootstrap,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="notifier",
        kafka_sasl_password=kafka_secure.credentials["notifier"],
        environment="test",
        group_id=f"rebond-notifier.sasl-{uuid.uuid4().hex[:8]}",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'log.sqlite3'}",
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        poll_interval_s=0.2,
    )
    service = build(settings)
    watcher = await TopicWatcher(kafka_bootstrap, referrals(AssociationId.APESA).name).start()
    await service.start()
    try:
        await service.wait_connected()
        decision = make_decision(AssociationId.APESA)
        await _send_decision(kafka_bootstrap, decision)
        assert len(await watcher.wait_for(decision.reference, 1, within_s=30)) == 1
        assert len(await smtp_server.wait_for(decision.reference, 2)) == 2
    finally:
        await watcher.stop()
        await service.stop()
