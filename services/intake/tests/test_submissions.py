"""POST /v1/submissions with fake ports: what a person gets back for each input."""

import copy
import re
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from rebond_contracts.payloads import REFERENCE_PATTERN
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE
from rebond_intake.app import build, create_app
from rebond_intake.settings import IntakeSettings
from rebond_intake.timeline import received
from rebond_kafka.testing import PRODUCTION_KAFKA
from rebond_service.privacy import DEVELOPMENT_PRIVACY_CONTACT
from rebond_testing.serving import ready_within, store_loss_seen

from .conftest import FakePublisher


def answers(**changes: Any) -> dict[str, Any]:
    """The contract's example with `changes` applied at dotted paths (None deletes)."""
    body: dict[str, Any] = copy.deepcopy(EXAMPLE_QUESTIONNAIRE)
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = body
        for part in parents:
            target = target[part]
        if value is None:
            target.pop(last, None)
        else:
            target[last] = value
    return body


def paths(reply: Any) -> set[str]:
    return {error["path"] for error in reply.json()["detail"]}


def test_accepted_submission_is_published_under_its_reference(make_client, publisher) -> None:
    """A valid questionnaire gets 202 with an unguessable reference, the event keyed by it."""
    client = make_client()
    first = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
    second = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
    assert first.status_code == 202
    reference = first.json()["reference"]
    assert re.fullmatch(REFERENCE_PATTERN, reference)
    assert reference != second.json()["reference"]
    event = publisher.events[0]
    assert event.subject == reference == event.data.reference == event.correlationid
    assert event.type == "fr.rebond.questionnaire.completed" and event.schemaversion == 1
    assert event.data.questionnaire.needs == ["mentoring", "new_business"]


def test_bad_input_gets_422_naming_each_faulty_field(make_client, publisher) -> None:
    """Every faulty field is listed by its path; nothing is published."""
    bad = answers(distress="maybe", situation__stage="bankrupt", unexpected=1)
    reply = make_client().post("/v1/submissions", json=bad)
    assert reply.status_code == 422
    locs = {tuple(error["loc"]) for error in reply.json()["detail"]}
    assert {("body", "distress"), ("body", "situation", "stage"), ("body", "unexpected")} <= locs
    assert publisher.events == []


@pytest.mark.parametrize(
    ("changes", "path", "error_type"),
    [
        ({"situation__department": "59"}, "situation.department", "department_region_mismatch"),
        ({"situation__department": "99"}, "situation.department", "unknown_department"),
        ({"situation__region": "12"}, "situation.region", "literal_error"),
        ({"situation__sector": "Z"}, "situation.sector", "literal_error"),
        ({"situation__company_size": "5"}, "situation.company_size", "enum"),
        ({"needs": []}, "needs", "too_short"),
        ({"needs": ["mentoring", "mentoring"]}, "needs", "needs_not_distinct"),
        ({"needs": ["mentoring"] * 9}, "needs", "too_long"),
        ({"needs": ["therapy"]}, "needs.0", "enum"),
        ({"message": "x" * 601}, "message", "string_too_long"),
        ({"contact": None}, "contact", "contact_required"),
        ({"consents__share_with_association": False}, "contact", "contact_without_consent"),
        ({"contact__email": "claire@"}, "contact.email", "value_error"),
        ({"contact__phone": "12345"}, "contact.phone", "string_pattern_mismatch"),
        (
            {"contact__email": None, "contact__preferred_channel": "email"},
            "contact.email",
            "preferred_channel_empty",
        ),
        (
            {"contact__preferred_channel": "phone"},
            "contact.phone",
            "preferred_channel_empty",
        ),
        ({"contact__first_name": "  "}, "contact.first_name", "string_too_short"),
        ({"consents__statistics": "yes"}, "consents.statistics", "bool_type"),
        ({"consents__event_invitations": None}, "consents.event_invitations", "missing"),
        ({"locale": "de"}, "locale", "enum"),
        ({"contact__nickname": "C"}, "contact.nickname", "extra_forbidden"),
    ],
)
def test_each_contract_rule_is_reported_at_its_field(make_client, changes, path, error_type):
    """Each rule of the v1 contract yields a 422 whose entry names the faulty field path."""
    reply = make_client().post("/v1/submissions", json=answers(**changes))
    assert reply.status_code == 422, reply.text
    entries = {e["path"]: e for e in reply.json()["detail"]}
    assert path in entries, entries
    assert entries[path]["type"] == error_type
    assert entries[path]["msg"]


@pytest.mark.parametrize(
    ("body_locale", "accept_language", "expected_locale", "expected_msg"),
    [
        (None, None, "fr", "Ce département n'appartient pas à la région choisie."),
        ("en", None, "en", "This department is not in the chosen region."),
        (None, "en-GB,en;q=0.9", "en", "This department is not in the chosen region."),
        ("fr", "en", "fr", "Ce département n'appartient pas à la région choisie."),
    ],
)
def test_422_messages_follow_the_request_locale(
    make_client, body_locale, accept_language, expected_locale, expected_msg
) -> None:
    """French by default; English with locale "en" or Accept-Language: en."""
    body = answers(situation__department="59", locale=body_locale)
    headers = {"Accept-Language": accept_language} if accept_language else {}
    reply = make_client().post("/v1/submissions", json=body, headers=headers)
    assert reply.json()["locale"] == expected_locale
    assert reply.json()["detail"][0]["msg"] == expected_msg


def test_oversized_body_gets_413(make_client, publisher) -> None:
    """A body over the configured limit is refused with 413, even without Content-Length."""
    client = make_client(max_body_bytes=2048)
    big = answers(message="é" * 600, padding="x" * 3000)
    reply = client.post("/v1/submissions", json=big)

    def chunks():
        yield b'{"distress": "no", "message": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    streamed = client.post(
        "/v1/submissions", content=chunks(), headers={"content-type": "application/json"}
    )
    assert reply.status_code == 413 and streamed.status_code == 413
    assert publisher.events == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_non_json_content_type_gets_415(make_client, content_type) -> None:
    """Only JSON is accepted."""
    reply = make_client().post(
        "/v1/submissions", content=b"distress=no", headers={"content-type": content_type}
    )
    assert reply.status_code == 415


@pytest.mark.parametrize(
    "raw", [b"{", b"[]", b'"x"', b"null", b'{"distress": "\\ud800"}', b"\xff\xfe"]
)
def test_malformed_json_gets_422_not_500(make_client, raw) -> None:
    """Broken or non-object JSON is a 422, never a 5xx."""
    reply = make_client().post(
        "/v1/submissions", content=raw, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 422
    assert reply.json()["detail"]


def test_lone_surrogate_in_free_text_gets_422(make_client, publisher) -> None:
    """Text that cannot be encoded as UTF-8 is refused as invalid, not a server error."""
    raw = b'{"distress":"no","situation":{"stage":"unsure","company_size":"0","region":"11"},'
    raw += b'"needs":["listening"],"message":"\\ud800","consents":{"share_with_association":false,'
    raw += b'"sensitive_data":false,"statistics":false,"event_invitations":false}}'
    reply = make_client().post(
        "/v1/submissions", content=raw, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 422
    assert publisher.events == []


def test_same_idempotency_key_and_body_returns_same_reference_once(make_client, publisher):
    """A retry with the same key and body gets the same reference and publishes nothing new."""
    client = make_client()
    key = {"Idempotency-Key": "5b1f8c2e-retry-test"}
    first = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key)
    again = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key)
    assert first.status_code == again.status_code == 202
    assert first.json()["reference"] == again.json()["reference"]
    assert len(publisher.events) == 1


def test_same_idempotency_key_with_another_body_gets_409(make_client, publisher) -> None:
    """Reusing a key for different answers is a conflict."""
    client = make_client()
    key = {"Idempotency-Key": "5b1f8c2e-conflict"}
    client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key)
    other = client.post("/v1/submissions", json=answers(distress="yes"), headers=key)
    assert other.status_code == 409
    assert len(publisher.events) == 1


def test_retry_after_broker_failure_publishes_the_same_event(make_client, publisher) -> None:
    """After a 503, a retry with the same key publishes one event with the same id and time."""
    client = make_client()
    key = {"Idempotency-Key": "5b1f8c2e-timeout"}
    publisher.down = True
    failed = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key)
    publisher.down = False
    retried = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key)
    again = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key)
    assert failed.status_code == 503 and retried.status_code == 202
    assert [e.data.reference for e in publisher.events] == [retried.json()["reference"]]
    assert again.json()["reference"] == retried.json()["reference"]


def test_event_id_is_derived_from_the_idempotency_key(make_client, publisher, store) -> None:
    """Two intakes sharing a store publish the same event id for one key."""
    key = {"Idempotency-Key": "derived-key-42"}
    make_client().post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key)
    first_id = publisher.events[0].id
    store.submissions.clear()
    make_client().post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key)
    assert publisher.events[1].id == first_id


def test_bad_idempotency_key_gets_422(make_client) -> None:
    """A key that is too short or has spaces is refused with a path naming the header."""
    reply = make_client().post(
        "/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers={"Idempotency-Key": "a b"}
    )
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


def test_distress_yes_gets_resources_and_flag_travels(make_client, publisher) -> None:
    """`distress: yes` returns 3114, 15/112 and APESA; with the art. 9 consent the event keeps it."""
    reply = make_client().post(
        "/v1/submissions", json=answers(distress="yes", consents__sensitive_data=True)
    )
    calm = make_client().post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
    assert reply.status_code == 202
    resources = {r["id"]: r for r in reply.json()["resources"]}
    assert set(resources) == {"3114", "emergency", "apesa"}
    assert "112" in resources["emergency"]["name"] and resources["3114"]["phone"] == "3114"
    assert all(r["fr"] for r in resources.values())
    assert calm.json()["resources"] is None
    assert publisher.events[0].data.questionnaire.distress == "yes"
    assert publisher.events[0].data.questionnaire.consents.sensitive_data is True


@pytest.mark.parametrize(
    ("distress", "consent", "message", "published", "crisis_words", "message_kept"),
    [
        ("yes", False, "Je pense au suicide.", "prefer_not_to_say", None, False),
        ("yes", True, "Je pense au suicide.", "yes", True, True),
        ("yes", True, "Je veux rebondir.", "yes", False, True),
        ("no", True, "Je pense au suicide.", "prefer_not_to_say", None, False),
        ("no", False, "Je veux rebondir.", "prefer_not_to_say", None, True),
        ("prefer_not_to_say", True, "Je veux rebondir.", "prefer_not_to_say", None, True),
    ],
)
def test_nothing_about_distress_leaves_intake_without_the_art9_consent(
    make_client, publisher, distress, consent, message, published, crisis_words, message_kept
) -> None:
    """Only `distress: yes` with the art. 9 consent publishes the answer and `crisis_words`."""
    body = answers(distress=distress, consents__sensitive_data=consent, message=message)
    assert make_client().post("/v1/submissions", json=body).status_code == 202
    event = publisher.events[0].data
    assert event.questionnaire.distress == published
    assert event.questionnaire.consents.sensitive_data is (published == "yes")
    assert event.crisis_words is crisis_words
    assert (event.questionnaire.message == message) is message_kept


def test_crisis_words_show_the_resources_even_without_distress(make_client) -> None:
    """A free text that speaks of suicide gets 3114 and 15/112 in the reply, whatever the answers."""
    reply = make_client().post(
        "/v1/submissions", json=answers(distress="no", message="J'ai envie d'en finir.")
    )
    assert {r["id"] for r in reply.json()["resources"]} >= {"3114", "emergency"}


def test_unreachable_broker_gets_503_with_retry_after_and_no_reference(
    make_client, publisher
) -> None:
    """When Kafka does not acknowledge, nothing is claimed accepted and the person may retry."""
    publisher.down = True
    client = make_client()
    reply = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
    assert reply.status_code == 503
    assert reply.headers["retry-after"] == "7"
    assert reply.json()["error"] == "unavailable" and "reference" not in reply.json()
    assert client.get("/readyz").status_code == 503


def test_a_keyless_claim_kafka_refused_is_forgotten(make_client, publisher, store) -> None:
    """Without a key, a submission Kafka did not take leaves no row and no secret behind."""
    publisher.down = True
    reply = make_client().post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
    assert reply.status_code == 503
    assert store.submissions == {} and store.secrets == {}


def test_a_keyless_submission_writes_nothing_before_its_202(make_client, publisher, store) -> None:
    """Without a key the store is not touched: Kafka's acknowledgement is the record (the
    consumer writes "received" when it reads the event back)."""
    reply = make_client().post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
    assert reply.status_code == 202
    assert store.submissions == {} and store.kept == {} and store.secrets == {}
    [event] = publisher.events
    assert event.subject == reply.json()["reference"]


def test_a_keyed_claim_kafka_refused_is_not_shown_and_the_retry_publishes_it(
    make_client, publisher, store
) -> None:
    """With a key, the claim stays for the retry but shows nowhere; the retry publishes the
    claimed reference and event id."""
    publisher.down = True
    client = make_client()
    key = {"Idempotency-Key": "5b1f8c2e-unacknowledged"}
    assert (
        client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key).status_code == 503
    )
    [claimed] = store.submissions.values()
    assert client.get(f"/v1/submissions/{claimed.reference}").status_code == 404
    publisher.down = False
    retry = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key)
    assert retry.status_code == 202 and retry.json()["reference"] == claimed.reference
    assert [(e.subject, e.id) for e in publisher.events] == [(claimed.reference, claimed.event_id)]


def test_a_replay_elsewhere_publishes_only_what_intake_has_not_read_back(publisher, store) -> None:
    """Another replica (no memory of the first 202) gets the same key: once the consumer has
    kept the event, nothing is published again; before, the same event is (same id)."""
    key = {"Idempotency-Key": "5b1f8c2e-replayed-elsewhere"}
    settings = IntakeSettings(rate_limit_per_minute=0)

    def replica() -> TestClient:
        return TestClient(build(settings, publisher=publisher, store=store).web)

    with replica() as first:
        reference = first.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key).json()[
            "reference"
        ]
    [event] = publisher.events
    with replica() as second:
        assert (
            second.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key).json()[
                "reference"
            ]
            == reference
        )
    assert [e.id for e in publisher.events] == [event.id, event.id]
    store.kept[event.id] = received(event.id, reference, event.time)  # the consumer read it
    with replica() as third:
        third.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key)
    assert len(publisher.events) == 2


@pytest.mark.parametrize("key", [None, "5b1f8c2e-status-at-once"])
def test_the_status_page_knows_an_accepted_submission_at_once(make_client, key) -> None:
    """Right after the 202, with or without a key, the reference's timeline says received."""
    client = make_client()
    headers = {"Idempotency-Key": key} if key else {}
    accepted = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=headers)
    reply = client.get(accepted.json()["status_url"])
    assert reply.status_code == 200
    assert [step["code"] for step in reply.json()["timeline"]] == ["received"]


def test_intake_started_without_kafka_answers_503_not_500(tmp_path) -> None:
    """The real Kafka adapter, pointed at a closed port, makes submissions 503 while it retries."""
    settings = IntakeSettings(
        kafka_bootstrap_servers="127.0.0.1:1", publish_timeout_s=0.5, data_dir=tmp_path
    )
    with TestClient(create_app(settings)) as client:
        reply = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
    assert reply.status_code == 503
    assert "retry-after" in reply.headers


def test_rate_limit_gets_429_with_retry_after(make_client, publisher) -> None:
    """Beyond the burst, a client is told to wait; nothing more is published."""
    client = make_client(rate_limit_per_minute=1, rate_limit_burst=2)
    codes = [
        client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE).status_code for _ in range(3)
    ]
    assert codes == [202, 202, 429]
    limited = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
    assert int(limited.headers["retry-after"]) >= 1
    assert len(publisher.events) == 2


def test_security_headers_on_every_response(make_client) -> None:
    """Pages, API replies and errors carry CSP (frame-ancestors none), nosniff, no-referrer."""
    client = make_client()
    for reply in (
        client.get("/"),
        client.get("/v1/questionnaire"),
        client.post("/v1/submissions", content=b"x", headers={"content-type": "text/plain"}),
        client.get("/v1/submissions/RB-0000-0000-0000-0000"),
    ):
        csp = reply.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["referrer-policy"] == "no-referrer"


def test_cors_allows_only_configured_origins(make_client) -> None:
    """The configured portal origin may call the API from a browser; another origin may not."""
    client = make_client(cors_origins="https://portail.example.org")
    allowed = client.options(
        "/v1/submissions",
        headers={"Origin": "https://portail.example.org", "Access-Control-Request-Method": "POST"},
    )
    denied = client.options(
        "/v1/submissions",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert allowed.headers["access-control-allow-origin"] == "https://portail.example.org"
    assert "access-control-allow-origin" not in denied.headers


def test_production_refuses_wildcard_cors_and_no_rate_limit() -> None:
    """Unsafe settings are refused when INTAKE_ENVIRONMENT=production."""
    key = "a-production-erasure-key-of-32-characters-or-more"
    production: dict[str, Any] = {
        "environment": "production", "privacy_contact": "donnees@portail-rebond.fr",
        **PRODUCTION_KAFKA,
    }  # fmt: skip
    with pytest.raises(ValueError, match="CORS"):
        IntakeSettings(**production, cors_origins="*", erasure_key=key)
    with pytest.raises(ValueError, match="RATE_LIMIT"):
        IntakeSettings(**production, rate_limit_per_minute=0, erasure_key=key)
    with pytest.raises(ValueError, match="ERASURE_KEY"):
        IntakeSettings(**production)
    with pytest.raises(ValueError, match="ERASURE_KEY"):
        IntakeSettings(**production, erasure_key="short")
    assert IntakeSettings(**production, erasure_key=key).environment == "production"
    with pytest.raises(ValueError, match="INTAKE_PRIVACY_CONTACT must be the grouping's"):
        IntakeSettings(**{**production, "privacy_contact": DEVELOPMENT_PRIVACY_CONTACT})


def test_questionnaire_form_covers_every_contract_value(make_client) -> None:
    """GET /v1/questionnaire asks distress first and labels every enumeration value fr/en."""
    from rebond_contracts.questionnaire import CompanySize, Distress, Need, Stage

    form = make_client().get("/v1/questionnaire").json()
    questions = {q["id"]: q for q in form["questions"]}
    assert form["questions"][0]["id"] == "distress"
    for qid, enum in [
        ("distress", Distress),
        ("situation.stage", Stage),
        ("situation.company_size", CompanySize),
        ("needs", Need),
    ]:
        options = questions[qid]["options"]
        assert [o["value"] for o in options] == [e.value for e in enum]
        assert all(o["label"]["fr"] and o["label"]["en"] for o in options)
    assert {r["id"] for r in form["resources"]} == {"3114", "emergency", "apesa"}


def test_no_stack_trace_or_server_error_on_unknown_routes(make_client) -> None:
    """Unknown paths and methods answer JSON 404/405 without internals."""
    client = make_client()
    assert client.get("/nope").status_code == 404
    assert client.delete("/v1/submissions").status_code == 405
    assert "Traceback" not in client.get("/nope").text


def test_unreachable_store_gets_503_not_500(tmp_path) -> None:
    """With the status database down, intake still starts; what needs the store (a keyed
    submission's claim, the status page) answers 503 with Retry-After, and nothing of it is
    published. A keyless submission needs only Kafka: it is accepted."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    settings = IntakeSettings(
        database_url=f"sqlite+aiosqlite:///{blocker}/sub/intake.db", rate_limit_per_minute=0
    )
    publisher = FakePublisher()
    with TestClient(build(settings, publisher=publisher).web) as client:
        keyed = client.post(
            "/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers={"Idempotency-Key": "k" * 16}
        )
        keyless = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
        status = client.get("/v1/submissions/RB-0000-0000-0000-0000")
        ready = client.get("/readyz")
    assert keyed.status_code == 503 and "retry-after" in keyed.headers
    assert keyless.status_code == 202
    assert [e.subject for e in publisher.events] == [keyless.json()["reference"]]
    assert status.status_code == 503
    assert ready.status_code == 503 and ready.json()["store"] == "unreachable"


async def test_readiness_names_the_store_once_it_no_longer_answers(tmp_path) -> None:
    """/readyz is 200 once the store is open and answers its `SELECT 1`; once the database
    stops answering (here closed), 503 naming the store, not only at start-up."""
    settings = IntakeSettings(data_dir=tmp_path, rate_limit_per_minute=0)
    intake = build(settings, publisher=FakePublisher())
    app = intake.web
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://intake") as client,
    ):
        assert await ready_within(client), "intake's store never opened"
        await store_loss_seen(client, intake.store.close, kafka="connected")


def test_portal_assets_are_shipped_without_external_cdn(make_client) -> None:
    """Every page's script and style come from intake itself, with no inline script."""
    client = make_client()
    for path in ("/", "/suivi/RB-0000-0000-0000-0000", "/confidentialite", "/effacer"):
        page = client.get(path).text
        assert re.findall(r'<script[^>]*src="([^"]+)"', page) == ["/static/portal.js"]
        assert re.findall(r'<link[^>]*href="([^"]+)"', page) == ["/static/portal.css"]
        assert "<script>" not in page
    for asset in ("/static/portal.js", "/static/portal.css"):
        reply = client.get(asset)
        assert reply.status_code == 200 and "//cdn" not in reply.text
