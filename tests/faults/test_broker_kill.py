"""The Kafka broker SIGKILLed while 2,000 submissions are posted, then restarted: every `202`
ends as exactly one decision (one referral when sharing was consented), the outage answers `503`
(never `500`), nothing acknowledged is lost."""

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from rebond_faultkit import questionnaire, read_topics, record_figures  # type: ignore[import-not-found]

from rebond_contracts.topics import DECISIONS

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

SUBMISSIONS = 2000
RATE_PER_S = 50.0
KILL_AFTER_S = 8.0
OUTAGE_S = 6.0


async def _post_all(
    intake_url: str, broker
) -> tuple[list[tuple[int, int, str | None]], dict[str, float]]:  # type: ignore[no-untyped-def]
    """Post SUBMISSIONS at a steady rate; kill the broker after KILL_AFTER_S, restart it after
    OUTAGE_S. Returns (index, status, reference) per submission and the outage's times."""
    results: list[tuple[int, int, str | None]] = []
    times: dict[str, float] = {}

    async def one(client: httpx.AsyncClient, index: int) -> None:
        body = questionnaire(consenting=index % 5 != 0, email=f"p{index}@example.org")
        try:
            reply = await client.post(f"{intake_url}/v1/submissions", json=body)
        except httpx.HTTPError:
            results.append((index, 0, None))
            return
        reference = reply.json().get("reference") if reply.status_code == 202 else None
        results.append((index, reply.status_code, reference))

    async def outage() -> None:
        await asyncio.sleep(KILL_AFTER_S)
        times["killed"] = time.monotonic()
        await asyncio.to_thread(broker.kill)
        await asyncio.sleep(OUTAGE_S)
        times["restarting"] = time.monotonic()
        await asyncio.to_thread(broker.start)
        times["back"] = time.monotonic()

    limits = httpx.Limits(max_connections=400, max_keepalive_connections=50)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        start = time.monotonic()
        fault = asyncio.create_task(outage())
        tasks = []
        for index in range(SUBMISSIONS):
            await asyncio.sleep(max(0.0, start + index / RATE_PER_S - time.monotonic()))
            tasks.append(asyncio.create_task(one(client, index)))
        await asyncio.gather(*tasks)
        await fault
    return results, times


def test_broker_sigkill_during_2000_submissions_loses_no_acknowledged_one(  # type: ignore[no-untyped-def]
    own_broker, launch, folder: Path
) -> None:
    """Each 202 gives exactly one decision (referral when consented); the outage gives 503s."""
    tag = str(time.time_ns())[-8:]
    intake = launch(
        "intake", own_broker.bootstrap, folder, rate_limit_per_minute="0",
        publish_timeout_s="2", group_id=f"rebond-intake.fault-{tag}", log_level="WARNING",
    )  # fmt: skip
    launch(
        "router", own_broker.bootstrap, folder, group_id=f"rebond-router.fault-{tag}",
        log_level="WARNING",
    )  # fmt: skip

    results, times = asyncio.run(_post_all(intake.url, own_broker))
    statuses = Counter(status for _, status, _ in results)
    accepted = {ref: index for index, status, ref in results if status == 202 and ref}

    seen = asyncio.run(
        read_topics(
            own_broker.bootstrap, r"routing\.decisions",
            lambda s: accepted.keys() <= s.ids_by_subject(DECISIONS.name).keys(),
            within_s=150, settle_s=3,
        )
    )  # fmt: skip
    decisions = seen.ids_by_subject(DECISIONS.name)
    referrals: dict[str, set[str]] = {}
    for _, _, headers, value in seen.on(DECISIONS.name):
        referral = json.loads(value).get("referral")
        referrals.setdefault(headers["ce_subject"], set())
        if referral is not None:
            referrals[headers["ce_subject"]].add(referral["referral_id"])

    lost = [ref for ref in accepted if ref not in decisions]
    several = [ref for ref in accepted if len(decisions.get(ref, ())) > 1]
    consenting = {ref for ref, index in accepted.items() if index % 5 != 0}
    wrong_referrals = [
        ref for ref in accepted
        if len(referrals.get(ref, ())) != (1 if ref in consenting else 0)
    ]  # fmt: skip
    figures = {
        "submissions": SUBMISSIONS,
        "accepted_202": len(accepted),
        "unavailable_503": statuses.get(503, 0),
        "other_statuses": {str(k): v for k, v in statuses.items() if k not in (202, 503)},
        "decisions_for_202": len(accepted) - len(lost),
        "referrals_for_202": sum(1 for ref in consenting if referrals.get(ref)),
        "lost": len(lost),
        "several_decisions": len(several),
        "raw_duplicate_records": len(seen.on(DECISIONS.name))
        - sum(len(ids) for ids in decisions.values()),
        "outage_s": round(times["back"] - times["killed"], 1),
    }
    record_figures("broker_kill", figures)
    assert statuses.get(503, 0) > 0, "the outage produced no 503: the broker was not down"
    assert set(statuses) <= {202, 503}, f"statuses other than 202/503: {statuses}"
    assert not lost, f"{len(lost)} acknowledged submissions have no decision"
    assert not several, f"{len(several)} submissions with several decisions"
    assert not wrong_referrals, f"{len(wrong_referrals)} with a wrong number of referrals"
