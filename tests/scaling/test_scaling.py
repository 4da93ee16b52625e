"""Scaling proof (issue 8 item 5): 3 routers and 2 notifiers share 6 partitions; one router is
SIGKILLed mid-run; every questionnaire still ends as exactly one referral, and the rebalance is
timed (from the kill until the partitions the dead router held are committed again)."""

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.structs import TopicPartition

from rebond_contracts.topics import QUESTIONNAIRES
from rebond_testing import MailSink
from rebond_testing.postgres import new_database
from tests.faults.rebond_faultkit import (
    OwnBroker,
    associations_file,
    produce,
    questionnaire_records,
    read_topics,
    record_figures,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

QUESTIONNAIRE_COUNT = 5000
PARTITIONS = 6


@pytest.fixture
def broker6() -> Any:
    broker = OwnBroker(partitions=PARTITIONS)
    try:
        broker.start()
    except RuntimeError as error:
        broker.stop()
        pytest.fail(f"could not start a 6-partition broker: {error}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()


async def _committed(bootstrap: str, group: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {
            tp.partition: meta.offset
            for tp, meta in offsets.items()
            if tp.topic == QUESTIONNAIRES.name
        }
    finally:
        await admin.close()


async def _assignment(bootstrap: str, group: str) -> dict[str, set[int]]:
    """Questionnaire partitions per member of `group` (members of other subscriptions left out)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        found: dict[str, set[int]] = {}
        for described in response.groups:
            for member in described[5]:
                if not member[-1]:
                    continue
                assignment = ConsumerProtocolMemberAssignment.decode(member[-1])
                parts = {
                    tp.partition
                    for tp in assignment.partitions()
                    if tp.topic == QUESTIONNAIRES.name
                }
                if parts:
                    found[member[0]] = parts
        return found
    finally:
        await admin.close()


async def _ends(bootstrap: str) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        parts = [TopicPartition(QUESTIONNAIRES.name, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(parts)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


def test_three_routers_two_notifiers_lose_nothing_when_one_router_is_killed(  # type: ignore[no-untyped-def]
    broker6, launch, postgres_server, folder: Path
) -> None:
    """5,000 questionnaires on 6 partitions, one of 3 routers SIGKILLed: one referral each."""
    databases = {svc: new_database(postgres_server) for svc in ("router", "notifier")}
    smtp = MailSink().start()
    tag = str(time.time_ns())[-8:]
    router_group, notifier_group = f"rebond-router.scale-{tag}", f"rebond-notifier.scale-{tag}"
    common = {"log_level": "WARNING"}
    routers = [
        launch(
            "router",
            broker6.bootstrap,
            folder,
            group_id=router_group,
            database_url=databases["router"],
            **common,
        )
        for _ in range(3)
    ]
    assocs = associations_file(folder)
    for _ in range(2):
        launch(
            "notifier", broker6.bootstrap, folder, group_id=notifier_group,
            database_url=databases["notifier"], smtp_port=str(smtp.port),
            associations_file=str(assocs), **common,
        )  # fmt: skip
    try:
        references, records = questionnaire_records(QUESTIONNAIRE_COUNT)
        started = time.monotonic()
        asyncio.run(produce(broker6.bootstrap, records))

        # Kill one router once the run is well under way.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            committed = asyncio.run(_committed(broker6.bootstrap, router_group))
            if sum(committed.values()) >= QUESTIONNAIRE_COUNT * 0.1:
                break
            time.sleep(0.3)
        before = asyncio.run(_assignment(broker6.bootstrap, router_group))
        at_kill = asyncio.run(_committed(broker6.bootstrap, router_group))
        killed_at = time.monotonic()
        routers[0].process.kill()
        routers[0].process.wait()

        # The group notices the dead member (session timeout), then hands its partitions over.
        after: dict[str, set[int]] = {}
        while time.monotonic() - killed_at < 60:
            after = asyncio.run(_assignment(broker6.bootstrap, router_group))
            if (
                after
                and set().union(*after.values()) == set(range(PARTITIONS))
                and len(after) == len(before) - 1
            ):
                break
            time.sleep(0.25)
        reassigned_s = time.monotonic() - killed_at
        orphaned = set().union(*(parts for member, parts in before.items() if member not in after))
        assert orphaned, f"no member of {before} left the group (now {after})"

        # ... and they are consumed again: their committed offsets move (or they are done).
        ends = asyncio.run(_ends(broker6.bootstrap))
        moved_at: dict[int, float] = {}
        while orphaned - moved_at.keys() and time.monotonic() - killed_at < 300:
            now = asyncio.run(_committed(broker6.bootstrap, router_group))
            for p in orphaned - moved_at.keys():
                if now.get(p, 0) > at_kill.get(p, 0) or now.get(p, 0) >= ends[p]:
                    moved_at[p] = time.monotonic()
            time.sleep(0.25)
        assert orphaned <= moved_at.keys(), (
            f"partitions {orphaned - moved_at.keys()} of the killed router never consumed again "
            f"(at kill {at_kill}, ends {ends}; logs in {folder})"
        )
        consumed_again_s = max(moved_at.values()) - killed_at

        wanted = set(references)
        seen = asyncio.run(
            read_topics(
                broker6.bootstrap, r"referrals\.(sos-entrepreneur|second-souffle|60000-rebonds|re-creer|apesa)",
                lambda s: wanted <= s.ids_by_subject("referrals.").keys(), within_s=360,
                settle_s=3,
            )
        )  # fmt: skip
        by_subject = seen.ids_by_subject("referrals.")
        missing = wanted - by_subject.keys()
        doubled = {ref: ids for ref, ids in by_subject.items() if len(ids) > 1}
        raw = len(seen.on("referrals."))
        figures = {
            "questionnaires": QUESTIONNAIRE_COUNT,
            "partitions": PARTITIONS,
            "routers": 3,
            "notifiers": 2,
            "routers_killed": 1,
            "referrals_distinct": len(by_subject.keys() & wanted),
            "lost": len(missing),
            "distinct_referrals_more_than_one": len(doubled),
            "raw_duplicate_records": raw - sum(len(ids) for ids in by_subject.values()),
            "rebalance_s": round(reassigned_s, 2),
            "orphaned_partitions_consumed_again_s": round(consumed_again_s, 2),
            "partitions_taken_over": sorted(orphaned),
            "run_s": round(time.monotonic() - started, 1),
        }
        record_figures("scaling", figures)
        assert not missing, f"{len(missing)} questionnaires without a referral"
        assert not doubled, f"{len(doubled)} references with several distinct referrals"
    finally:
        smtp.stop()
