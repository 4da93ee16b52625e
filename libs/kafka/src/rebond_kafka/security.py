"""A process's Kafka connection, from its settings (`rebond_kafka.settings`), as FastStream's
security object, as aiokafka's keyword arguments, or as librdkafka's settings (confluent-kafka's
admin client, which provisioning uses: `rebond_kafka.provision`)."""

import ssl
from pathlib import Path
from typing import Any, Protocol

from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import SecretStr

_MECHANISMS: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
    "SCRAM-SHA-512": SASLScram512,
    "SCRAM-SHA-256": SASLScram256,
    "PLAIN": SASLPlaintext,
}


class KafkaSecuritySettings(Protocol):
    """The Kafka connection fields of a process's settings (`KafkaClientSettings` fits)."""

    @property
    def kafka_security_protocol(self) -> str: ...  # PLAINTEXT, SASL_PLAINTEXT or SASL_SSL
    @property
    def kafka_sasl_mechanism(self) -> str: ...  # SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN
    @property
    def kafka_sasl_username(self) -> str | None: ...
    @property
    def kafka_sasl_password(self) -> SecretStr | None: ...
    @property
    def kafka_ssl_cafile(self) -> Path | None: ...
    @property
    def kafka_ssl_certfile(self) -> Path | None: ...
    @property
    def kafka_ssl_keyfile(self) -> Path | None: ...


def kafka_ssl_context(settings: KafkaSecuritySettings) -> ssl.SSLContext | None:
    """The TLS context of a SASL_SSL connection (None for the other protocols): the brokers'
    certificates are checked against the configured CA (else the system's) and their host
    names verified (aiokafka's `create_ssl_context` never turns that off); a client
    certificate is presented when one is configured. An unreadable file raises here, when the
    service is built, not at each connection attempt."""
    if settings.kafka_security_protocol != "SASL_SSL":
        return None
    return create_ssl_context(
        cafile=settings.kafka_ssl_cafile,
        certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
    )


def kafka_security(settings: KafkaSecuritySettings) -> BaseSecurity | None:
    """FastStream's security object for the configured connection (None: plaintext). SASL_SSL
    carries its TLS context: aiokafka refuses SSL without one."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    password = settings.kafka_sasl_password
    return _MECHANISMS[settings.kafka_sasl_mechanism](
        username=settings.kafka_sasl_username or "",
        password=password.get_secret_value() if password else "",
        ssl_context=kafka_ssl_context(settings),
        use_ssl=settings.kafka_security_protocol == "SASL_SSL",
    )


def aiokafka_options(settings: KafkaSecuritySettings) -> dict[str, Any]:
    """aiokafka's keyword arguments for the same connection (its bare clients and tools)."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol == "PLAINTEXT":
        return options
    password = settings.kafka_sasl_password
    return options | {
        "sasl_mechanism": settings.kafka_sasl_mechanism,
        "sasl_plain_username": settings.kafka_sasl_username or "",
        "sasl_plain_password": password.get_secret_value() if password else "",
        "ssl_context": kafka_ssl_context(settings),
    }


def librdkafka_options(settings: KafkaSecuritySettings) -> dict[str, str]:
    """librdkafka's settings for the same connection (confluent-kafka's clients). librdkafka
    verifies the brokers' certificates and host names by default; the CA file, when set,
    replaces the system's trusted CAs, as it does for aiokafka."""
    options = {"security.protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol == "PLAINTEXT":
        return options
    password = settings.kafka_sasl_password
    options |= {
        "sasl.mechanism": settings.kafka_sasl_mechanism,
        "sasl.username": settings.kafka_sasl_username or "",
        "sasl.password": password.get_secret_value() if password else "",
    }
    files = {
        "ssl.ca.location": settings.kafka_ssl_cafile,
        "ssl.certificate.location": settings.kafka_ssl_certfile,
        "ssl.key.location": settings.kafka_ssl_keyfile,
    }
    if settings.kafka_security_protocol == "SASL_SSL":
        options |= {name: str(path) for name, path in files.items() if path is not None}
    return options
