"""kafka_security and aiokafka_options: the settings' protocol, mechanism and TLS files become
FastStream's security object or aiokafka's arguments; over SASL_SSL on the real broker."""

import ssl
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import trustme
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from faststream.kafka import KafkaBroker
from faststream.security import SASLPlaintext, SASLScram256, SASLScram512
from pydantic import SecretStr

from rebond_kafka.security import aiokafka_options, kafka_security

PASSWORD = SecretStr("s3cret")


@dataclass(frozen=True)
class Settings:
    """The four Kafka security fields a service's settings carry."""

    kafka_security_protocol: str = "SASL_PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = "router"
    kafka_sasl_password: SecretStr | None = PASSWORD
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None


def test_plaintext_means_no_security_even_with_credentials_set() -> None:
    """PLAINTEXT gives None (FastStream then connects without SASL), whatever else is set."""
    assert kafka_security(Settings(kafka_security_protocol="PLAINTEXT")) is None


@pytest.mark.parametrize(
    ("mechanism", "kind"),
    [("SCRAM-SHA-512", SASLScram512), ("SCRAM-SHA-256", SASLScram256), ("PLAIN", SASLPlaintext)],
)
def test_each_mechanism_maps_to_its_sasl_class_with_the_credentials(
    mechanism: str, kind: type
) -> None:
    """Each SASL mechanism gets its own class, carrying the username and the secret's value."""
    security = kafka_security(Settings(kafka_sasl_mechanism=mechanism))
    assert type(security) is kind
    assert (security.username, security.password) == ("router", "s3cret")  # type: ignore[union-attr]


def test_sasl_plaintext_does_not_use_tls() -> None:
    """SASL_PLAINTEXT: SASL over a plain connection."""
    security = kafka_security(Settings(kafka_security_protocol="SASL_PLAINTEXT"))
    assert security is not None and security.use_ssl is False and security.ssl_context is None


def test_sasl_ssl_uses_tls_with_a_verifying_context(tmp_path: Path) -> None:
    """SASL_SSL: SASL over TLS with a context (aiokafka refuses SSL without one) that checks
    the broker's certificate against the configured CA and its host name."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    security = kafka_security(
        Settings(kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=tmp_path / "ca.pem")
    )
    assert security is not None and security.use_ssl is True
    context = security.ssl_context
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname is True
    assert len(context.get_ca_certs()) == 1


def test_aiokafka_options_match_the_security_object() -> None:
    """The bare-aiokafka form carries the same protocol, mechanism and credentials."""
    assert aiokafka_options(Settings(kafka_security_protocol="PLAINTEXT")) == {
        "security_protocol": "PLAINTEXT"
    }
    options = aiokafka_options(Settings(kafka_sasl_mechanism="SCRAM-SHA-256"))
    assert options == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "router",
        "sasl_plain_password": "s3cret",
        "ssl_context": None,
    }


def test_missing_credentials_become_empty_strings() -> None:
    """No username or password configured: empty strings, not None (the broker refuses them)."""
    security = kafka_security(Settings(kafka_sasl_username=None, kafka_sasl_password=None))
    assert (security.username, security.password) == ("", "")  # type: ignore[union-attr]


@pytest.mark.kafka
async def test_a_service_publishes_and_reads_over_sasl_ssl(kafka_secure) -> None:  # type: ignore[no-untyped-def]
    """The broker's SASL_SSL listener with SCRAM and the CA file: a FastStream broker built as
    every service builds its own publishes, and aiokafka (the associations' client) reads it."""
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="intake",
        kafka_sasl_password=SecretStr(kafka_secure.credentials["intake"]),
        kafka_ssl_cafile=kafka_secure.ca_file,
    )
    reference = f"RB-TLS-{uuid.uuid4().hex[:8]}".encode()
    broker = KafkaBroker(kafka_secure.tls_bootstrap, security=kafka_security(settings))
    await broker.start()
    try:
        await broker.publish(b"{}", "questionnaires.completed", key=reference)
    finally:
        await broker.stop()
    router = replace(
        settings,
        kafka_sasl_username="router",
        kafka_sasl_password=SecretStr(kafka_secure.credentials["router"]),
    )
    consumer = AIOKafkaConsumer(
        "questionnaires.completed", bootstrap_servers=kafka_secure.tls_bootstrap,
        group_id=f"rebond-router.tls-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest",
        **aiokafka_options(router),
    )  # fmt: skip
    await consumer.start()
    try:
        keys: set[bytes | None] = set()
        for _ in range(20):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                keys |= {record.key for record in records}
            if reference in keys:
                break
        assert reference in keys
    finally:
        await consumer.stop()


@pytest.mark.kafka
async def test_a_broker_certificate_no_configured_ca_signed_is_refused(kafka_secure) -> None:  # type: ignore[no-untyped-def]
    """Without the CA that signed it, the broker's certificate fails verification: the
    connection is refused, never made unverified."""
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="intake",
        kafka_sasl_password=SecretStr(kafka_secure.credentials["intake"]),
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_secure.tls_bootstrap, request_timeout_ms=5000,
        **aiokafka_options(settings),
    )  # fmt: skip
    try:
        with pytest.raises(KafkaConnectionError):
            await producer.start()
    finally:
        await producer.stop()
