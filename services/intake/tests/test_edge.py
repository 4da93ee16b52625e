"""Intake's public edge: text that is not text, operators' paths, HSTS (rebond_http)."""

import pytest
from fastapi.testclient import TestClient

from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE
from rebond_intake.app import build
from rebond_intake.settings import IntakeSettings
from rebond_kafka.testing import PRODUCTION_KAFKA

from .conftest import FakePublisher, FakeStore

PRODUCTION_KEY = "a-production-erasure-key-of-more-than-32-characters"


def test_a_lone_surrogate_in_the_erasure_secret_gets_422_naming_it(make_client, publisher) -> None:
    """`{"secret": "\\ud800"}` is refused as invalid characters at `secret`, not a 500."""
    client = make_client()
    reference = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE).json()["reference"]
    reply = client.post(
        f"/v1/submissions/{reference}/erasure",
        content=b'{"secret": "\\ud800"}',
        headers={"content-type": "application/json"},
    )
    assert reply.status_code == 422, reply.text
    [entry] = reply.json()["detail"]
    assert (entry["path"], entry["type"]) == ("secret", "invalid_characters")
    assert entry["msg"] == "Le texte contient des caractères invalides."
    assert publisher.erasures == []


def test_a_non_ascii_secret_header_is_a_wrong_secret(make_client, publisher) -> None:
    """A header holding bytes outside ASCII is simply not the secret (403), never a 500."""
    client = make_client()
    reference = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE).json()["reference"]
    reply = client.post(
        f"/v1/submissions/{reference}/erasure",
        headers=[(b"x-erasure-secret", "été".encode("latin-1"))],
        json={},
    )
    assert reply.status_code == 403 and publisher.erasures == []


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("/v1/submissions/RB-0000-0000-0000-0000?locale=%ED%A0%80", "locale"),
        ("/v1/submissions/%ED%A0%80", ""),
    ],
)
def test_bytes_that_are_not_utf8_in_the_url_get_422(make_client, url, path) -> None:
    """Percent-encoded bytes that are not UTF-8 in the path or query: 422 naming where."""
    reply = make_client().get(url)
    assert reply.status_code == 422
    assert [e["path"] for e in reply.json()["detail"]] == [path]


def _client(base_url: str = "http://testserver", **overrides: object) -> TestClient:
    settings = IntakeSettings(**{"rate_limit_per_minute": 0, **overrides})
    return TestClient(
        build(settings, publisher=FakePublisher(), store=FakeStore()).web, base_url=base_url
    )


def test_metrics_and_openapi_are_not_public_in_production() -> None:
    """In production, `/metrics` and `/openapi.json` answer only on INTAKE_INTERNAL_PORT."""
    production = {
        **PRODUCTION_KAFKA,
        "environment": "production",
        "erasure_key": PRODUCTION_KEY,
        "rate_limit_per_minute": 20,
        "privacy_contact": "donnees@portail-rebond.fr",
    }
    with _client("http://intake.example:8000", **production) as public:
        assert public.get("/metrics").status_code == 404
        assert public.get("/openapi.json").status_code == 404
        assert public.get("/v1/questionnaire").status_code == 200
    internal = {**production, "internal_port": 9100}
    with _client("http://10.0.0.5:9100", **internal) as operators:
        assert operators.get("/metrics").status_code == 200
        assert operators.get("/openapi.json").json()["info"]["title"] == "Rebond intake"
    with _client() as development:
        assert development.get("/metrics").status_code == 200


def test_hsts_is_sent_when_configured() -> None:
    """INTAKE_HSTS_MAX_AGE_S puts Strict-Transport-Security on every answer; none by default."""
    with _client() as plain, _client(hsts_max_age_s=31536000) as tls:
        assert "strict-transport-security" not in plain.get("/").headers
        assert tls.get("/").headers["strict-transport-security"] == "max-age=31536000"
        assert tls.get("/v1/questionnaire").headers["strict-transport-security"]


def test_trusted_proxies_are_read_as_cidrs_and_the_internal_port_must_differ() -> None:
    """INTAKE_TRUSTED_PROXIES takes comma-separated CIDRs; a bad one stops the service."""
    settings = IntakeSettings(trusted_proxies="10.0.0.0/8, 2001:db8::/32")
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "2001:db8::/32"]
    with pytest.raises(ValueError, match="trusted_proxies"):
        IntakeSettings(trusted_proxies="10.0.0.0/33")
    with pytest.raises(ValueError, match="INTAKE_INTERNAL_PORT must differ"):
        IntakeSettings(internal_port=8000)
