"""Intake's settings, read from `INTAKE_*` environment variables."""

from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import Field, HttpUrl, SecretStr, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from rebond_http.settings import EdgeSettings
from rebond_service.privacy import PrivacyContactSettings
from rebond_service.settings import DevelopmentValue, KafkaServiceSettings

#: Refused when INTAKE_ENVIRONMENT=production.
DEFAULT_ERASURE_KEY = "dev-only-erasure-key-change-me"


class IntakeSettings(KafkaServiceSettings, EdgeSettings, PrivacyContactSettings):
    """Intake's own settings; environment, host, port and internal port, logs, OpenTelemetry,
    Kafka and secrets from files (`INTAKE_ERASURE_KEY_FILE`) come from the base
    (`rebond_service.settings`), the public edge's (body and rate limits, trusted proxies, HSTS)
    from `EdgeSettings`, the data-protection contact from `PrivacyContactSettings`, as `INTAKE_*`
    too."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")
    development_defaults: ClassVar[dict[str, DevelopmentValue]] = {
        "erasure_key": DEFAULT_ERASURE_KEY
    }

    #: HMAC key from which each person's erasure secret is derived (`rebond_intake.erasure`):
    #: every replica must have the same one, and changing it voids the secrets already given.
    erasure_key: SecretStr = SecretStr(DEFAULT_ERASURE_KEY)

    port: int = 8000
    #: How long a submission may wait for Kafka's acknowledgement before the person gets a 503.
    publish_timeout_s: float = Field(default=5.0, gt=0)
    #: What `Retry-After` tells a person when Kafka is unreachable.
    retry_after_s: int = Field(default=10, ge=1)
    #: Idempotency keys and body hashes are dropped this long after the submission
    #: (`python -m rebond_intake anonymise`); the store holds no personal data besides.
    retention_days: int = Field(default=30, ge=1)

    #: Consumer group of the status consumer (outcomes, referral statuses, deliveries).
    group_id: str = "rebond-intake"
    #: Where the default SQLite status store lives.
    data_dir: Path = Path(".run/intake")
    #: SQLAlchemy URL of the status store; empty means `sqlite+aiosqlite:///<data_dir>/intake.db`.
    database_url: str = ""
    #: Apply the store's Alembic migrations when the service starts (else run
    #: `python -m rebond_intake migrate` first, e.g. as a Kubernetes Job or init container).
    migrate_on_start: bool = True
    #: Browser origins allowed to call the API (comma-separated), e.g. the portal's own site.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: How often, in seconds, the status page refreshes itself without JavaScript while no
    #: decision is known, and the `refresh_after_s` the status API gives its callers.
    status_refresh_s: int = Field(default=5, ge=1)
    #: Working days within which the grouping's team calls back a person whose request reaches
    #: it: the status page says it as the notifier's e-mail does (keep it equal to
    #: `NOTIFIER_CALLBACK_WORKING_DAYS`).
    callback_working_days: int = Field(default=2, ge=1)
    #: The events service's public page of success stories, linked from the confirmation and
    #: status pages ("D'autres sont passés par là", issue 24).
    stories_url: HttpUrl = HttpUrl("http://127.0.0.1:8003/temoignages")

    @model_validator(mode="before")
    @classmethod
    def _split_origins(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("cors_origins"), str):
            raw = data["cors_origins"]
            data["cors_origins"] = [o.strip() for o in raw.split(",") if o.strip()]
        return data

    @model_validator(mode="after")
    def _safe_in_production(self) -> "IntakeSettings":
        if self.environment == "production" and "*" in self.cors_origins:
            raise ValueError("INTAKE_CORS_ORIGINS may not be '*' in production")
        return self

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'intake.db'}"
