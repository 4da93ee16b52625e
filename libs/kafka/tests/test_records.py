"""Raw decoders hand handlers the bytes; a dead letter carries the record, the error, the trace."""

import json
from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaMessage
from faststream.kafka.message import FAKE_CONSUMER
from structlog.testing import capture_logs

from rebond_contracts.topics import Service, dead_letters
from rebond_kafka.records import dead_letter, keep_raw, keep_raw_batch, send_dead_letter

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def record(
    value: bytes | None, headers: list[tuple[str, bytes]] | None = None, offset: int = 7
) -> "ConsumerRecord[bytes, bytes]":
    return ConsumerRecord(
        topic="referrals.status", partition=2, offset=offset, timestamp=0, timestamp_type=0,
        key=b"RB-0HCK-9645-C57J-B5Q9", value=value, checksum=None, serialized_key_size=22,
        serialized_value_size=len(value or b""), headers=headers or [],
    )  # fmt: skip


async def test_keep_raw_gives_the_body_unparsed() -> None:
    """A body labelled JSON that is not JSON reaches the handler as its bytes."""
    msg = KafkaMessage(
        raw_message=record(b"not json"), body=b"not json", content_type="application/json",
        consumer=FAKE_CONSUMER,
    )  # fmt: skip
    assert await keep_raw(msg) == b"not json"


async def test_keep_raw_batch_gives_each_records_bytes_in_order() -> None:
    """A batch becomes each record's bytes, in order; a record without a value gives b""."""
    batch = (record(b'{"a": 1}', offset=1), record(b"not json", offset=2), record(None, offset=3))
    msg = KafkaMessage(raw_message=batch, body=b"", consumer=FAKE_CONSUMER)
    assert await keep_raw_batch(msg) == [b'{"a": 1}', b"not json", b""]


def test_dead_letter_reads_as_the_services_dead_letter_with_the_original_inside() -> None:
    """The message is `service`'s dead-letter event (its topic reads it back), holding the
    original record, its headers and the error; the key stays the original key."""
    failed = record(b"not json", headers=[("ce_correlationid", b"RB-0HCK-9645-C57J-B5Q9")])
    args = dead_letter(Service.NOTIFIER, failed, "Envelope: not JSON")
    assert args["key"] == b"RB-0HCK-9645-C57J-B5Q9"
    headers = args["headers"]
    assert isinstance(headers, dict) and isinstance(args["message"], bytes)
    as_sent = [(name, value.encode()) for name, value in headers.items()]
    letter = dead_letters(Service.NOTIFIER).read(args["message"], as_sent)
    assert letter.data.service == "notifier"
    assert (letter.data.topic, letter.data.partition, letter.data.offset) == (
        "referrals.status", 2, 7,
    )  # fmt: skip
    assert letter.data.value == "not json" and letter.data.error == "Envelope: not JSON"
    assert letter.data.headers == {"ce_correlationid": "RB-0HCK-9645-C57J-B5Q9"}
    assert letter.correlationid == "RB-0HCK-9645-C57J-B5Q9"


def test_dead_letter_names_the_service_given() -> None:
    """The same record dead-lettered by two services: each letter names its own service."""
    router = json.loads(dead_letter(Service.ROUTER, record(b"x"), "e")["message"])
    intake = json.loads(dead_letter(Service.INTAKE, record(b"x"), "e")["message"])
    assert (router["service"], intake["service"]) == ("router", "intake")


def test_dead_letter_headers_carry_the_error_cut_to_500_characters() -> None:
    """`x-error` says why, at most 500 characters of it."""
    headers = dead_letter(Service.ROUTER, record(b"x"), "E" * 800)["headers"]
    assert headers["x-error"] == "E" * 500


def test_dead_letter_carries_the_failed_records_trace_on() -> None:
    """The failed record's `traceparent` is the dead letter's, so the trace shows where it ended."""
    failed = record(b"x", headers=[("traceparent", TRACEPARENT.encode())])
    headers = dead_letter(Service.EVENTS, failed, "boom")["headers"]
    assert headers["traceparent"] == TRACEPARENT


def test_dead_letter_without_a_trace_adds_none() -> None:
    """No `traceparent` on the record: none set here (the publish middleware starts one)."""
    headers = dead_letter(Service.EVENTS, record(b"x"), "boom")["headers"]
    assert "traceparent" not in headers


async def test_send_dead_letter_publishes_the_letter_then_logs_where_the_record_was() -> None:
    """The service's dead letter goes to the publisher given; the log names the topic, partition
    and offset read, and at most 300 characters of the error."""
    sent: list[dict[str, Any]] = []

    class Publisher:
        async def publish(self, message: Any, **kwargs: Any) -> None:
            sent.append({"message": message, **kwargs})

    failed = record(b"not json", offset=41)
    with capture_logs() as logs:
        await send_dead_letter(Publisher(), Service.INTAKE, failed, "E" * 400)
    [args] = sent
    assert args["key"] == failed.key
    as_sent = [(name, value.encode()) for name, value in args["headers"].items()]
    letter = dead_letters(Service.INTAKE).read(args["message"], as_sent)
    assert (letter.data.service, letter.data.offset, letter.data.error) == ("intake", 41, "E" * 400)
    assert [(entry["event"], entry["log_level"]) for entry in logs] == [
        ("dead_lettered", "warning")
    ]
    assert {k: logs[0][k] for k in ("topic", "partition", "offset", "error")} == {
        "topic": "referrals.status", "partition": 2, "offset": 41, "error": "E" * 300,
    }  # fmt: skip
