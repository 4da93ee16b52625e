"""The SMTP connection of a service that sends e-mail (the notifier's e-mails to associations
and people, the console's invitations), under each service's prefix (`NOTIFIER_SMTP_HOST`,
`COORDINATION_SMTP_HOST`): a service's settings class derives from `SmtpSettings`. The sender
address (`mail_from`) stays each service's own: its default, and what it checks, differ.

In production the session must be encrypted, by STARTTLS made mandatory or by TLS from the
first byte: an e-mail carries a person's contact and message, or an invitation's one-time link,
and must not cross the network in clear."""

from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator

from rebond_service.settings import ServiceSettings


class SmtpSettings(ServiceSettings):
    """Mixed in after the service's base (`class XSettings(KafkaServiceSettings,
    SmtpSettings)`): its production check joins the others (`production_problems` is
    cooperative), so production names every problem at once."""

    #: The SMTP server (`make run`'s mail sink by default).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    #: STARTTLS required on the submission port (587); without it the session is upgraded
    #: only when the server offers it.
    smtp_starttls: bool = False
    #: Implicit TLS from the first byte (SMTPS, port 465), instead of STARTTLS.
    smtp_tls: bool = False
    #: The CA certificate(s) that signed the SMTP server's certificate (PEM); the system's when
    #: unset. The certificate and host name are checked either way.
    smtp_ca_file: Path | None = None
    smtp_timeout_s: float = Field(default=10.0, gt=0)

    def production_problems(self) -> list[str]:
        mine = (
            []
            if self.smtp_starttls or self.smtp_tls
            else [
                f"{self.prefix}SMTP_STARTTLS=true (port 587) or {self.prefix}SMTP_TLS=true "
                "(port 465) is required: e-mails must not cross the network in clear"
            ]
        )
        return [*mine, *super().production_problems()]

    @model_validator(mode="after")
    def _one_way_to_encrypt(self) -> Self:
        """STARTTLS upgrades a plain session, implicit TLS starts encrypted: one or the other
        (the SMTP client refuses both at once, at every sending)."""
        if self.smtp_starttls and self.smtp_tls:
            raise ValueError(f"set {self.prefix}SMTP_STARTTLS or {self.prefix}SMTP_TLS, not both")
        return self
