"""The shared Kafka settings: the variables keep each process's prefix, and production accepts
only SASL_SSL with SCRAM and both credentials."""

from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from rebond_kafka.settings import KafkaClientSettings, ServiceSettings
from rebond_kafka.testing import PRODUCTION_KAFKA


class RouterLike(ServiceSettings):
    """A service's settings, as each service declares them: its own prefix."""

    model_config = SettingsConfigDict(env_prefix="ROUTER_", extra="ignore")


class CliLike(KafkaClientSettings):
    """A client without an environment (the associations' CLI)."""

    model_config = SettingsConfigDict(env_prefix="REBOND_", extra="ignore")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("ROUTER_", "REBOND_")):
            monkeypatch.delenv(name)


def test_every_kafka_variable_carries_the_process_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`<PREFIX>_KAFKA_*` set each field, the password file winning over the password."""
    (tmp_path / "password").write_text("from-file\n")
    for name, value in {
        "ROUTER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "ROUTER_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "ROUTER_KAFKA_SASL_USERNAME": "router",
        "ROUTER_KAFKA_SASL_PASSWORD": "from-env",
        "ROUTER_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "password"),
        "ROUTER_KAFKA_SSL_CAFILE": "/etc/kafka/ca.pem",
        "ROUTER_KAFKA_SSL_CERTFILE": "/etc/kafka/client.pem",
        "ROUTER_KAFKA_SSL_KEYFILE": "/etc/kafka/client.key",
    }.items():
        monkeypatch.setenv(name, value)
    settings = RouterLike()
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-256"
    assert settings.kafka_sasl_username == "router"
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "from-file"
    assert settings.kafka_ssl_cafile == Path("/etc/kafka/ca.pem")
    assert settings.kafka_ssl_certfile == Path("/etc/kafka/client.pem")
    assert settings.kafka_ssl_keyfile == Path("/etc/kafka/client.key")


def test_development_connects_as_configured_even_in_plaintext() -> None:
    """Outside production nothing is demanded: a local broker may be plaintext."""
    assert RouterLike(environment="development").kafka_security_protocol == "PLAINTEXT"
    assert RouterLike(environment="test", kafka_security_protocol="SASL_PLAINTEXT")


def test_production_starts_with_sasl_ssl_scram_and_credentials() -> None:
    """SASL_SSL, SCRAM, a username and a password: production starts."""
    assert RouterLike(environment="production", **PRODUCTION_KAFKA).environment == "production"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            {"kafka_security_protocol": "PLAINTEXT"},
            "ROUTER_KAFKA_SECURITY_PROTOCOL must be SASL_SSL",
        ),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT"},
            "ROUTER_KAFKA_SECURITY_PROTOCOL must be SASL_SSL",
        ),
        ({"kafka_sasl_mechanism": "PLAIN"}, "ROUTER_KAFKA_SASL_MECHANISM must be SCRAM"),
        ({"kafka_sasl_username": None}, "ROUTER_KAFKA_SASL_USERNAME must be set"),
        ({"kafka_sasl_password": None}, "ROUTER_KAFKA_SASL_PASSWORD"),
        ({"kafka_sasl_password": ""}, "ROUTER_KAFKA_SASL_PASSWORD"),
    ],
)
def test_production_refuses_kafka_without_tls_or_scram(
    change: dict[str, object], named: str
) -> None:
    """Each missing piece stops production with a message naming the variable to set."""
    with pytest.raises(ValidationError, match=named):
        RouterLike(environment="production", **{**PRODUCTION_KAFKA, **change})


def test_production_lists_every_problem_at_once() -> None:
    """The defaults in production: one error naming all four variables, not one per start."""
    with pytest.raises(ValidationError) as error:
        RouterLike(environment="production")
    message = str(error.value)
    for name in ("SECURITY_PROTOCOL", "SASL_USERNAME", "SASL_PASSWORD"):
        assert f"ROUTER_KAFKA_{name}" in message


def test_a_client_without_environment_has_no_production_check() -> None:
    """The associations' client reads the same fields under REBOND_ and demands nothing."""
    assert CliLike(kafka_security_protocol="SASL_PLAINTEXT").kafka_security_protocol == (
        "SASL_PLAINTEXT"
    )
    assert not hasattr(CliLike(), "environment")
