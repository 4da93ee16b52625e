"""Events settings, read from `EVENTS_*` environment variables."""

import hashlib
from typing import ClassVar, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from rebond_http.settings import EdgeSettings
from rebond_kafka.consume import IDLE_POLL_MS
from rebond_service.settings import DevelopmentValue, KafkaServiceSettings

#: Development-only secrets: refused when EVENTS_ENVIRONMENT=production.
DEFAULT_SIGNING_SECRET = "dev-only-events-signing-secret-change-me"  # noqa: S105
DEFAULT_ORGANISER_KEYS = {
    organiser: f"dev-key-{organiser}"
    for organiser in ("second-souffle", "60000-rebonds", "sos-entrepreneur", "re-creer", "apesa")
}


def hash_api_key(key: str) -> str:
    """How an organiser's API key is stored: `sha256:<hex>` (keys are long random strings)."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


_DEFAULT_KEY_HASHES = {o: hash_api_key(k) for o, k in DEFAULT_ORGANISER_KEYS.items()}


class EventsSettings(KafkaServiceSettings, EdgeSettings):
    """The events service's own settings; environment, host, port and internal port, logs,
    OpenTelemetry, Kafka and secrets from files (`EVENTS_SIGNING_SECRET_FILE`,
    `EVENTS_ORGANISER_KEYS_FILE`) come from the base (`rebond_service.settings`), the public
    edge's (body and rate limits, trusted proxies, HSTS) from `EdgeSettings`, as `EVENTS_*` too."""

    model_config = SettingsConfigDict(env_prefix="EVENTS_", extra="ignore")
    development_defaults: ClassVar[dict[str, DevelopmentValue]] = {
        "signing_secret": DEFAULT_SIGNING_SECRET,
        "organiser_keys": _DEFAULT_KEY_HASHES,
    }

    group_id: str = "rebond-events"
    port: int = 8003
    #: SQLAlchemy URL: SQLite by default (under `.run/`, created), `postgresql+psycopg://…` too.
    database_url: str = "sqlite:///.run/events.db"
    #: Apply the Alembic migrations when the service starts.
    migrate_on_start: bool = True
    #: Organiser id -> hashed API key (`sha256:<hex>`), as JSON in EVENTS_ORGANISER_KEYS (or
    #: in the file EVENTS_ORGANISER_KEYS_FILE names, which wins).
    organiser_keys: dict[str, str] = Field(default_factory=lambda: dict(_DEFAULT_KEY_HASHES))
    #: Signs the cancellation links (HMAC-SHA256); or EVENTS_SIGNING_SECRET_FILE.
    signing_secret: SecretStr = SecretStr(DEFAULT_SIGNING_SECRET)
    #: Where people reach this service: used in links (cancellation, .ics, event pages).
    public_base_url: str = "http://127.0.0.1:8003"
    #: How long an unsent event of the outbox waits before the periodic task publishes it.
    outbox_interval_s: float = Field(default=2.0, gt=0)
    #: Invitees and peer requests are read in batches of at most this many records: one store
    #: transaction, one outbox publication and one offset commit per batch.
    batch_max_records: int = Field(default=500, ge=1)
    #: How long an empty poll waits for a first record before polling again: a record fetched
    #: meanwhile is handed over at once (a batch never waits to fill), so this only sets how
    #: often an idle service wakes up (`rebond_kafka.consume.IDLE_POLL_MS`).
    batch_timeout_ms: int = Field(default=IDLE_POLL_MS, ge=1)
    #: How often the conferences starting within two days are looked at, to remind their
    #: confirmed registrants (each once).
    reminder_interval_s: float = Field(default=300.0, gt=0)
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
    def _some_organiser_in_production(self) -> Self:
        if self.environment == "production" and not self.organiser_keys:
            raise ValueError("no organiser API key configured (EVENTS_ORGANISER_KEYS)")
        return self
