"""Poison messages (not JSON, wrong schema, unknown association) on every consumed topic: each
lands on the consuming service's dead-letter topic with the error, and the good message after it
(same key, so same partition) is processed."""

import asyncio
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.topics import (
    APPLIED,
    DECISIONS,
    OVERRIDES,
    QUESTIONNAIRES,
    Service,
    Topic,
    all_topics,
)
from rebond_testing.probe import consumer_groups
from tests.faults.rebond_faultkit import (
    associations_file,
    committed,
    new_reference,
    produce,
    read_topics,
    record_figures,
    until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

GOLDEN = Path(__file__).resolve().parents[2] / "contracts" / "golden"

#: The services this test runs: every topic the registry says one of them reads is poisoned.
SERVICES = (Service.INTAKE, Service.ROUTER, Service.NOTIFIER, Service.EVENTS)
#: Every (service, topic) a service consumes, from the registry (`Topic.readers`, which the
#: ACLs are made of), so that a topic added there is poisoned here too.
CONSUMED: list[tuple[str, Topic]] = [
    (reader.value, topic)
    for topic in all_topics()
    for reader in topic.readers
    if reader in SERVICES
]


def _golden(topic: Topic, reference: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (GOLDEN / topic.event_type / "v1" / "example.json").read_text()
    )["data"]
    text = json.dumps(data).replace("RB-7K3M-Q9XA-2DFE-W8NB", reference)
    return json.loads(text)  # type: ignore[no-any-return]


def _event(topic: Topic, data: dict[str, Any], reference: str, raw: bytes | None = None) -> Any:
    """(topic, value, headers, key) of an event whose headers are right; `raw` replaces the value."""
    headers = {
        "ce_id": str(uuid.uuid4()), "ce_source": topic.source, "ce_type": topic.event_type,
        "ce_specversion": "1.0", "ce_time": "2026-11-26T10:00:00Z", "ce_subject": reference,
        "ce_correlationid": reference, "ce_schemaversion": str(topic.schema_version),
        "content-type": "application/json",
    }  # fmt: skip
    if raw is None:
        good = topic.envelope(topic.payload.model_validate(data), subject=reference,
                              correlationid=reference)  # fmt: skip
        return (
            topic.name,
            good.kafka_value(),
            [(k, v.encode()) for k, v in good.kafka_headers().items()],
            reference,
        )
    return (topic.name, raw, [(k, v.encode()) for k, v in headers.items()], reference)


def _poisons(topic: Topic, reference: str) -> list[Any]:
    """Not JSON, not the payload's schema, and, where the payload names an association, an
    association that does not exist. (A payload without one gets no third poison: a reader
    that reads only some fields, intake's view of a questionnaire, rightly ignores others.)"""
    data = _golden(topic, reference)
    ids = "|".join(re.escape(a.value) for a in AssociationId)
    unknown = re.sub(rf'"({ids})"', '"association-inconnue"', json.dumps(data))
    poisons = [
        _event(topic, data, reference, raw=b"\xff not json {"),
        _event(topic, data, reference, raw=json.dumps({"unexpected": True}).encode()),
    ]
    if unknown != json.dumps(data):
        poisons.append(_event(topic, data, reference, raw=unknown.encode()))
    return poisons


def test_poison_on_every_consumed_topic_is_dead_lettered_and_the_next_message_flows(  # type: ignore[no-untyped-def]
    module_broker, launch, folder: Path, smtp
) -> None:
    """The poisons of each (service, topic) reach deadletter.<service>; the good one after
    passes."""
    tag = str(time.time_ns())[-8:]
    groups = {svc.value: f"rebond-{svc.value}-poison-{tag}" for svc in SERVICES}
    bootstrap = module_broker.bootstrap
    launch("router", bootstrap, folder, group_id=groups["router"], log_level="WARNING")
    launch(
        "notifier", bootstrap, folder, group_id=groups["notifier"], smtp_port=str(smtp.port),
        associations_file=str(associations_file(folder)), log_level="WARNING",
    )  # fmt: skip
    launch("intake", bootstrap, folder, group_id=groups["intake"], log_level="WARNING")
    launch("events", bootstrap, folder, group_id=groups["events"], log_level="WARNING")

    plan: list[tuple[str, Topic, list[Any], Any]] = []
    for service, topic in CONSUMED:
        reference = new_reference()
        plan.append(
            (
                service,
                topic,
                _poisons(topic, reference),
                _event(topic, _golden(topic, reference), reference),
            )
        )
    # Topics read by several services get their poisons once: each reader must dead-letter them.
    to_send: dict[str, list[Any]] = {}
    for _, topic, poisons, good in plan:
        to_send.setdefault(topic.name, [*poisons, good])
    sent: dict[str, list[Any]] = {}
    for name, records in to_send.items():
        sent[name] = asyncio.run(produce(bootstrap, records))

    expected = {(svc, t.name, m.offset) for svc, t, _, _ in plan for m in sent[t.name][:-1]}

    def letters() -> set[tuple[str, str, int]]:
        seen = asyncio.run(read_topics(bootstrap, r"deadletter\..*", lambda s: False, within_s=2))
        found = set()
        for topic, _, _, value in seen.records:
            letter = json.loads(value)
            assert letter["error"], f"a dead letter without its error: {letter}"
            found.add((topic.split(".", 1)[1], letter["topic"], letter["offset"]))
        return found

    found: set[tuple[str, str, int]] = set()

    def all_found() -> bool:
        found.update(letters())
        return expected <= found

    until(all_found, within_s=60, every_s=1)
    missing = expected - found

    def flowed(service: str, topic: Topic) -> bool:
        """The service's groups (each group of its, whatever its suffix) committed past the
        good record; a topic read without a group (the router's `directory.overrides`, read
        from its start) shows the good record's effect instead: the override applied."""
        good = sent[topic.name][-1]
        if topic.compacted:

            def applied(seen: Any) -> bool:
                return any(good_override in value for _, _, _, value in seen.records)

            return applied(asyncio.run(read_topics(bootstrap, APPLIED.name, applied, 5, 0)))
        own = asyncio.run(consumer_groups(bootstrap, groups[service]))
        offsets = asyncio.run(committed(bootstrap, own))
        return offsets.get((topic.name, good.partition), -1) > good.offset

    good_override = json.loads(to_send[OVERRIDES.name][-1][1])["override_id"].encode()

    stuck = [
        (svc, t.name)
        for svc, t, _, _ in plan
        if not until(lambda svc=svc, t=t: flowed(svc, t), within_s=30)
    ]
    # The good questionnaire after the poisons is decided, and that decision is published as a referral.
    good_questionnaire = to_send[QUESTIONNAIRES.name][-1][3]
    outputs = asyncio.run(
        read_topics(
            bootstrap, r"routing\.decisions|referrals\.60000-rebonds",
            lambda s: good_questionnaire in s.ids_by_subject("referrals.60000-rebonds"),
            within_s=30, settle_s=0,
        )
    )  # fmt: skip
    record_figures(
        "poison",
        {
            "consumed_topic_readers": len(plan),
            "poisons_injected": len(expected),
            "dead_lettered": len(expected & found),
            "readers_stuck_after_poison": len(stuck),
        },
    )
    assert not missing, f"poisons not dead-lettered: {sorted(missing)}"
    assert not stuck, f"partitions that stopped after a poison: {stuck}"
    assert good_questionnaire in outputs.ids_by_subject(DECISIONS.name)
    assert good_questionnaire in outputs.ids_by_subject("referrals.60000-rebonds")
