"""What the subscriptions do with the records they read (`consumer.Handlers`), without Kafka:
a batch that fails for good is retried one record at a time to find the one that fails, a
batch whose store stays down is dead-lettered whole, and a refused answer is dead-lettered;
once the overrides are caught up, a batch waits for nothing."""

from collections.abc import Sequence
from typing import Any

import pytest
import stamina
import structlog
from aiokafka import ConsumerRecord

from rebond_contracts.envelope import Envelope
from rebond_contracts.payloads import QuestionnaireCompletedV1
from rebond_contracts.topics import QUESTIONNAIRES, Topic, responses
from rebond_kafka.consume import Received
from rebond_router.consumer import Handlers, Retries
from rebond_router.directory import Directory
from rebond_router.lifecycle import Router
from rebond_router.overrides import Overrides

from .conftest import NOW, REFERENCE, SIXTY, SOUFFLE, FakeOutputs, answer, questionnaire, submitted
from .fakes import FakePublisher, FakeReferrals

REFERENCES = [f"RB-0000-0000-0000-000{n}" for n in range(3)]


class FailsFor(Router):
    """The real router, except that questionnaires about `failing` fail with `error`."""

    def __init__(self, *args: Any, failing: set[str], error: Exception, **options: Any) -> None:
        super().__init__(*args, **options)
        self.failing, self.error = failing, error

    async def on_questionnaires(
        self,
        events: Sequence[Envelope[QuestionnaireCompletedV1]],
        scope: Any = None,
    ) -> int:
        if any(event.data.reference in self.failing for event in events):
            raise self.error
        return await super().on_questionnaires(events, scope)


class DeadLetters:
    """Records what is dead-lettered (record's offset, error)."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    async def send(self, record: ConsumerRecord[bytes, bytes], error: str) -> None:
        self.sent.append((record.offset, error))


def received(topic: Topic, event: Envelope[Any], offset: int) -> Received[Any]:
    headers = [(k, v.encode()) for k, v in event.kafka_headers().items()]
    record = ConsumerRecord(
        topic.name, 0, offset, 0, 0, event.subject.encode(), event.kafka_value(), None, 0, 0,
        headers,
    )  # fmt: skip
    return Received(topic, record, topic.read(record.value, headers))


def batch() -> list[Received[QuestionnaireCompletedV1]]:
    return [
        received(
            QUESTIONNAIRES,
            QUESTIONNAIRES.envelope(submitted(ref), subject=ref, correlationid=ref, id=f"e-{n}"),
            n,
        )
        for n, ref in enumerate(REFERENCES)
    ]


def handlers(
    directory: Directory, failing: set[str], error: Exception
) -> tuple[Handlers, FakeOutputs, DeadLetters]:
    referrals, outputs, dead = FakeReferrals(), FakeOutputs(), DeadLetters()
    router = FailsFor(
        referrals, FakePublisher(referrals, outputs, lambda: NOW), directory, lambda: NOW,
        failing=failing, error=error,
    )  # fmt: skip
    retries = Retries(attempts=3, first_s=60, cap_s=60)  # waits skipped: stamina's testing mode
    return Handlers(router, dead, retries), outputs, dead  # type: ignore[arg-type]


async def test_a_record_that_fails_for_good_is_found_and_the_others_decided(
    directory: Directory,
) -> None:
    """The batch fails (a bug with one record): each record is then handled alone; the failing
    one is dead-lettered with its error (and logged), the others are decided."""
    parts, outputs, dead = handlers(directory, {REFERENCES[1]}, ValueError("cannot route"))
    with structlog.testing.capture_logs() as logs:
        await parts.on_questionnaires(batch())
    assert dead.sent == [(1, "ValueError: cannot route")]
    said = [line["event"] for line in logs if line["log_level"] != "info"]
    assert said == ["batch_failed_one_by_one", "handler_failed"]
    decided = [d["reference"] for d in outputs.on("routing.decisions")]
    assert decided == [REFERENCES[0], REFERENCES[2]]


async def test_a_batch_whose_store_stays_down_is_dead_lettered_whole(
    directory: Directory,
) -> None:
    """A transient failure outlasting the retries: every record of the batch is dead-lettered,
    saying so, and nothing is decided."""
    down = OSError("database unreachable")
    parts, outputs, dead = handlers(directory, set(REFERENCES), down)
    with stamina.set_testing(True, attempts=3, cap=True):
        await parts.on_questionnaires(batch())
    assert dead.sent == [(n, "OSError after 3 attempts: database unreachable") for n in range(3)]
    assert outputs.sent == []


async def test_an_answer_from_an_association_not_holding_the_referral_is_dead_lettered(
    directory: Directory,
) -> None:
    """Second Souffle answering 60 000 rebonds' referral: dead-lettered with the reason, and
    nothing is published; the holder's answer is then taken."""
    parts, outputs, dead = handlers(directory, set(), ValueError())
    await parts.on_questionnaires([received(QUESTIONNAIRES, questionnaire(), 0)])
    referral_id = outputs.on("routing.decisions")[0]["referral"]["referral_id"]
    sent = len(outputs.sent)
    wrong = answer(SOUFFLE, referral_id, "r-1")
    await parts.on_response(received(responses(SOUFFLE), wrong, 7))
    assert dead.sent == [(7, f"second-souffle does not hold referral {referral_id} of {REFERENCE}")]
    assert len(outputs.sent) == sent
    await parts.on_response(received(responses(SIXTY), answer(SIXTY, referral_id, "r-2"), 8))
    assert outputs.statuses()[-1] == ("accepted", SIXTY)


async def test_a_batch_after_the_overrides_caught_up_waits_for_no_task(
    directory: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Overrides read: a batch goes straight to its decisions, without `asyncio.wait_for` (a
    task and a timer per batch, an event-loop turn on the path of every lone record)."""
    parts, outputs, _ = handlers(directory, set(), ValueError())

    async def empty_topic() -> dict[int, tuple[int, int]]:
        return {0: (0, 0)}

    async def publish(*_args: object) -> None:
        return None

    overrides = Overrides(directory, parts.router, publish, lambda: NOW, empty_topic)
    await overrides.caught_up()  # nothing written before this start: caught up at once

    def no_wait(*_args: object) -> None:
        raise AssertionError("waited for the overrides")

    monkeypatch.setattr("rebond_router.consumer.asyncio.wait_for", no_wait)
    ready = Handlers(parts.router, parts.dead_letters, parts.retries, overrides)
    await ready.on_questionnaires(batch())
    assert len(outputs.on("routing.decisions")) == 3
