"""Coordination settings, read from `COORDINATION_*` environment variables.

Secrets may come from files instead (a mounted Kubernetes or Docker secret): every secret field
`x` has an `x_file` twin whose content wins. In production (`COORDINATION_ENVIRONMENT=production`)
the development defaults are refused and the public URL must be https, so session cookies are
always `Secure` there.
"""

import json
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rebond_contracts.associations import AssociationId

#: Development-only secrets of the adapters the lead plugs in next (the router's preview
#: endpoint, the events service's organiser keys): refused in production.
DEFAULT_PREVIEW_TOKEN = "dev-only-router-preview-token-change-me"  # noqa: S105
DEFAULT_ORGANISER_KEYS = {
    association.value: f"dev-key-{association.value}" for association in AssociationId
}


class CoordinationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COORDINATION_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8004
    log_level: str = "INFO"
    otel_enabled: bool = False
    otel_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    #: Where staff reach the console: invitation links start with it, and an https URL makes
    #: the session cookie `Secure` (and `__Host-` prefixed).
    public_url: str = "http://127.0.0.1:8004"
    #: SQLAlchemy URL: SQLite by default (under `.run/`), `postgresql+psycopg://…` too.
    database_url: SecretStr = SecretStr("sqlite:///.run/coordination.sqlite3")
    #: A file holding the URL (it carries the database password); it wins when set.
    database_url_file: Path | None = None
    #: Apply the Alembic migrations when the service starts.
    migrate_on_start: bool = True

    #: A session ends after this long without a request, and this long after sign-in anyway.
    session_idle_minutes: int = Field(default=30, ge=1)
    session_absolute_hours: int = Field(default=12, ge=1)
    #: Failed sign-ins in a row that lock an account, and for how long.
    lockout_threshold: int = Field(default=5, ge=1)
    lockout_minutes: int = Field(default=15, ge=1)
    #: Sign-in attempts per client address (token bucket: per minute, burst).
    sign_in_per_minute: float = Field(default=10, ge=0)
    sign_in_burst: int = Field(default=5, ge=1)
    #: How long an invitation's one-time link stays valid.
    invitation_valid_hours: int = Field(default=72, ge=1)
    #: A claim on a queue case lapses after this long, so a case is never stuck with someone
    #: who went home.
    claim_minutes: int = Field(default=30, ge=1)
    #: How often messages still in the outbox are sent again, and the queue metrics refreshed.
    relay_interval_s: float = Field(default=5.0, gt=0)
    metrics_interval_s: float = Field(default=15.0, gt=0)

    #: Bearer token for the router's `POST /internal/preview` (used once it is plugged in).
    router_preview_token: SecretStr = SecretStr(DEFAULT_PREVIEW_TOKEN)
    router_preview_token_file: Path | None = None
    #: Association -> the events service's organiser API key, as JSON (used once plugged in).
    events_organiser_keys: dict[str, SecretStr] = Field(
        default_factory=lambda: {k: SecretStr(v) for k, v in DEFAULT_ORGANISER_KEYS.items()}
    )
    events_organiser_keys_file: Path | None = None

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def database(self) -> str:
        return self.database_url.get_secret_value()

    @model_validator(mode="after")
    def _files_then_production_rules(self) -> Self:
        if self.database_url_file is not None:
            self.database_url = SecretStr(self.database_url_file.read_text().strip())
        if self.router_preview_token_file is not None:
            self.router_preview_token = SecretStr(
                self.router_preview_token_file.read_text().strip()
            )
        if self.events_organiser_keys_file is not None:
            loaded = json.loads(self.events_organiser_keys_file.read_text())
            self.events_organiser_keys = {k: SecretStr(str(v)) for k, v in loaded.items()}
        if self.environment != "production":
            return self
        if not self.secure_cookies:
            raise ValueError("COORDINATION_PUBLIC_URL must be https in production (Secure cookies)")
        token = self.router_preview_token.get_secret_value()
        if token == DEFAULT_PREVIEW_TOKEN or len(token) < 32:
            raise ValueError(
                "COORDINATION_ROUTER_PREVIEW_TOKEN must be set (32 characters or more) in production"
            )
        defaults = set(DEFAULT_ORGANISER_KEYS.values())
        if any(key.get_secret_value() in defaults for key in self.events_organiser_keys.values()):
            raise ValueError(
                "development organiser keys are refused in production "
                "(COORDINATION_EVENTS_ORGANISER_KEYS)"
            )
        return self
