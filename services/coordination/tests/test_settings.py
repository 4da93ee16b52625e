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
        "router_preview_token": TOKEN, "events_organiser_keys": KEYS,
    }  # fmt: skip
    return CoordinationSettings(**{**defaults, **values})  # type: ignore[arg-type]


def test_production_starts_with_real_secrets_on_https() -> None:
    """An https URL and real secrets are accepted, and make the session cookie Secure."""
    assert production().secure_cookies


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"public_url": "http://console.rebond.example"}, "must be https"),
        ({"router_preview_token": "dev-only-router-preview-token-change-me"}, "PREVIEW_TOKEN"),
        ({"router_preview_token": "short"}, "PREVIEW_TOKEN"),
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
    settings = CoordinationSettings(environment="production", public_url="https://x.example")
    assert settings.database == "postgresql+psycopg://coord:s3cret@db/coordination"
    assert settings.router_preview_token.get_secret_value() == TOKEN
    assert "s3cret" not in repr(settings)
