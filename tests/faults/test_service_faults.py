"""Services and their side channels failing mid-stream: a router and a notifier SIGKILLed and
restarted, the SMTP server down for a while, a webhook answering 500 then timing out. Nothing is
lost and nothing reaches an association or a person twice."""

import asyncio
import json
import time
from itertools import pairwise
from pathlib import Path

import pytest

from rebond_contracts.topics import DELIVERIES
from tests.faults.rebond_faultkit import (
    ASSOCIATIONS,
    associations_file,
    outcome,
    produce,
    questionnaire_records,
    read_topics,
    record_figures,
    until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

#: Fast retries, short leases: the faults below heal within the test's minute.
FAST_NOTIFIER = {
    "retry_base_s": "0.5", "retry_cap_s": "2", "max_attempts": "30", "lease_s": "3",
    "poll_interval_s": "0.2", "webhook_timeout_s": "1", "log_level": "WARNING",
}  # fmt: skip


def test_router_and_notifier_sigkilled_mid_stream_lose_and_double_nothing(  # type: ignore[no-untyped-def]
    own_broker, launch, folder: Path, smtp, hooks
) -> None:
    """Each questionnaire: one referral, one e-mail each way, one webhook, despite the kills.

    "One" counts distinct delivery ids: a call the notifier made just before SIGKILL, and could
    not record, is made again after the restart under the same id (reported, not hidden)."""
    tag = str(time.time_ns())[-8:]
    bootstrap = own_broker.bootstrap
    assocs = associations_file(folder, {a: f"{hooks.url}/ok" for a in ASSOCIATIONS})
    router_env = {"group_id": f"rebond-router.kill-{tag}", "log_level": "WARNING",
                  "outbox_stale_after_s": "2", "deadline_check_interval_s": "1"}  # fmt: skip
    notifier_env = {"group_id": f"rebond-notifier.kill-{tag}", "smtp_port": str(smtp.port),
                    "associations_file": str(assocs), **FAST_NOTIFIER}  # fmt: skip
    router = launch("router", bootstrap, folder, **router_env)
    notifier = launch("notifier", bootstrap, folder, **notifier_env)

    references, records = questionnaire_records(200)
    asyncio.run(produce(bootstrap, records))
    until(lambda: len(smtp.received()) >= 40, within_s=60)
    router.process.kill()
    notifier.process.kill()
    killed_with = len(smtp.received())
    router.process.wait()
    notifier.process.wait()
    launch("router", bootstrap, folder, **router_env)
    launch("notifier", bootstrap, folder, **notifier_env)

    found = outcome(bootstrap, references, smtp, hooks, within_s=120)
    missing = found.missing(references, webhooks=True)
    doubled = found.doubled(references)
    record_figures(
        "router_notifier_kill",
        {"questionnaires": len(references), "mails_before_kill": killed_with,
         "lost": len(missing), "duplicates_delivered": sum(doubled.values()), **doubled,
         **found.repeated(references), "raw_referral_records": found.raw_referrals},
    )  # fmt: skip
    assert not missing, f"{len(missing)} questionnaires not fully delivered"
    assert not any(doubled.values()), f"delivered twice: {doubled}"


def test_smtp_down_for_a_while_then_every_mail_goes_out_once(  # type: ignore[no-untyped-def]
    own_broker, launch, folder: Path, smtp
) -> None:
    """Mail queued while SMTP refuses connections goes out once it is back, once each."""
    tag = str(time.time_ns())[-8:]
    bootstrap = own_broker.bootstrap
    launch("router", bootstrap, folder, group_id=f"rebond-router.smtp-{tag}", log_level="WARNING")
    launch(
        "notifier", bootstrap, folder, group_id=f"rebond-notifier.smtp-{tag}",
        smtp_port=str(smtp.port), associations_file=str(associations_file(folder)),
        **FAST_NOTIFIER,
    )  # fmt: skip
    smtp.stop()
    references, records = questionnaire_records(60)
    asyncio.run(produce(bootstrap, records))
    referrals = asyncio.run(
        read_topics(
            bootstrap, r"referrals\..*",
            lambda s: set(references) <= s.ids_by_subject("referrals.").keys(), within_s=60,
            settle_s=0,
        )
    )  # fmt: skip
    assert set(references) <= referrals.ids_by_subject("referrals.").keys()
    time.sleep(6)  # several attempts fail while the server is down
    assert smtp.received() == []
    smtp.start()

    found = outcome(bootstrap, references, smtp, None, within_s=90)
    missing = found.missing(references)
    doubled = found.doubled(references)
    record_figures(
        "smtp_down",
        {"questionnaires": len(references), "smtp_down_s": 6, "lost": len(missing),
         "duplicates_delivered": sum(doubled.values()), **doubled},
    )  # fmt: skip
    assert not missing, f"{len(missing)} questionnaires without both e-mails"
    assert not any(doubled.values()), f"delivered twice: {doubled}"


def test_failing_webhook_backs_off_then_dead_letters_while_others_are_served(  # type: ignore[no-untyped-def]
    own_broker, launch, folder: Path, smtp, hooks
) -> None:
    """500s then timeouts: spaced retries, then a dead-lettered outcome; other hooks once each."""
    tag = str(time.time_ns())[-8:]
    bootstrap = own_broker.bootstrap
    hooks.modes["/failing"] = "500"
    webhooks = {a: f"{hooks.url}/ok" for a in ASSOCIATIONS} | {
        "60000-rebonds": f"{hooks.url}/failing"
    }
    launch("router", bootstrap, folder, group_id=f"rebond-router.hook-{tag}", log_level="WARNING")
    launch(
        "notifier", bootstrap, folder, group_id=f"rebond-notifier.hook-{tag}",
        smtp_port=str(smtp.port), associations_file=str(associations_file(folder, webhooks)),
        **{**FAST_NOTIFIER, "max_attempts": "5"},
    )  # fmt: skip
    failing_refs, failing = questionnaire_records(1)  # after a liquidation: 60 000 rebonds
    other_refs, others = questionnaire_records(10, stage="receivership")
    asyncio.run(produce(bootstrap, [*failing, *others]))
    until(lambda: len(hooks.on("/failing")) >= 2, within_s=60)
    hooks.modes["/failing"] = "hang"  # from now on it times out

    def dead_lettered() -> bool:
        seen = asyncio.run(read_topics(bootstrap, DELIVERIES.name, lambda s: False, within_s=2))
        return any(
            json.loads(value)["outcome"] == "dead_lettered"
            and json.loads(value)["channel"] == "webhook"
            for _, key, _, value in seen.records if key == failing_refs[0]
        )  # fmt: skip

    assert until(dead_lettered, within_s=90, every_s=1), (
        "the failing webhook was never dead-lettered"
    )
    calls = [call.at for call in hooks.on("/failing")]
    gaps = [round(b - a, 2) for a, b in pairwise(calls)]
    served = outcome(bootstrap, other_refs, smtp, hooks, within_s=60)
    record_figures(
        "webhook_failing",
        {"failing_webhook_calls": len(calls), "gaps_s": gaps,
         "others": len(other_refs), "others_missing": len(served.missing(other_refs, webhooks=True)),
         "others_doubled": sum(served.doubled(other_refs).values())},
    )  # fmt: skip
    assert len(calls) == 5, f"{len(calls)} calls to the failing webhook, 5 attempts expected"
    assert gaps[-1] > gaps[0] * 2, f"no backoff between attempts: {gaps}"
    assert not served.missing(other_refs, webhooks=True)
    assert not any(served.doubled(other_refs).values())
