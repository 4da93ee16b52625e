"""The router's deadline sweep with many referrals open, before and after its indexes.

    python bench/sweep.py [--open 1000 10000 100000] [--rounds 20]

Every `deadline_check_interval_s` (30 s), an idle router runs one sweep: three queries for the
referrals whose deadline, reminder or follow-up has come (`Router.check_deadlines`). For each
count of open referrals (offered, none due: the bench's history, where no association
answers), a SQLite store is migrated to 0006 (one index on status, one on each time: the
baseline), filled, and timed; then migrated to the newest revision (an index on status and
each query's time) and timed again, the same rows. Writes bench/results/sweep.json: the
median sweep in milliseconds, both ways, and their ratio.
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert

from rebond_router.directory import load_directory
from rebond_router.lifecycle import Router
from rebond_router.referral import State, Track
from rebond_router.store import MIGRATIONS, Store, referrals
from rebond_sql.migrations import sync_url, upgrade
from rebond_sql.outbox import Message

RESULTS = Path(__file__).resolve().parent / "results"
BASELINE = "0006"


#: A candidate as the router keeps it (about 800 bytes of JSON; a bench history's referral
#: kept one or two, with a template of about 1,200 bytes). A sweep that reads every open
#: referral reads their rows, so their size is part of its cost: at 100,000 referrals, 48 ms
#: with rows of only their columns' minimum, 260 ms with these; on the store a bench history
#: of 100,000 left (465 MB), 115 ms for each of the two queries over open referrals.
_SCORE = {
    "association_id": "second-souffle", "needs": 2.0, "region": 1.5, "size": 1.0,
    "capacity": 1.0, "distress": 0.0, "total": 5.5, "weekly_capacity": 20,
    "offered_this_week": 0, "response_deadline_days": 10.0, "override_id": None,
}  # fmt: skip
_REASON = {"code": "region_antenna", "fr": "une antenne dans votre région " * 2, "en": "x" * 60}
_CANDIDATE = {"association": "second-souffle", "score": _SCORE, "reasons": [_REASON] * 4}
_TEMPLATE = json.dumps({"contact": {"email": "personne@example.org"}, "message": "m" * 1100})


def _rows(count: int, now: datetime) -> list[dict[str, Any]]:
    """`count` offered referrals, due in two days, their reminder in one (none due now), each
    the size of a bench history's."""
    offered = {
        "track": Track.MAIN.value, "rule_set_version": "bench", "urgent": False,
        "status": State.OFFERED.value, "attempt": 1, "holder": "second-souffle",
        "deadline": now + timedelta(days=2), "remind_at": now + timedelta(days=1),
        "reminded": False, "candidates": [_CANDIDATE] * 2, "scores": [_SCORE] * 2,
        "tried": [], "template": _TEMPLATE, "version": 1, "updated_at": now,
    }  # fmt: skip
    return [
        {
            **offered,
            "reference": f"RB-BENCH-{index:012d}",
            "decision_id": f"decision-{index}",
            "correlation_id": f"RB-BENCH-{index:012d}",
            "referral_id": f"referral-{index}",
        }
        for index in range(count)
    ]


async def _sweep_ms(url: str, now: datetime, rounds: int) -> float:
    """The median time of `rounds` sweeps (`Router.check_deadlines`) that find nothing due."""
    store = Store.from_url(url)
    await store.start()
    router = Router(
        store, store.relay(_nothing_to_send, lambda: now), load_directory(), lambda: now
    )
    times = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            assert await router.check_deadlines() == 0
            times.append((time.perf_counter() - started) * 1000)
    finally:
        await store.close()
    return statistics.median(times)


async def _nothing_to_send(message: Message) -> "asyncio.Future[None]":
    raise AssertionError(f"a sweep that finds nothing due published {message.subject}")


def measure(count: int, rounds: int, folder: Path) -> dict[str, float]:
    url = f"sqlite+aiosqlite:///{folder / f'router-{count}.db'}"
    now = datetime.now(UTC)
    upgrade(url, MIGRATIONS, BASELINE)
    engine = create_engine(sync_url(url))
    with engine.begin() as connection:
        connection.execute(insert(referrals), _rows(count, now))
    engine.dispose()
    before = asyncio.run(_sweep_ms(url, now, rounds))
    upgrade(url, MIGRATIONS)
    after = asyncio.run(_sweep_ms(url, now, rounds))
    return {
        "open": count, "before_ms": round(before, 3), "after_ms": round(after, 3),
        "before_over_after": round(before / after, 1),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--open", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "baseline_revision": BASELINE,
        "rounds": args.rounds,
        "sweeps": [],
    }
    with tempfile.TemporaryDirectory(prefix="rebond-sweep-") as folder:
        for count in args.open:
            result = measure(count, args.rounds, Path(folder))
            print(json.dumps(result), flush=True)
            results["sweeps"].append(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sweep.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
