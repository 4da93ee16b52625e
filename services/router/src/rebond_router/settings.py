"""Router settings, read from `ROUTER_*` environment variables."""

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from rebond_contracts.preview import DEVELOPMENT_PREVIEW_TOKEN
from rebond_kafka.consume import IDLE_POLL_MS
from rebond_router.directory import DEFAULT_PATH
from rebond_service.settings import DevelopmentValue, KafkaServiceSettings


class RouterSettings(KafkaServiceSettings):
    """The router's own settings; environment, host, port, logs, OpenTelemetry, Kafka and
    secrets from files come from the base (`rebond_service.settings`)."""

    model_config = SettingsConfigDict(env_prefix="ROUTER_", extra="ignore")
    development_defaults: ClassVar[dict[str, DevelopmentValue]] = {
        "preview_token": DEVELOPMENT_PREVIEW_TOKEN
    }

    group_id: str = "rebond-router"
    port: int = 8001
    #: The association directory (the rule set); checked at start-up.
    directory_path: Path = DEFAULT_PATH
    #: SQLAlchemy async URL: SQLite file by default, or postgresql+psycopg://user:pw@host/db.
    database_url: str = "sqlite+aiosqlite:///.run/router.sqlite3"
    #: Apply the store's Alembic migrations at start (else `python -m rebond_router migrate`
    #: must have run: a Kubernetes Job or init container).
    migrate_on_start: bool = True
    #: How long after an acceptance the person is asked whether they were contacted (unless the
    #: association reported it reached them).
    follow_up_after_days: float = Field(default=30.0, gt=0)
    #: How often deadlines (reminders, expiries, follow-ups) are checked.
    deadline_check_interval_s: float = Field(default=30.0, gt=0)
    #: Outputs left unpublished this long (a crashed instance) are published by the next check.
    outbox_stale_after_s: float = Field(default=30.0, ge=0)
    #: Questionnaires are read in batches of at most this many records: one transaction and one
    #: offset commit per batch, all outputs in flight together.
    batch_max_records: int = Field(default=500, ge=1)
    #: How long an empty poll waits for a first record before polling again: a record fetched
    #: meanwhile is handed over at once (a batch never waits to fill), so this only sets how
    #: often an idle service wakes up (`rebond_kafka.consume.IDLE_POLL_MS`).
    batch_timeout_ms: int = Field(default=IDLE_POLL_MS, ge=1)
    #: Transient failures (database, Kafka) are tried this many times, then dead-lettered,
    #: after a delay from `retry_backoff_s` doubling up to `retry_backoff_max_s` (each plus up
    #: to 20 % of `retry_backoff_s`, at random; not 0: that would retry in a hot loop).
    retry_attempts: int = Field(default=5, ge=1)
    retry_backoff_s: float = Field(default=0.2, gt=0)
    retry_backoff_max_s: float = Field(default=5.0, gt=0)
    #: Referrals unchanged this long lose their contact copy (`python -m rebond_router anonymise`).
    retention_days: int = Field(default=30, ge=1)
    #: The bearer token the console presents to `POST /internal/preview` (the same value as
    #: its `COORDINATION_ROUTER_PREVIEW_TOKEN`); ROUTER_PREVIEW_TOKEN_FILE may name a file.
    #: Production refuses the development value and anything under 32 characters.
    preview_token: SecretStr = SecretStr(DEVELOPMENT_PREVIEW_TOKEN)
    #: How many weeks of decisions the preview replays.
    preview_weeks: int = Field(default=4, ge=1, le=104)
