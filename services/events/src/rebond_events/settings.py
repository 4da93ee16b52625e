"""Events settings, read from `EVENTS_*` environment variables."""

import hashlib
import json
from pathlib import Path
from typing import Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from rebond_http.settings import EdgeSettings
from rebond_kafka.settings import ServiceSettings

#: Development-only secrets: refused when EVENTS_ENVIRONMENT=production.
DEFAULT_SIGNING_SECRET = "dev-only-events-signing-secret-change-me"  # noqa: S105
DEFAULT_ORGANISER_KEYS = {
    organiser: f"dev-key-{organiser}"
    for organiser in ("second-souffle", "60000-rebonds", "sos-entrepreneur", "re-creer", "apesa")
}


def hash_api_key(key: str) -> str:
    """How an organiser's API key is stored: `sha256:<hex>` (keys are long random strings)."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


_DEFAULT_KEY_HASHES = {hash_api_key(key) for key in DEFAULT_ORGANISER_KEYS.values()}


class EventsSettings(ServiceSettings, EdgeSettings):
    """The events service's own settings; the public edge's (body and rate limits, trusted
    proxies, HSTS, internal port) come from `EdgeSettings`, as `EVENTS_*` too."""

    model_config = SettingsConfigDict(env_prefix="EVENTS_", extra="ignore")

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("EVENTS_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    group_id: str = "rebond-events"
    host: str = "127.0.0.1"
    port: int = 8003
    log_level: str = "INFO"
    #: Export the spans with OpenTelemetry (OTLP over HTTP); the `traceparent` header is
    #: propagated and the trace id logged either way.
    otel_enabled: bool = False
    otel_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    #: SQLAlchemy URL: SQLite by default (under `.run/`, created), `postgresql+psycopg://…` too.
    database_url: str = "sqlite:///.run/events.db"
    #: Apply the Alembic migrations when the service starts.
    migrate_on_start: bool = True
    #: Organiser id -> hashed API key (`sha256:<hex>`), as JSON in EVENTS_ORGANISER_KEYS.
    organiser_keys: dict[str, str] = Field(
        default_factory=lambda: {o: hash_api_key(k) for o, k in DEFAULT_ORGANISER_KEYS.items()}
    )
    #: A JSON file of the same shape; its entries replace those of `organiser_keys`.
    organiser_keys_file: Path | None = None
    #: Signs the cancellation links (HMAC-SHA256).
    signing_secret: SecretStr = SecretStr(DEFAULT_SIGNING_SECRET)
    #: A file holding the signing secret (a mounted secret); it wins over EVENTS_SIGNING_SECRET.
    signing_secret_file: Path | None = None
    #: Where people reach this service: used in links (cancellation, .ics, event pages).
    public_base_url: str = "http://127.0.0.1:8003"
    #: How often unsent events of the outbox are retried.
    outbox_interval_s: float = Field(default=2.0, gt=0)
    #: Largest accepted request body (an organiser's conference, its description included).
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    #: Registrations lose name and e-mail this long after their conference ended; invitations
    #: and published outbox rows are deleted after it (`python -m rebond_events anonymise`).
    retention_days: int = Field(default=30, ge=1)

    @field_validator("organiser_keys")
    @classmethod
    def _hashed(cls, keys: dict[str, str]) -> dict[str, str]:
        for organiser, hashed in keys.items():
            if not hashed.startswith("sha256:") or len(hashed) != 7 + 64:
                raise ValueError(f"the key of {organiser} must be stored as sha256:<64 hex>")
        return keys

    @model_validator(mode="after")
    def _load_file_and_refuse_defaults(self) -> Self:
        if self.signing_secret_file is not None:
            self.signing_secret = SecretStr(self.signing_secret_file.read_text().strip())
        if self.organiser_keys_file is not None:
            loaded = json.loads(self.organiser_keys_file.read_text())
            self.organiser_keys = self._hashed({**self.organiser_keys, **loaded})
        if self.environment == "production":
            if self.signing_secret.get_secret_value() == DEFAULT_SIGNING_SECRET:
                raise ValueError("EVENTS_SIGNING_SECRET must be set in production")
            if len(self.signing_secret.get_secret_value()) < 32:
                raise ValueError("EVENTS_SIGNING_SECRET must be at least 32 characters")
            if not self.organiser_keys:
                raise ValueError("no organiser API key configured (EVENTS_ORGANISER_KEYS)")
            if set(self.organiser_keys.values()) & _DEFAULT_KEY_HASHES:
                raise ValueError("development organiser keys are refused in production")
        return self
