"""Router settings, read from `ROUTER_*` environment variables."""

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rebond_router.directory import DEFAULT_PATH


class RouterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTER_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("ROUTER_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    #: SASL on a secured cluster (`make run`'s broker): the service's own principal.
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    #: A file holding the password (a mounted secret); it wins over ROUTER_KAFKA_SASL_PASSWORD.
    kafka_sasl_password_file: Path | None = None

    @model_validator(mode="after")
    def _kafka_password_from_file(self) -> "RouterSettings":
        if self.kafka_sasl_password_file is not None:
            password = self.kafka_sasl_password_file.read_text().strip()
            self.kafka_sasl_password = SecretStr(password)
        return self

    group_id: str = "rebond-router"
    host: str = "127.0.0.1"
    port: int = 8001
    log_level: str = "INFO"
    #: Export the spans with OpenTelemetry (OTLP over HTTP); the `traceparent` header is
    #: propagated and the trace id logged either way.
    otel_enabled: bool = False
    otel_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    #: The association directory (the rule set); checked at start-up.
    directory_path: Path = DEFAULT_PATH
    #: SQLAlchemy async URL: SQLite file by default, or postgresql+psycopg://user:pw@host/db.
    database_url: str = "sqlite+aiosqlite:///.run/router.sqlite3"
    #: How often deadlines (reminders, expiries) are checked.
    deadline_check_interval_s: float = Field(default=30.0, gt=0)
    #: Outputs left unpublished this long (a crashed instance) are published by the next check.
    outbox_stale_after_s: float = Field(default=30.0, ge=0)
    #: Questionnaires are read in batches of at most this many records: one transaction and one
    #: offset commit per batch, all outputs in flight together.
    batch_max_records: int = Field(default=500, ge=1)
    #: How long to wait for a first record when none is waiting (a batch never waits to fill).
    batch_timeout_ms: int = Field(default=100, ge=1)
    #: Transient failures (database, Kafka) are retried this many times, then dead-lettered,
    #: after a delay from `retry_backoff_s` doubling up to `retry_backoff_max_s` (±20 %; not 0:
    #: that would retry in a hot loop).
    retry_attempts: int = Field(default=5, ge=1)
    retry_backoff_s: float = Field(default=0.2, gt=0)
    retry_backoff_max_s: float = Field(default=5.0, gt=0)
    #: Referrals unchanged this long lose their contact copy (`python -m rebond_router anonymise`).
    retention_days: int = Field(default=30, ge=1)
