"""The services' database unavailable: each service with a store on one PostgreSQL, which the test
stops. The router says so clearly (logs, `/readyz` 503), holds its partitions while it retries,
and once the database is back every questionnaire gets exactly one decision and none is
dead-lettered; every other service's `/readyz` answers 503 meanwhile, and 200 again after."""

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from rebond_contracts.topics import DECISIONS
from tests.faults.rebond_faultkit import (
    produce,
    questionnaire_records,
    read_topics,
    record_figures,
    until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

OUTAGE_S = 8.0


def _send(bootstrap: str, count: int) -> list[str]:
    references, records = questionnaire_records(count)
    asyncio.run(produce(bootstrap, records))
    return references


def _ready(url: str) -> int:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def test_a_database_down_is_reported_and_recovered_from_without_loss(  # type: ignore[no-untyped-def]
    module_broker, launch, folder: Path, pg_cluster
) -> None:
    """PostgreSQL stopped: /readyz 503 and clear errors; restarted: every decision, once."""
    bootstrap = module_broker.bootstrap
    tag = str(time.time_ns())[-8:]
    router = launch(
        "router", bootstrap, folder, group_id=f"rebond-router.db-{tag}",
        database_url=pg_cluster.database("router"),
        # Hold on through the outage: enough tries (capped 1 s apart) to outlast it.
        retry_attempts="60", retry_backoff_s="0.2", retry_backoff_max_s="1",
    )  # fmt: skip
    # The others' readiness pings their store too (`answers("store", …)` in each `build()`).
    others = [
        launch(name, bootstrap, folder, database_url=pg_cluster.database(name))
        for name in ("intake", "notifier", "events", "coordination")
    ]
    before = _send(bootstrap, 20)
    seen = asyncio.run(
        read_topics(bootstrap, r"routing\.decisions",
                    lambda s: set(before) <= s.ids_by_subject(DECISIONS.name).keys(), within_s=60)
    )  # fmt: skip
    assert set(before) <= seen.ids_by_subject(DECISIONS.name).keys()

    pg_cluster.stop()
    during = _send(bootstrap, 30)
    not_ready = until(lambda: _ready(router.url) == 503, within_s=15)
    others_not_ready = {s.name: until(lambda s=s: _ready(s.url) == 503, 15) for s in others}
    time.sleep(OUTAGE_S)
    errors_logged = router.log.read_text().count("OperationalError")
    pg_cluster.start()
    ready_again = until(lambda: _ready(router.url) == 200, within_s=30)
    others_ready_again = {s.name: until(lambda s=s: _ready(s.url) == 200, 30) for s in others}

    everyone = [*before, *during]
    seen = asyncio.run(
        read_topics(
            bootstrap, r"routing\.decisions|deadletter\.router",
            lambda s: set(everyone) <= s.ids_by_subject(DECISIONS.name).keys(), within_s=90,
        )
    )  # fmt: skip
    decisions = seen.ids_by_subject(DECISIONS.name)
    lost = [ref for ref in everyone if ref not in decisions]
    several = [ref for ref in everyone if len(decisions.get(ref, ())) > 1]
    dead = [r for r in seen.on("deadletter.router") if r[1] in set(everyone)]
    record_figures(
        "database_down",
        {"questionnaires": len(everyone), "during_outage": len(during), "outage_s": OUTAGE_S,
         "readyz_503_during_outage": bool(not_ready), "readyz_200_after": bool(ready_again),
         "errors_logged": errors_logged, "lost": len(lost), "several_decisions": len(several),
         "dead_lettered": len(dead), "others_readyz_503_during_outage": others_not_ready,
         "others_readyz_200_after": others_ready_again},
    )  # fmt: skip
    assert not_ready, "/readyz kept saying ready while the database was down"
    assert errors_logged > 0, "the router did not log the database error"
    assert ready_again, "/readyz did not come back once the database was back"
    assert all(others_not_ready.values()), f"/readyz said ready, database down: {others_not_ready}"
    assert all(others_ready_again.values()), f"/readyz did not come back: {others_ready_again}"
    assert not lost and not dead, f"lost {len(lost)}, dead-lettered {len(dead)}"
    assert not several, f"{len(several)} questionnaires decided twice"
