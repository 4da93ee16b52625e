"""The notifier on the broker's secured listener, as its own principal. In a module of its own:
no other notifier may be consuming the decisions meanwhile (each would publish the referral)."""

from pathlib import Path

import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.topics import referrals
from rebond_testing import TopicProbe

from .conftest import (
    MailBox,
    make_decision,
    notifier_settings,
    running,
    send_decision,
)

pytestmark = pytest.mark.kafka


async def test_notifier_connects_with_its_own_sasl_principal(
    kafka_bootstrap: str,
    kafka_secure,  # type: ignore[no-untyped-def]
    smtp_server: MailBox,
    tmp_path: Path,
) -> None:
    """On the secured listener the notifier, as principal `notifier`, consumes and publishes referrals."""
    settings = notifier_settings(
        kafka_secure.bootstrap, smtp_server, tmp_path, "rebond-notifier.sasl",
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="notifier",
        kafka_sasl_password=kafka_secure.credentials["notifier"],
    )  # fmt: skip
    referred = TopicProbe(kafka_bootstrap, [referrals(AssociationId.APESA).name])
    async with referred as watcher, running(settings):
        decision = make_decision(AssociationId.APESA)
        await send_decision(kafka_bootstrap, decision)
        assert len(await watcher.wait_for(decision.reference, 1, within_s=30)) == 1
        assert len(await smtp_server.wait_for(decision.reference, 2)) == 2
