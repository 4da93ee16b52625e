"""Notifier settings, read from `NOTIFIER_*` environment variables."""

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from rebond_kafka.consume import IDLE_POLL_MS
from rebond_notifier.text import has_controls
from rebond_service.privacy import PrivacyContactSettings
from rebond_service.settings import DevelopmentValue, KafkaServiceSettings
from rebond_service.smtp import SmtpSettings

#: Refused when NOTIFIER_ENVIRONMENT=production.
DEFAULT_LINK_SECRET = "dev-only-answer-link-secret-change-me"  # noqa: S105


class NotifierSettings(KafkaServiceSettings, SmtpSettings, PrivacyContactSettings):
    """The notifier's own settings; environment, host, port and internal port, logs,
    OpenTelemetry, Kafka and secrets from files (`NOTIFIER_LINK_SECRET_FILE`) come from the
    base (`rebond_service.settings`), the SMTP connection (`NOTIFIER_SMTP_*`, encrypted in
    production: e-mails carry personal data) from `SmtpSettings`, the data-protection contact
    (`NOTIFIER_PRIVACY_CONTACT`) from `PrivacyContactSettings`."""

    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore")
    development_defaults: ClassVar[dict[str, DevelopmentValue]] = {
        "link_secret": DEFAULT_LINK_SECRET
    }

    group_id: str = "rebond-notifier"
    port: int = 8002
    #: `Strict-Transport-Security: max-age=…` on every page when above 0: set it when the answer
    #: pages are reached over HTTPS (NOTIFIER_PUBLIC_BASE_URL https://…), e.g. 31536000.
    hsts_max_age_s: int = Field(default=0, ge=0)

    #: The delivery log (SQLAlchemy async URL); SQLite by default, PostgreSQL supported.
    database_url: str = "sqlite+aiosqlite:///.run/notifier.sqlite3"
    #: Apply the delivery log's Alembic migrations when the service starts (else run
    #: `python -m rebond_notifier migrate` first, e.g. as a Kubernetes Job or init container).
    migrate_on_start: bool = True
    #: The associations' contact e-mail and webhooks; the packaged file when unset.
    associations_file: Path | None = None

    #: The name the notifier gives in SMTP's EHLO; empty: this host's name, looked up once.
    smtp_local_hostname: str | None = None
    mail_from: str = "Rebond <ne-pas-repondre@rebond.example>"

    @field_validator("mail_from")
    @classmethod
    def _sender_on_one_line(cls, value: str) -> str:
        if has_controls(value):
            raise ValueError("NOTIFIER_MAIL_FROM must be one line, without control characters")
        return value

    #: Where the answer links of the association e-mails point (this service's public URL).
    public_base_url: str = "http://127.0.0.1:8002"
    #: HMAC key of the answer links (or NOTIFIER_LINK_SECRET_FILE: a file holding it).
    link_secret: SecretStr = SecretStr(DEFAULT_LINK_SECRET)
    #: The portal's public address (intake's): the person's e-mails link to
    #: `<it>/suivi/<reference>`, where they follow their request.
    portal_base_url: str = "http://127.0.0.1:8000"
    #: Working days within which the grouping's team calls back a person whom no association
    #: holds (told in their e-mail when their request reaches the human queue).
    callback_working_days: int = Field(default=2, ge=1)
    #: How long the person's follow-up links ("Avez-vous été contacté·e ?") last.
    follow_up_link_days: int = Field(default=30, ge=1)
    #: How long the person's address is kept for their e-mails (the follow-up comes 30 days
    #: after an acceptance); `python -m rebond_notifier anonymise` deletes it after that.
    person_contact_days: int = Field(default=60, ge=1)
    #: Answer links last until the association's deadline (`respond_by`); only a referral
    #: without one gets links valid this many days.
    link_valid_days: int = Field(default=8, ge=1)

    #: Decisions are read in batches of at most this many records: their referrals all in
    #: flight together, their deliveries recorded in one transaction, one offset commit.
    batch_max_records: int = Field(default=500, ge=1)
    #: How long an empty poll waits for a first record before polling again: a record fetched
    #: meanwhile is handed over at once (a batch never waits to fill), so this only sets how
    #: often an idle service wakes up (`rebond_kafka.consume.IDLE_POLL_MS`).
    batch_timeout_ms: int = Field(default=IDLE_POLL_MS, ge=1)
    webhook_timeout_s: float = 10.0
    #: Attempts per delivery (first try included) before it is dead-lettered.
    max_attempts: int = Field(default=6, ge=1)
    retry_base_s: float = 2.0
    retry_cap_s: float = 300.0
    #: How long a worker owns a claimed delivery before another may take it over.
    lease_s: float = 120.0
    #: The longest the dispatcher sleeps when nothing it knows of falls due sooner: it wakes on
    #: the work this process records and at the next due time it read, so this only bounds
    #: how late it finds work another replica recorded and then could not send.
    poll_interval_s: float = Field(default=30.0, gt=0)
    #: Outbox messages left this long (a crashed instance's, or one whose publication failed)
    #: are published by any instance's next round; each instance publishes its own at once.
    outbox_stale_after_s: float = Field(default=10.0, gt=0)
    #: Delivery rows older than this lose their message and error text
    #: (`python -m rebond_notifier anonymise`).
    retention_days: int = Field(default=30, ge=1)

    def production_problems(self) -> list[str]:
        """Besides the base's: the links in people's e-mails must reach the public pages over
        HTTPS, not the development addresses (a person's `/suivi` link, the answer links)."""
        links = [
            f"NOTIFIER_{name} must be the public https:// address (not {value})"
            for name, value in (
                ("PORTAL_BASE_URL", self.portal_base_url),
                ("PUBLIC_BASE_URL", self.public_base_url),
            )
            if not value.startswith("https://")
        ]
        return [*links, *super().production_problems()]
