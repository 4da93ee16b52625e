"""For tests: an effect that must wait for another transaction, and a store's rows."""

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, MetaData, select

from rebond_sql import Database, Work

T = TypeVar("T")


async def waits_for(
    database: Database, steps: Sequence[Work[Any]], effect: Coroutine[Any, Any, T]
) -> T:
    """Run `steps` in a transaction and, while it is open, start `effect`: it must not finish
    within half a second (it waits for that transaction); then commit, and return what `effect`
    returns once it could go on."""
    task: asyncio.Task[T] | None = None
    try:
        async with database.transaction() as transaction:
            for step in steps:
                await transaction.run(step)
            task = asyncio.create_task(effect)
            done, _ = await asyncio.wait([task], timeout=0.5)
            assert not done, "it went ahead while the other transaction was under way"
        return await asyncio.wait_for(task, timeout=10)
    finally:
        if task is not None and not task.done():
            task.cancel()


async def rows_of(database: Database, metadata: MetaData) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of `metadata`, by table name."""

    def dump(connection: Connection) -> dict[str, list[tuple[Any, ...]]]:
        return {
            table.name: [tuple(row) for row in connection.execute(select(table))]
            for table in metadata.sorted_tables
        }

    return await database.run(dump)
