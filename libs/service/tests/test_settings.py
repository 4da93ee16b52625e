"""The settings base: variables under each service's prefix, any of them from a file named by
`<NAME>_FILE`, the shared bootstrap servers, and production's refusals (Kafka in clear,
development secrets, SMTP in clear), all listed at once."""

import json
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict, SettingsError

from rebond_kafka.testing import PRODUCTION_KAFKA
from rebond_service.settings import (
    DevelopmentValue,
    KafkaServiceSettings,
    ServiceSettings,
)
from rebond_service.smtp import SmtpSettings

DEV_SECRET = "dev-only-secret-change-me"
DEV_KEYS = {"apesa": "dev-key-apesa", "second-souffle": "dev-key-second-souffle"}
STRONG = "a-real-secret-of-more-than-thirty-two-characters"


class RouterLike(KafkaServiceSettings):
    """A service's settings, as each service declares them: its own prefix."""

    model_config = SettingsConfigDict(env_prefix="ROUTER_", extra="ignore")


class ConsoleLike(ServiceSettings):
    """A service without Kafka, with development secrets production refuses."""

    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore")
    development_defaults: ClassVar[dict[str, DevelopmentValue]] = {
        "token": DEV_SECRET,
        "keys": DEV_KEYS,
    }

    token: SecretStr = SecretStr(DEV_SECRET)
    keys: dict[str, SecretStr] = Field(
        default_factory=lambda: {k: SecretStr(v) for k, v in DEV_KEYS.items()}
    )
    database_url: SecretStr = SecretStr("sqlite:///console.sqlite3")
    port: int = 8004


class MailerLike(KafkaServiceSettings, SmtpSettings):
    """A service that sends e-mail, declared as the notifier and the console declare theirs."""

    model_config = SettingsConfigDict(env_prefix="MAILER_", extra="ignore")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("ROUTER_", "CONSOLE_", "MAILER_")) or name == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(name)


# --- variables and files ---------------------------------------------------------------------


def test_every_variable_carries_the_prefix_and_the_defaults_are_development_ones() -> None:
    """Unset, a service listens on the loopback, logs at INFO, exports no span, and runs as
    development on a local Kafka."""
    settings = RouterLike()
    assert (settings.environment, settings.host, settings.port) == (
        "development",
        "127.0.0.1",
        8000,
    )
    assert (settings.log_level, settings.otel_enabled) == ("INFO", False)
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.internal_port is None and settings.internal_public


def test_a_file_named_by_name_file_wins_over_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`<PREFIX>_KAFKA_SASL_PASSWORD_FILE` (a mounted secret) wins over the variable, its
    trailing newline dropped; so for any setting, a JSON mapping included."""
    (tmp_path / "password").write_text("from-file\n")
    (tmp_path / "url").write_text("postgresql+psycopg://console:s3cret@db/console\n")
    (tmp_path / "keys.json").write_text(json.dumps({"apesa": STRONG}))
    monkeypatch.setenv("ROUTER_KAFKA_SASL_PASSWORD", "from-env")
    monkeypatch.setenv("ROUTER_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "password"))
    monkeypatch.setenv("CONSOLE_DATABASE_URL_FILE", str(tmp_path / "url"))
    monkeypatch.setenv("CONSOLE_KEYS_FILE", str(tmp_path / "keys.json"))
    password = RouterLike().kafka_sasl_password
    assert password is not None and password.get_secret_value() == "from-file"
    console = ConsoleLike()
    assert console.database_url.get_secret_value().endswith("s3cret@db/console")
    assert {k: v.get_secret_value() for k, v in console.keys.items()} == {"apesa": STRONG}
    assert "s3cret" not in repr(console)


def test_a_file_that_cannot_be_read_stops_the_service_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `_FILE` variable naming a missing file is an error saying which variable and file."""
    monkeypatch.setenv("CONSOLE_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError) as error:
        ConsoleLike()
    cause = str(error.value.__cause__)
    assert "CONSOLE_TOKEN_FILE names" in cause and "missing" in cause


def test_a_file_variable_of_another_program_is_never_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the `_FILE` twins of the settings' own variables are read: another `*_FILE`
    (here one naming a missing file) is left alone."""
    monkeypatch.setenv("ROUTER_CREDENTIALS_FILE", str(tmp_path / "missing"))
    monkeypatch.setenv("KAFKA_CREDENTIALS_FILE", str(tmp_path / "missing"))
    assert RouterLike().kafka_sasl_password is None


def test_the_bootstrap_servers_fall_back_to_the_shared_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`KAFKA_BOOTSTRAP_SERVERS` when the prefixed variable is unset; the prefixed one wins."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "shared:9092")
    assert RouterLike().kafka_bootstrap_servers == "shared:9092"
    monkeypatch.setenv("ROUTER_KAFKA_BOOTSTRAP_SERVERS", "own:9092")
    assert RouterLike().kafka_bootstrap_servers == "own:9092"


def test_the_internal_port_must_differ_from_the_port() -> None:
    """The operators' port cannot be the public one, and its presence keeps them off it."""
    with pytest.raises(ValidationError, match="ROUTER_INTERNAL_PORT must differ from ROUTER_PORT"):
        RouterLike(port=8001, internal_port=8001)
    assert not RouterLike(internal_port=9001).internal_public


def test_a_development_default_must_name_a_field() -> None:
    """A misspelt `development_defaults` entry fails when the class is defined, not silently
    in production."""
    with pytest.raises(TypeError, match="tokn"):

        class _Misspelt(ServiceSettings):
            development_defaults: ClassVar[dict[str, DevelopmentValue]] = {"tokn": DEV_SECRET}
            token: str = DEV_SECRET


# --- production ------------------------------------------------------------------------------


def test_production_starts_with_sasl_ssl_scram_and_credentials() -> None:
    """SASL_SSL, SCRAM, a username and a password: production starts (each missing piece's
    message: `libs/kafka/tests/test_settings.py`; every service refusing Kafka in clear:
    `tests/security/test_service_secrets.py`)."""
    assert RouterLike(environment="production", **PRODUCTION_KAFKA).environment == "production"  # type: ignore[arg-type]


def test_development_and_test_demand_nothing() -> None:
    """Outside production a local broker may be plaintext and development secrets serve."""
    assert RouterLike(environment="test", kafka_security_protocol="SASL_PLAINTEXT")
    assert ConsoleLike(environment="test").token.get_secret_value() == DEV_SECRET


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"token": DEV_SECRET}, "CONSOLE_TOKEN (or CONSOLE_TOKEN_FILE) must be set"),
        ({"token": "short"}, "CONSOLE_TOKEN (or CONSOLE_TOKEN_FILE) must be set"),
        (
            {"keys": {"apesa": "dev-key-apesa"}},
            "CONSOLE_KEYS (or CONSOLE_KEYS_FILE) holds development",
        ),
        (
            {"keys": {"apesa": STRONG, "second-souffle": "dev-key-second-souffle"}},
            "CONSOLE_KEYS (or CONSOLE_KEYS_FILE) holds development",
        ),
    ],
)
def test_production_refuses_each_development_value(change: dict[str, object], named: str) -> None:
    """A declared development value, or a secret under 32 characters, stops production
    naming the variable (and its file twin)."""
    values: dict[str, object] = {
        "environment": "production",
        "token": STRONG,
        "keys": {"apesa": STRONG},
    }
    with pytest.raises(ValidationError, match=named.replace("(", r"\(").replace(")", r"\)")):
        ConsoleLike(**{**values, **change})  # type: ignore[arg-type]


def test_production_starts_once_real_secrets_come_from_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same production settings start when the secrets are given as files."""
    (tmp_path / "token").write_text(STRONG)
    (tmp_path / "keys.json").write_text(json.dumps({"apesa": STRONG}))
    monkeypatch.setenv("CONSOLE_ENVIRONMENT", "production")
    monkeypatch.setenv("CONSOLE_TOKEN_FILE", str(tmp_path / "token"))
    monkeypatch.setenv("CONSOLE_KEYS_FILE", str(tmp_path / "keys.json"))
    assert ConsoleLike().token.get_secret_value() == STRONG


def test_production_lists_every_problem_at_once() -> None:
    """The defaults in production: one error naming every variable to change (Kafka's and the
    development secrets), not one per start."""
    with pytest.raises(ValidationError) as error:
        RouterLike(environment="production")
    message = str(error.value)
    for name in ("SECURITY_PROTOCOL", "SASL_USERNAME", "SASL_PASSWORD"):
        assert f"ROUTER_KAFKA_{name}" in message
    with pytest.raises(ValidationError) as error:
        ConsoleLike(environment="production")
    assert "CONSOLE_TOKEN" in str(error.value) and "CONSOLE_KEYS" in str(error.value)


# --- SMTP (`rebond_service.smtp`) ------------------------------------------------------------


def test_the_smtp_variables_carry_the_services_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset: the local mail sink, in clear; `MAILER_SMTP_*` set each setting."""
    mailer = MailerLike()
    assert (mailer.smtp_host, mailer.smtp_port, mailer.smtp_starttls) == ("127.0.0.1", 1025, False)
    monkeypatch.setenv("MAILER_SMTP_HOST", "smtp.example")
    monkeypatch.setenv("MAILER_SMTP_PORT", "587")
    monkeypatch.setenv("MAILER_SMTP_STARTTLS", "true")
    mailer = MailerLike()
    assert (mailer.smtp_host, mailer.smtp_port, mailer.smtp_starttls) == ("smtp.example", 587, True)


@pytest.mark.parametrize("environment", ["development", "production"])
def test_starttls_and_implicit_tls_are_not_both_set(environment: str) -> None:
    """STARTTLS upgrades a plain session, implicit TLS starts encrypted: one or the other, in
    any environment."""
    with pytest.raises(ValidationError, match="set MAILER_SMTP_STARTTLS or MAILER_SMTP_TLS"):
        MailerLike(environment=environment, smtp_starttls=True, smtp_tls=True, **PRODUCTION_KAFKA)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tls", "starts"),
    [({}, False), ({"smtp_starttls": True}, True), ({"smtp_tls": True}, True)],
)
def test_production_sends_e_mail_only_encrypted(tls: dict[str, bool], starts: bool) -> None:
    """In production the session is encrypted, by mandatory STARTTLS or implicit TLS, else the
    service stops naming both variables; outside production a local sink in clear serves."""
    assert MailerLike(environment="test")
    if starts:
        assert MailerLike(environment="production", **PRODUCTION_KAFKA, **tls).environment  # type: ignore[arg-type]
    else:
        with pytest.raises(
            ValidationError, match=r"MAILER_SMTP_STARTTLS=true \(port 587\) or MAILER_SMTP_TLS"
        ):
            MailerLike(environment="production", **PRODUCTION_KAFKA)  # type: ignore[arg-type]


def test_production_names_smtp_in_clear_among_the_other_problems() -> None:
    """The SMTP refusal joins the base's (Kafka in clear here): one error names them all."""
    with pytest.raises(ValidationError) as error:
        MailerLike(environment="production")
    message = str(error.value)
    assert "MAILER_SMTP_STARTTLS" in message and "MAILER_KAFKA_SECURITY_PROTOCOL" in message
