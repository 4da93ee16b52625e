"""Settings: secrets from files, and no development secret or plain-http URL in production."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from rebond_coordination.settings import CoordinationSettings

TOKEN = "t" * 40
KEYS = {"second-souffle": "k" * 40}


def production(**values: object) -> CoordinationSettings:
    defaults: dict[str, object] = {
        "environment": "production", "public_url": "https://console.rebond.example",
        "router_preview_token": TOKEN, "events_organiser_keys": KEYS, "smtp_starttls": True,
        "kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "coordination",
        "kafka_sasl_password": "p" * 24,
    }  # fmt: skip
    given = {name: value for name, value in {**defaults, **values}.items() if value is not None}
    return CoordinationSettings(**given)  # type: ignore[arg-type]


def test_production_starts_with_real_secrets_on_https() -> None:
    """An https URL and real secrets are accepted, and make the session cookie Secure."""
    assert production().secure_cookies


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"public_url": "http://console.rebond.example"}, "must be https"),
        ({"router_preview_token": "dev-only-router-preview-token-change-me"}, "PREVIEW_TOKEN"),
        ({"router_preview_token": "short"}, "PREVIEW_TOKEN"),
        ({"kafka_security_protocol": "SASL_PLAINTEXT"}, "COORDINATION_KAFKA_SECURITY_PROTOCOL"),
        ({"smtp_starttls": False}, "COORDINATION_SMTP_STARTTLS"),
        (
            {"events_organiser_keys": {"apesa": "dev-key-apesa"}},
            r"COORDINATION_EVENTS_ORGANISER_KEYS .* holds development keys",
        ),
    ],
)
def test_production_refuses_development_values(change: dict[str, object], message: str) -> None:
    """Each development default, or an http URL, stops the service at start-up in production."""
    with pytest.raises(ValidationError, match=message):
        production(**change)


def test_development_defaults_are_refused_in_production_even_untouched() -> None:
    """Left as they are, the defaults do not pass production."""
    with pytest.raises(ValidationError):
        CoordinationSettings(environment="production", public_url="https://x.example")


def test_secrets_and_the_database_url_can_come_from_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`*_FILE` variables (mounted secrets) win over the plain ones."""
    (tmp_path / "url").write_text("postgresql+psycopg://coord:s3cret@db/coordination\n")
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "keys.json").write_text(json.dumps(KEYS))
    monkeypatch.setenv("COORDINATION_DATABASE_URL_FILE", str(tmp_path / "url"))
    monkeypatch.setenv("COORDINATION_ROUTER_PREVIEW_TOKEN_FILE", str(tmp_path / "token"))
    monkeypatch.setenv("COORDINATION_EVENTS_ORGANISER_KEYS_FILE", str(tmp_path / "keys.json"))
    (tmp_path / "kafka").write_text("k" * 24 + "\n")
    monkeypatch.setenv("COORDINATION_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "kafka"))
    settings = production(
        router_preview_token=None, events_organiser_keys=None, kafka_sasl_password=None
    )
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "k" * 24
    assert settings.database == "postgresql+psycopg://coord:s3cret@db/coordination"
    assert settings.router_preview_token.get_secret_value() == TOKEN
    assert "s3cret" not in repr(settings)
