"""POST /v1/submissions with a fake publisher: what a person gets back for each input."""

import copy
import re

from fastapi.testclient import TestClient

from rebond_contracts.envelope import Envelope
from rebond_contracts.payloads import REFERENCE_PATTERN, QuestionnaireCompletedV1
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE
from rebond_intake.app import create_app
from rebond_intake.publisher import BrokerUnavailable
from rebond_intake.settings import IntakeSettings


class FakePublisher:
    """Keeps what it was given; can be switched to behave like an unreachable broker."""

    def __init__(self, *, down: bool = False) -> None:
        self.events: list[Envelope[QuestionnaireCompletedV1]] = []
        self.down = down

    async def publish(self, event: Envelope[QuestionnaireCompletedV1]) -> None:
        if self.down:
            raise BrokerUnavailable("KafkaConnectionError")
        self.events.append(event)

    def ready(self) -> bool:
        return not self.down


def client_with(publisher: FakePublisher) -> TestClient:
    return TestClient(create_app(IntakeSettings(retry_after_s=7), publisher=publisher))


def test_accepted_submission_is_published_under_its_reference() -> None:
    """A valid questionnaire gets 202 with an unguessable reference, the event keyed by it."""
    publisher = FakePublisher()
    with client_with(publisher) as client:
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


def test_bad_input_gets_422_naming_each_faulty_field() -> None:
    """Every faulty field is listed by its path; nothing is published."""
    publisher = FakePublisher()
    bad = copy.deepcopy(EXAMPLE_QUESTIONNAIRE)
    bad["distress"] = "maybe"
    bad["situation"]["stage"] = "bankrupt"  # type: ignore[index]
    bad["unexpected"] = 1
    with client_with(publisher) as client:
        reply = client.post("/v1/submissions", json=bad)
    assert reply.status_code == 422
    paths = {tuple(error["loc"]) for error in reply.json()["detail"]}
    assert {("body", "distress"), ("body", "situation", "stage"), ("body", "unexpected")} <= paths
    assert publisher.events == []


def test_unreachable_broker_gets_503_with_retry_after_and_no_reference() -> None:
    """When Kafka does not acknowledge, nothing is claimed accepted and the person may retry."""
    with client_with(FakePublisher(down=True)) as client:
        reply = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
        ready = client.get("/readyz")
    assert reply.status_code == 503
    assert reply.headers["retry-after"] == "7"
    assert reply.json()["error"] == "unavailable" and "reference" not in reply.json()
    assert ready.status_code == 503


def test_intake_started_without_kafka_answers_503_not_500() -> None:
    """The real Kafka adapter, pointed at a closed port, makes submissions 503 while it retries."""
    settings = IntakeSettings(kafka_bootstrap_servers="127.0.0.1:1", publish_timeout_s=0.5)
    with TestClient(create_app(settings)) as client:
        reply = client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
    assert reply.status_code == 503
    assert "retry-after" in reply.headers
