"""The associations' delivery configuration: contact e-mail, optional webhook and its secret.

Secrets never live in the YAML file: `webhook_secret` names where to read each one from,
`env:VARIABLE` or `file:/path`.

An association's antennas are not listed here: the router's directory describes them (name,
departments, e-mail, webhook) and each referral names its antenna (`ReferralV1.antenna`);
`AssociationChannels.reaching` turns the association's channels into the antenna's, signed
with the association's own secret, so an address is written in one place only.
"""

import os
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import AntennaV1
from rebond_notifier.signing import (
    WEBHOOK_KEY_MIN_BYTES,
    WEBHOOK_SECRET_PREFIX,
    WebhookSecretError,
    webhook_key,
)

#: Development-only signing secret, refused in production.
DEFAULT_WEBHOOK_SECRET = "dev-only-webhook-secret-change-me"  # noqa: S105


class ConfigError(ValueError):
    """The associations file is missing, malformed, or points to a secret that is not there."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_timeout_s: float | None = Field(default=None, gt=0)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    associations: dict[AssociationId, _Entry]


@dataclass(frozen=True)
class AssociationChannels:
    association_id: AssociationId
    email: str
    webhook_url: str | None = None
    webhook_secret: bytes | None = None
    webhook_timeout_s: float | None = None
    #: Whether webhooks must be `https://` (production): an antenna's URL, which this file
    #: does not list, is checked when its webhook is sent (`webhook_refusal`).
    https_only: bool = False

    def reaching(self, antenna: AntennaV1 | None) -> "AssociationChannels":
        """Where a referral for `antenna` goes: the antenna's e-mail, and its webhook when it
        has one, signed with the association's secret, else the association's webhook (its
        CRM still gets every referral no antenna's CRM takes); without an antenna, the
        association's own channels."""
        if antenna is None:
            return self
        return replace(
            self, email=antenna.email, webhook_url=antenna.webhook_url or self.webhook_url
        )

    def webhook_refusal(self, url: str) -> str | None:
        """Why a webhook to `url` cannot be sent with these channels, or None."""
        if self.webhook_secret is None:
            return "no webhook secret for this association (webhook_secret)"
        if self.https_only and urlsplit(url).scheme != "https":
            return "webhook_url must be https:// in production"
        return None


def default_path() -> Path:
    return Path(str(files("rebond_notifier").joinpath("associations.yaml")))


def _resolve_secret(reference: str | None, *, production: bool) -> bytes:
    if reference is None:
        if production:
            raise ConfigError(
                "a webhook needs webhook_secret (env:VAR or file:/path) in production"
            )
        return DEFAULT_WEBHOOK_SECRET.encode()
    kind, _, where = reference.partition(":")
    if kind == "env":
        value = os.environ.get(where)
        if value is None:
            raise ConfigError(f"webhook secret variable {where} is not set")
    elif kind == "file":
        try:
            value = Path(where).read_text().strip()
        except OSError as error:
            raise ConfigError(f"webhook secret file {where}: {error.strerror}") from error
    else:
        raise ConfigError("webhook_secret must be env:VARIABLE or file:/path")
    try:
        key = webhook_key(value)
    except WebhookSecretError as error:
        raise ConfigError(f"webhook secret from {reference}: {error}") from error
    standard = value.startswith(WEBHOOK_SECRET_PREFIX)
    if production and (
        value == DEFAULT_WEBHOOK_SECRET
        or (standard and len(key) < WEBHOOK_KEY_MIN_BYTES)
        or (not standard and len(value) < 32)
    ):
        raise ConfigError(
            f"webhook secret from {reference} is too weak for production (whsec_ and "
            f"{WEBHOOK_KEY_MIN_BYTES} random bytes in base64 or more)"
        )
    return key


def load_associations(
    path: Path | None = None, *, production: bool = False
) -> dict[AssociationId, AssociationChannels]:
    """Read and check the associations file; every association must be present."""
    path = path or default_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        parsed = _File.model_validate(raw)
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror}") from error
    except (yaml.YAMLError, ValidationError) as error:
        raise ConfigError(f"{path}: {error}") from error
    missing = set(AssociationId) - set(parsed.associations)
    if missing:
        raise ConfigError(f"{path}: no entry for {', '.join(sorted(missing))}")
    if production and (
        plain := sorted(
            a.value
            for a, entry in parsed.associations.items()
            if entry.webhook_url and urlsplit(entry.webhook_url).scheme != "https"
        )
    ):
        # A webhook carries the whole referral (contact, message, distress): never in clear.
        raise ConfigError(
            f"{path}: webhook_url must be https:// in production ({', '.join(plain)})"
        )
    return {
        association: AssociationChannels(
            association_id=association,
            email=entry.email,
            webhook_url=entry.webhook_url,
            # Also without a webhook of its own: its antennas' webhooks are signed with it.
            webhook_secret=(
                _resolve_secret(entry.webhook_secret, production=production)
                if entry.webhook_url or entry.webhook_secret or not production
                else None
            ),
            webhook_timeout_s=entry.webhook_timeout_s,
            https_only=production,
        )
        for association, entry in parsed.associations.items()
    }
