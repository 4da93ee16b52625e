"""kafka_security: the settings' protocol and mechanism become FastStream's security object."""

from dataclasses import dataclass

import pytest
from faststream.security import SASLPlaintext, SASLScram256, SASLScram512
from pydantic import SecretStr

from rebond_kafka.security import kafka_security

PASSWORD = SecretStr("s3cret")


@dataclass(frozen=True)
class Settings:
    """The four Kafka security fields a service's settings carry."""

    kafka_security_protocol: str = "SASL_PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = "router"
    kafka_sasl_password: SecretStr | None = PASSWORD


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
    assert security is not None and security.use_ssl is False


def test_sasl_ssl_uses_tls() -> None:
    """SASL_SSL: SASL over TLS (`use_ssl`)."""
    security = kafka_security(Settings(kafka_security_protocol="SASL_SSL"))
    assert security is not None and security.use_ssl is True


def test_missing_credentials_become_empty_strings() -> None:
    """No username or password configured: empty strings, not None (the broker refuses them)."""
    security = kafka_security(Settings(kafka_sasl_username=None, kafka_sasl_password=None))
    assert (security.username, security.password) == ("", "")  # type: ignore[union-attr]
