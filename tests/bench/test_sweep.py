"""The sweep bench (bench/sweep.py) times the reads of a real sweep over referrals that sweep
would take once due: if its rows were not open ones (another status, no deadline), the queries
would skip them and the bench would time nothing."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import sweep
from rebond_router.store import Store


async def _due(url: str, after: timedelta) -> tuple[int, int]:
    store = Store.from_url(url)
    try:
        now = datetime.now(UTC) + after
        async with store.transaction() as tx:
            return len(await tx.due(now, 100)), len(await tx.reminders_due(now, 100))
    finally:
        await store.close()


def test_the_bench_times_a_sweep_over_open_referrals_it_takes_once_due(tmp_path: Path) -> None:
    result = sweep.measure(40, 2, tmp_path)
    assert result["open"] == 40
    assert result["before_ms"] > 0 and result["after_ms"] > 0
    url = f"sqlite+aiosqlite:///{tmp_path / 'router-40.db'}"
    assert asyncio.run(_due(url, timedelta(days=1, hours=1))) == (0, 40)  # reminders
    assert asyncio.run(_due(url, timedelta(days=2, hours=1))) == (40, 0)  # expiries
