"""FastStream's security object for a service's configured Kafka SASL credentials."""

from typing import Protocol

from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import SecretStr

_MECHANISMS: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
    "SCRAM-SHA-512": SASLScram512,
    "SCRAM-SHA-256": SASLScram256,
    "PLAIN": SASLPlaintext,
}


class KafkaSecuritySettings(Protocol):
    """The four settings fields every service has for its Kafka credentials."""

    @property
    def kafka_security_protocol(self) -> str: ...  # PLAINTEXT, SASL_PLAINTEXT or SASL_SSL
    @property
    def kafka_sasl_mechanism(self) -> str: ...  # SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN
    @property
    def kafka_sasl_username(self) -> str | None: ...
    @property
    def kafka_sasl_password(self) -> SecretStr | None: ...


def kafka_security(settings: KafkaSecuritySettings) -> BaseSecurity | None:
    """FastStream's security object for the configured SASL credentials (None: plaintext)."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    password = settings.kafka_sasl_password
    return _MECHANISMS[settings.kafka_sasl_mechanism](
        username=settings.kafka_sasl_username or "",
        password=password.get_secret_value() if password else "",
        use_ssl=settings.kafka_security_protocol == "SASL_SSL",
    )
