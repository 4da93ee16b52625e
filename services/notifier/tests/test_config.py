"""Settings, the associations file and its secrets; retry classification (pure)."""

import base64
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import ValidationError

from rebond_contracts.associations import AssociationId
from rebond_kafka.testing import PRODUCTION_KAFKA
from rebond_notifier.channels import Failed, Retry, classify_status, retry_delay
from rebond_notifier.config import DEFAULT_WEBHOOK_SECRET, ConfigError, load_associations
from rebond_notifier.settings import NotifierSettings
from rebond_service.privacy import DEVELOPMENT_PRIVACY_CONTACT

STRONG = "x" * 40


def _production(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """NOTIFIER_ENVIRONMENT=production with Kafka over SASL_SSL, SMTP over STARTTLS and the
    grouping's privacy contact, as production requires, then `env`."""
    monkeypatch.setenv("NOTIFIER_ENVIRONMENT", "production")
    required = {
        "smtp_starttls": "true", "privacy_contact": "donnees@portail-rebond.fr",
        "portal_base_url": "https://portail.example", "public_base_url": "https://n.example",
    }  # fmt: skip
    for name, value in {**PRODUCTION_KAFKA, **required, **env}.items():
        monkeypatch.setenv(f"NOTIFIER_{name.upper()}", value)


def test_production_refuses_the_default_link_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """NOTIFIER_ENVIRONMENT=production without a real NOTIFIER_LINK_SECRET does not start."""
    _production(monkeypatch)
    monkeypatch.delenv("NOTIFIER_LINK_SECRET", raising=False)
    with pytest.raises(ValidationError, match="NOTIFIER_LINK_SECRET"):
        NotifierSettings()
    monkeypatch.setenv("NOTIFIER_LINK_SECRET", STRONG)
    assert NotifierSettings().link_secret.get_secret_value() == STRONG


def test_link_secret_can_come_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NOTIFIER_LINK_SECRET_FILE is read (for mounted secrets)."""
    secret = tmp_path / "link"
    secret.write_text(STRONG + "\n")
    monkeypatch.setenv("NOTIFIER_LINK_SECRET_FILE", str(secret))
    _production(monkeypatch)
    assert NotifierSettings().link_secret.get_secret_value() == STRONG


@pytest.mark.parametrize(
    ("tls", "starts"),
    [
        ({}, False),
        ({"smtp_starttls": "true"}, True),
        ({"smtp_starttls": "false", "smtp_tls": "true"}, True),
    ],
)
def test_production_sends_e_mail_only_over_tls(
    monkeypatch: pytest.MonkeyPatch, tls: dict[str, str], starts: bool
) -> None:
    """In production SMTP must be encrypted: mandatory STARTTLS or implicit TLS, else the
    notifier stops at start-up naming both settings."""
    _production(monkeypatch, link_secret=STRONG, smtp_starttls="false")
    for name, value in tls.items():
        monkeypatch.setenv(f"NOTIFIER_{name.upper()}", value)
    if starts:
        assert NotifierSettings().environment == "production"
    else:
        with pytest.raises(
            ValidationError, match=r"NOTIFIER_SMTP_STARTTLS=true .* NOTIFIER_SMTP_TLS"
        ):
            NotifierSettings()


def test_starttls_and_implicit_tls_are_not_both_set() -> None:
    """STARTTLS upgrades a plain session, implicit TLS starts encrypted: one or the other."""
    with pytest.raises(ValidationError, match="not both"):
        NotifierSettings(smtp_starttls=True, smtp_tls=True)


def test_production_refuses_a_webhook_in_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An `http://` webhook (it would carry the referral in clear) stops production, naming
    the association; outside production it is allowed (a local receiver)."""
    monkeypatch.setenv("APESA_HOOK_SECRET", STRONG)
    path = _write(
        tmp_path,
        "    webhook_url: http://crm.example/hook\n    webhook_secret: env:APESA_HOOK_SECRET",
    )
    with pytest.raises(ConfigError, match=r"https:// in production \(apesa\)"):
        load_associations(path, production=True)
    assert load_associations(path)[AssociationId.APESA].webhook_url == "http://crm.example/hook"


def test_packaged_file_covers_every_association() -> None:
    """The packaged associations file has a contact address for each association."""
    channels = load_associations()
    assert set(channels) == set(AssociationId)
    assert all("@" in c.email for c in channels.values())


def _write(tmp_path: Path, extra: str) -> Path:
    lines = ["associations:"]
    for association in AssociationId:
        lines.append(f"  {association.value}:\n    email: x@{association.value}.example")
        if association == AssociationId.APESA:
            lines.append(extra)
    path = tmp_path / "associations.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_webhook_secret_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`webhook_secret: env:VAR` takes the secret from that variable."""
    monkeypatch.setenv("APESA_HOOK_SECRET", STRONG)
    path = _write(
        tmp_path,
        "    webhook_url: https://crm.example/hook\n    webhook_secret: env:APESA_HOOK_SECRET",
    )
    channels = load_associations(path, production=True)[AssociationId.APESA]
    assert channels.webhook_secret == STRONG.encode()


def test_a_whsec_secret_is_the_key_it_encodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`whsec_<base64>` (Standard Webhooks) is decoded into the signing key, also in production."""
    monkeypatch.setenv("APESA_HOOK_SECRET", "whsec_" + base64.b64encode(b"k" * 24).decode())
    path = _write(
        tmp_path,
        "    webhook_url: https://crm.example/hook\n    webhook_secret: env:APESA_HOOK_SECRET",
    )
    assert load_associations(path, production=True)[AssociationId.APESA].webhook_secret == b"k" * 24


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("whsec_" + base64.b64encode(b"k" * 16).decode(), "too weak"),  # 16 bytes < 24
        ("whsec_not base64!", "not base64"),
    ],
)
def test_short_or_malformed_whsec_secrets_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str, message: str
) -> None:
    """A `whsec_` secret of fewer than 24 bytes (production) or not base64 stops the notifier."""
    monkeypatch.setenv("APESA_HOOK_SECRET", secret)
    path = _write(tmp_path, "    webhook_url: https://h\n    webhook_secret: env:APESA_HOOK_SECRET")
    with pytest.raises(ConfigError, match=message):
        load_associations(path, production=True)


@pytest.mark.parametrize(
    ("extra", "production", "message"),
    [
        ("    webhook_url: https://h\n    webhook_secret: env:UNSET_SECRET_VAR", False, "not set"),
        ("    webhook_url: https://h", True, "in production"),
        ("    webhook_url: https://h\n    webhook_secret: plain", False, "env:VARIABLE"),
        ("    emial: typo@x.org", False, "emial"),
    ],
)
def test_bad_association_files_are_refused(
    tmp_path: Path, extra: str, production: bool, message: str
) -> None:
    """Missing or weak secrets and unknown keys stop the notifier with a clear message."""
    with pytest.raises(ConfigError, match=message):
        load_associations(_write(tmp_path, extra), production=production)


def test_development_webhook_without_secret_uses_the_dev_secret(tmp_path: Path) -> None:
    """Outside production a webhook without a secret reference is signed with the dev secret."""
    path = _write(tmp_path, "    webhook_url: http://127.0.0.1:1/hook")
    channels = load_associations(path)[AssociationId.APESA]
    assert channels.webhook_secret == DEFAULT_WEBHOOK_SECRET.encode()


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, None), (204, None), (400, Failed), (404, Failed), (410, Failed), (302, Failed),
     (500, Retry), (502, Retry), (503, Retry)],
)  # fmt: skip
def test_webhook_status_classification(status: int, expected: type | None) -> None:
    """2xx is sent, 5xx is retried, 4xx (and anything else) is not retried."""
    assert classify_status(status) is expected


@pytest.mark.parametrize(
    ("attempts", "delay"), [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (8, 60.0), (30, 60.0)]
)
def test_exponential_backoff_up_to_a_cap(attempts: int, delay: float) -> None:
    """The wait doubles after each failed attempt and never exceeds the cap."""
    assert retry_delay(attempts, base_s=2.0, cap_s=60.0) == delay


def test_a_sender_with_a_line_break_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """NOTIFIER_MAIL_FROM goes into every e-mail's headers: a line break in it stops the start."""
    monkeypatch.setenv("NOTIFIER_MAIL_FROM", "Rebond <a@rebond.example>\r\nBcc: x@example.org")
    with pytest.raises(ValidationError, match="NOTIFIER_MAIL_FROM"):
        NotifierSettings()


def test_production_refuses_the_development_privacy_contact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """NOTIFIER_PRIVACY_CONTACT left at the development address stops production, named."""
    _production(monkeypatch, link_secret=STRONG, privacy_contact=DEVELOPMENT_PRIVACY_CONTACT)
    with pytest.raises(ValidationError, match="NOTIFIER_PRIVACY_CONTACT must be the grouping"):
        NotifierSettings()


def test_production_refuses_links_to_development_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The person's /suivi link and the answer links must be https in production: the
    development defaults (http://127.0.0.1) are named and refused."""
    _production(monkeypatch, link_secret=STRONG)
    monkeypatch.delenv("NOTIFIER_PORTAL_BASE_URL")
    monkeypatch.delenv("NOTIFIER_PUBLIC_BASE_URL")
    with pytest.raises(ValidationError) as refused:
        NotifierSettings()
    assert "NOTIFIER_PORTAL_BASE_URL must be the public https:// address" in str(refused.value)
    assert "NOTIFIER_PUBLIC_BASE_URL must be the public https:// address" in str(refused.value)


@pytest.mark.parametrize(
    ("extra", "production", "url", "refusal"),
    [
        ("", False, "http://127.0.0.1:1/antenna", None),
        ("", True, "https://crm.example/antenna", "no webhook secret"),
        (
            "    webhook_secret: env:APESA_HOOK_SECRET",
            True,
            "http://crm.example/antenna",
            "must be https://",
        ),
        ("    webhook_secret: env:APESA_HOOK_SECRET", True, "https://crm.example/antenna", None),
    ],
    ids=["development", "production without secret", "production in clear", "production"],
)
def test_an_antennas_channels_are_its_own_signed_with_the_associations_secret(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    extra: str,
    production: bool,
    url: str,
    refusal: str | None,
) -> None:
    """`reaching(antenna)` gives the antenna's e-mail and webhook (else the association's
    webhook) with the association's secret;
    in production its webhook needs that secret and https (else the delivery is refused as
    unbuildable, the e-mail still goes)."""
    from rebond_contracts.payloads import AntennaV1

    monkeypatch.setenv("APESA_HOOK_SECRET", STRONG)
    association = load_associations(_write(tmp_path, extra), production=production)[
        AssociationId.APESA
    ]
    antenna = AntennaV1(name="Antenne Gironde", email="gironde@apesa.example", webhook_url=url)
    channels = association.reaching(antenna)
    assert (channels.email, channels.webhook_url) == ("gironde@apesa.example", url)
    assert association.reaching(None) is association
    # An antenna without a webhook of its own: the association's, when it has one.
    without = antenna.model_copy(update={"webhook_url": None})
    assert association.reaching(without).webhook_url is None
    crm = replace(association, webhook_url="https://crm.example/hook")
    assert crm.reaching(without).webhook_url == "https://crm.example/hook"
    found = channels.webhook_refusal(url)
    assert (found is None) if refusal is None else (refusal in (found or ""))
