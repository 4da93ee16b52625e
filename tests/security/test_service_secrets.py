"""Each service's secrets come from the environment or from files, and outside development a
service refuses to start on a development default."""

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from rebond_coordination.settings import CoordinationSettings
from rebond_events.settings import EventsSettings
from rebond_intake.settings import IntakeSettings
from rebond_kafka.testing import PRODUCTION_KAFKA
from rebond_notifier.settings import NotifierSettings
from rebond_router.settings import RouterSettings
from rebond_service.smtp import SmtpSettings

SETTINGS = {
    "INTAKE": IntakeSettings,
    "ROUTER": RouterSettings,
    "NOTIFIER": NotifierSettings,
    "EVENTS": EventsSettings,
}
STRONG = "a-real-secret-of-more-than-thirty-two-characters"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.split("_", 1)[0] in SETTINGS or name == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(name)


@pytest.mark.parametrize("prefix", SETTINGS)
def test_the_kafka_password_comes_from_the_environment_or_a_file(
    prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`<SVC>_KAFKA_SASL_PASSWORD`, or `<SVC>_KAFKA_SASL_PASSWORD_FILE` (which wins)."""
    monkeypatch.setenv(f"{prefix}_KAFKA_SASL_PASSWORD", "from-env")
    settings = SETTINGS[prefix]()
    assert settings.kafka_sasl_password.get_secret_value() == "from-env"  # type: ignore[union-attr]
    secret = tmp_path / "kafka-password"
    secret.write_text("from-file\n")
    monkeypatch.setenv(f"{prefix}_KAFKA_SASL_PASSWORD_FILE", str(secret))
    settings = SETTINGS[prefix]()
    assert settings.kafka_sasl_password.get_secret_value() == "from-file"  # type: ignore[union-attr]


@pytest.mark.parametrize("prefix", SETTINGS)
def test_no_secret_setting_has_a_default_except_the_refused_development_ones(prefix: str) -> None:
    """Every secret field defaults to nothing, or to a development value production refuses."""
    refused = {
        ("INTAKE", "erasure_key"),
        ("NOTIFIER", "link_secret"),
        ("EVENTS", "signing_secret"),
        ("ROUTER", "preview_token"),
    }
    for name, field in SETTINGS[prefix].model_fields.items():
        if isinstance(field.default, SecretStr):
            assert (prefix, name) in refused, f"{prefix}_{name.upper()} has a default secret"


def _production(monkeypatch: pytest.MonkeyPatch, *prefixes: str) -> None:
    """`<SVC>_ENVIRONMENT=production` with the encrypted transports production requires
    (Kafka over SASL_SSL with SCRAM, the notifier's SMTP over STARTTLS)."""
    for prefix in prefixes:
        monkeypatch.setenv(f"{prefix}_ENVIRONMENT", "production")
        for name, value in PRODUCTION_KAFKA.items():
            monkeypatch.setenv(f"{prefix}_{name.upper()}", value)
    monkeypatch.setenv("NOTIFIER_SMTP_STARTTLS", "true")
    for prefix in ("INTAKE", "NOTIFIER"):  # the grouping's own, not the development address
        monkeypatch.setenv(f"{prefix}_PRIVACY_CONTACT", "donnees@portail-rebond.fr")
    monkeypatch.setenv("NOTIFIER_PORTAL_BASE_URL", "https://portail.example")
    monkeypatch.setenv("NOTIFIER_PUBLIC_BASE_URL", "https://reponses.example")


@pytest.mark.parametrize("prefix", SETTINGS)
def test_production_refuses_kafka_in_clear(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every service in production stops on Kafka without TLS (PLAINTEXT, SASL_PLAINTEXT) or
    with PLAIN, naming the variable, whatever its other settings."""
    _production(monkeypatch, prefix)
    for name, value in (
        ("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
        ("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"),
        ("KAFKA_SASL_MECHANISM", "PLAIN"),
    ):
        with monkeypatch.context() as patch:
            patch.setenv(f"{prefix}_{name}", value)
            with pytest.raises(ValidationError, match=f"{prefix}_{name} must be"):
                SETTINGS[prefix]()


def test_production_refuses_the_development_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """With `<SVC>_ENVIRONMENT=production`, the development secrets stop the service."""
    _production(monkeypatch, "INTAKE", "NOTIFIER", "EVENTS", "ROUTER")
    with pytest.raises(ValidationError, match="ERASURE_KEY"):
        IntakeSettings()
    with pytest.raises(ValidationError, match="ROUTER_PREVIEW_TOKEN"):
        RouterSettings()
    with pytest.raises(ValidationError, match="LINK_SECRET"):
        NotifierSettings()
    with pytest.raises(ValidationError, match="SIGNING_SECRET"):
        EventsSettings()


def test_production_starts_with_secrets_from_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same production settings start once real secrets are given as files."""
    (tmp_path / "erasure").write_text(STRONG)
    (tmp_path / "link").write_text(STRONG)
    (tmp_path / "signing").write_text(STRONG)
    (tmp_path / "preview").write_text(STRONG)
    (tmp_path / "keys.json").write_text('{"apesa": "sha256:' + "0" * 64 + '"}')
    _production(monkeypatch, "NOTIFIER", "EVENTS")
    monkeypatch.setenv("NOTIFIER_LINK_SECRET_FILE", str(tmp_path / "link"))
    monkeypatch.setenv("EVENTS_SIGNING_SECRET_FILE", str(tmp_path / "signing"))
    monkeypatch.setenv("EVENTS_ORGANISER_KEYS", "{}")
    monkeypatch.setenv("EVENTS_ORGANISER_KEYS_FILE", str(tmp_path / "keys.json"))
    assert NotifierSettings().link_secret.get_secret_value() == STRONG
    assert EventsSettings().signing_secret.get_secret_value() == STRONG
    _production(monkeypatch, "INTAKE", "ROUTER")
    monkeypatch.setenv("INTAKE_ERASURE_KEY_FILE", str(tmp_path / "erasure"))
    monkeypatch.setenv("ROUTER_PREVIEW_TOKEN_FILE", str(tmp_path / "preview"))
    assert IntakeSettings().erasure_key.get_secret_value() == STRONG
    assert RouterSettings().preview_token.get_secret_value() == STRONG


@pytest.mark.parametrize("settings", [NotifierSettings, CoordinationSettings])
def test_every_service_sending_e_mail_refuses_smtp_in_clear_in_production(
    settings: type[SmtpSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notifier (a person's contact and message) and the console (an invitation's one-time
    link) send e-mail in production only over STARTTLS or implicit TLS (`SmtpSettings`)."""
    prefix = str(settings.model_config["env_prefix"])
    monkeypatch.setenv(f"{prefix}ENVIRONMENT", "production")
    monkeypatch.setenv(f"{prefix}SMTP_STARTTLS", "false")
    monkeypatch.setenv(f"{prefix}SMTP_TLS", "false")
    with pytest.raises(ValidationError, match=rf"{prefix}SMTP_STARTTLS=true .* {prefix}SMTP_TLS"):
        settings()
