"""The shared Kafka settings: the variables keep each process's prefix, and production's
requirements (SASL_SSL with SCRAM and both credentials) name each variable to set. A service's
settings run that check while they are read: `libs/service/tests/test_settings.py`."""

from pathlib import Path

import pytest
from pydantic_settings import SettingsConfigDict

from rebond_kafka.settings import KafkaClientSettings, kafka_production_problems
from rebond_kafka.testing import PRODUCTION_KAFKA


class CliLike(KafkaClientSettings):
    """A client without an environment (the associations' CLI)."""

    model_config = SettingsConfigDict(env_prefix="REBOND_", extra="ignore")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("REBOND_"):
            monkeypatch.delenv(name)


def test_every_kafka_variable_carries_the_process_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """`<PREFIX>_KAFKA_*` set each field."""
    for name, value in {
        "REBOND_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "REBOND_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "REBOND_KAFKA_SASL_USERNAME": "association-apesa",
        "REBOND_KAFKA_SASL_PASSWORD": "from-env",
        "REBOND_KAFKA_SSL_CAFILE": "/etc/kafka/ca.pem",
        "REBOND_KAFKA_SSL_CERTFILE": "/etc/kafka/client.pem",
        "REBOND_KAFKA_SSL_KEYFILE": "/etc/kafka/client.key",
    }.items():
        monkeypatch.setenv(name, value)
    settings = CliLike()
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-256"
    assert settings.kafka_sasl_username == "association-apesa"
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "from-env"
    assert settings.kafka_ssl_cafile == Path("/etc/kafka/ca.pem")
    assert settings.kafka_ssl_certfile == Path("/etc/kafka/client.pem")
    assert settings.kafka_ssl_keyfile == Path("/etc/kafka/client.key")


def test_sasl_ssl_scram_and_credentials_leave_nothing_to_fix() -> None:
    """SASL_SSL, SCRAM, a username and a password: no problem for production."""
    assert kafka_production_problems(CliLike(**PRODUCTION_KAFKA)) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            {"kafka_security_protocol": "PLAINTEXT"},
            "REBOND_KAFKA_SECURITY_PROTOCOL must be SASL_SSL",
        ),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT"},
            "REBOND_KAFKA_SECURITY_PROTOCOL must be SASL_SSL",
        ),
        ({"kafka_sasl_mechanism": "PLAIN"}, "REBOND_KAFKA_SASL_MECHANISM must be SCRAM"),
        ({"kafka_sasl_username": None}, "REBOND_KAFKA_SASL_USERNAME must be set"),
        ({"kafka_sasl_password": None}, "REBOND_KAFKA_SASL_PASSWORD"),
        ({"kafka_sasl_password": ""}, "REBOND_KAFKA_SASL_PASSWORD"),
    ],
)
def test_each_missing_piece_names_its_variable(change: dict[str, object], named: str) -> None:
    """Each piece production lacks is one problem naming the variable to set."""
    (problem,) = kafka_production_problems(CliLike(**{**PRODUCTION_KAFKA, **change}))  # type: ignore[arg-type]
    assert problem.startswith(named)


def test_a_client_without_environment_has_no_production_check() -> None:
    """The associations' client reads the same fields under REBOND_ and demands nothing."""
    assert CliLike(kafka_security_protocol="SASL_PLAINTEXT").kafka_security_protocol == (
        "SASL_PLAINTEXT"
    )
    assert not hasattr(CliLike(), "environment")
