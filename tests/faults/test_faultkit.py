"""The fault kit's own measuring: `outcome` stops waiting once everything it waits for is there."""

import asyncio
import time
import uuid
from email.message import EmailMessage

import pytest
from aiokafka import AIOKafkaProducer

from rebond_testing import Mail, MailSink
from tests.faults.rebond_faultkit import outcome

pytestmark = pytest.mark.kafka


def _mail(recipient: str, reference: str) -> Mail:
    message = EmailMessage()
    message["Subject"] = f"Orientation {reference}"
    message["Message-ID"] = f"<{uuid.uuid4().hex}@rebond.example>"
    message.set_content(f"Votre référence : {reference}")
    return Mail((recipient,), message)


async def _refer(bootstrap: str, reference: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        headers = [("ce_subject", reference.encode()), ("ce_id", uuid.uuid4().hex.encode())]
        await producer.send_and_wait("referrals.apesa", b"{}", key=b"k", headers=headers)
    finally:
        await producer.stop()


def test_outcome_returns_once_every_referral_and_mail_is_there(kafka_bootstrap: str) -> None:
    """With the referral on its topic and both e-mails in the inbox, `outcome` returns within
    seconds and counts each once, instead of waiting out its whole `within_s`."""
    suffix = uuid.uuid4().hex[:12].upper()
    reference = f"RB-{suffix[:4]}-{suffix[4:8]}-{suffix[8:12]}-TEST"
    asyncio.run(_refer(kafka_bootstrap, reference))
    person = f"p-{suffix.lower()}@example.org"
    inbox = MailSink()  # not started: the two messages are put in as if they had arrived
    inbox.mails += [_mail("orientation@apesa.example", reference), _mail(person, reference)]

    began = time.monotonic()
    found = outcome(kafka_bootstrap, [reference], inbox, None, 120, {reference: person})

    assert time.monotonic() - began < 60
    assert not found.missing([reference])
    assert set(found.doubled([reference]).values()) == {0}
