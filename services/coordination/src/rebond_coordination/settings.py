"""Coordination settings, read from `COORDINATION_*` environment variables.

Any setting may come from a file instead (a mounted Kubernetes or Docker secret): the file that
`COORDINATION_<NAME>_FILE` names wins over `COORDINATION_<NAME>` (`rebond_service.settings`). In
production (`COORDINATION_ENVIRONMENT=production`) the development secrets are refused, the
public URL must be https, so session cookies are always `Secure` there, and invitations are sent
over an encrypted SMTP session.
"""

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from rebond_contracts.associations import AssociationId
from rebond_contracts.preview import DEVELOPMENT_PREVIEW_TOKEN
from rebond_http.settings import ProxySettings
from rebond_service.settings import DevelopmentValue, KafkaServiceSettings
from rebond_service.smtp import SmtpSettings

#: Development-only secrets (the router's preview token, the same on both sides, and the events
#: service's organiser keys): refused in production.
DEFAULT_PREVIEW_TOKEN = DEVELOPMENT_PREVIEW_TOKEN
DEFAULT_ORGANISER_KEYS = {
    association.value: f"dev-key-{association.value}" for association in AssociationId
}


class CoordinationSettings(KafkaServiceSettings, SmtpSettings, ProxySettings):
    """The console's own settings; environment, host, port, logs, OpenTelemetry, secrets from
    files and the Kafka connection (`COORDINATION_KAFKA_*`, SASL_SSL in production) come from
    the base (`rebond_service.settings`), the SMTP connection where invitations are sent
    (`COORDINATION_SMTP_*`, encrypted in production) from `SmtpSettings`, and the proxies whose
    `X-Forwarded-For` the sign-in limit believes (`COORDINATION_TRUSTED_PROXIES`: the
    authenticating proxy's pods) from `ProxySettings`."""

    model_config = SettingsConfigDict(env_prefix="COORDINATION_", extra="ignore")
    development_defaults: ClassVar[dict[str, DevelopmentValue]] = {
        "router_preview_token": DEFAULT_PREVIEW_TOKEN,
        "events_organiser_keys": DEFAULT_ORGANISER_KEYS,
    }

    port: int = 8004
    #: Where staff reach the console: invitation links start with it, and an https URL makes
    #: the session cookie `Secure` (and `__Host-` prefixed).
    public_url: str = "http://127.0.0.1:8004"
    #: SQLAlchemy URL: SQLite by default (under `.run/`), `postgresql+psycopg://…` too; it
    #: carries the database password, so COORDINATION_DATABASE_URL_FILE may name a file instead.
    database_url: SecretStr = SecretStr("sqlite:///.run/coordination.sqlite3")
    #: Apply the Alembic migrations when the service starts.
    migrate_on_start: bool = True

    #: A session ends after this long without a request, and this long after sign-in anyway.
    session_idle_minutes: int = Field(default=30, ge=1)
    session_absolute_hours: int = Field(default=12, ge=1)
    #: Failed sign-ins in a row that lock an account, and for how long.
    lockout_threshold: int = Field(default=5, ge=1)
    lockout_minutes: int = Field(default=15, ge=1)
    #: Sign-in attempts per client address (token bucket: per minute, burst); behind the
    #: authenticating proxy, the address it forwards (`trusted_proxies`), else every person
    #: would share the proxy's one bucket.
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

    #: The consumer group of the projections (`rebond-coordination` or `rebond-coordination.<x>`:
    #: the ACLs allow no other).
    group_id: str = "rebond-coordination"

    #: The events service's organiser API (conferences of the organisers' associations).
    events_url: str = "http://127.0.0.1:8003"
    events_timeout_s: float = Field(default=10.0, gt=0)

    #: The sender of invitations.
    mail_from: str = "Rebond — coordination <coordination@rebond.example>"

    #: The router's HTTP address (`http://rebond-router:8001`), where the policy preview asks
    #: `POST /internal/preview`; unset, the preview page says the router is not plugged in.
    router_url: str | None = None
    #: How long a preview may take (it replays weeks of decisions twice).
    router_timeout_s: float = Field(default=30.0, gt=0)
    #: Bearer token for the router's preview: the router's ROUTER_PREVIEW_TOKEN.
    router_preview_token: SecretStr = SecretStr(DEFAULT_PREVIEW_TOKEN)
    #: Association -> the events service's organiser API key, as JSON (used once plugged in).
    events_organiser_keys: dict[str, SecretStr] = Field(
        default_factory=lambda: {k: SecretStr(v) for k, v in DEFAULT_ORGANISER_KEYS.items()}
    )

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def database(self) -> str:
        return self.database_url.get_secret_value()

    def production_problems(self) -> list[str]:
        https = (
            []
            if self.secure_cookies
            else ["COORDINATION_PUBLIC_URL must be https (Secure cookies)"]
        )
        return [*https, *super().production_problems()]
