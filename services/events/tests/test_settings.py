"""Settings: hashed organiser keys, and no development secret in production."""

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rebond_events.settings import EventsSettings, hash_api_key
from rebond_kafka.testing import PRODUCTION_KAFKA

GOOD_SECRET = "s" * 40
PRODUCTION: dict[str, Any] = {"environment": "production", **PRODUCTION_KAFKA}


def test_production_refuses_the_development_signing_secret() -> None:
    """EVENTS_ENVIRONMENT=production without a real signing secret does not start."""
    with pytest.raises(ValidationError, match="EVENTS_SIGNING_SECRET"):
        EventsSettings(**PRODUCTION, organiser_keys={"x": hash_api_key("k" * 40)})


def test_production_refuses_the_development_organiser_keys() -> None:
    """The built-in development API keys are refused in production."""
    with pytest.raises(ValidationError, match=r"EVENTS_ORGANISER_KEYS .* holds development keys"):
        EventsSettings(**PRODUCTION, signing_secret=GOOD_SECRET)


def test_production_starts_with_real_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real secrets, here keys from the file EVENTS_ORGANISER_KEYS_FILE names, are accepted in
    production: the file replaces the development keys."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"second-souffle": hash_api_key("a-long-random-key")}))
    monkeypatch.setenv("EVENTS_ORGANISER_KEYS_FILE", str(keys))
    settings = EventsSettings(**PRODUCTION, signing_secret=GOOD_SECRET)
    assert settings.organiser_keys == {"second-souffle": hash_api_key("a-long-random-key")}


def test_keys_must_be_stored_hashed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clear-text key in EVENTS_ORGANISER_KEYS is refused: only sha256 hashes are stored."""
    monkeypatch.setenv("EVENTS_ORGANISER_KEYS", json.dumps({"second-souffle": "clear-text-key"}))
    with pytest.raises(ValidationError, match="sha256"):
        EventsSettings()
