"""The deadline sweep (`Router.check_deadlines`, every `deadline_check_interval_s`) reads only
what is due. Each of its three queries searches an index by status and by its own time, so a
round costs the same with ten referrals open or a hundred thousand. With one index on status,
each query read every open referral: 40 ms a query at 33,000 on SQLite, and the bench's idle
router grew with its history (README, "Performance")."""

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, event

from rebond_router.lifecycle import Router
from rebond_sql.migrations import sync_url


def _sweep_queries(sent: list[tuple[str, Any]]) -> dict[str, tuple[str, Any]]:
    """The sweep's reads of referrals, by the time each orders by."""
    queries = {}
    ordered_by = re.compile(r"FROM router_referrals .*ORDER BY router_referrals\.(\w+)")
    for statement, parameters in sent:
        if match := ordered_by.search(" ".join(statement.split())):
            queries[match[1]] = (statement, parameters)
    return queries


def _searched_by(connection: sa.Connection, statement: str, parameters: Any) -> str:
    """What the query's index search is bounded by, as the database plans it: SQLite's
    `(status=? AND deadline<?)`, PostgreSQL's `Index Cond` (sequential scans off, as a large
    table would have them; an empty one is read whole whatever its indexes)."""
    if connection.dialect.name == "sqlite":
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return " ".join(str(row[-1]) for row in plan)
    connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    plan = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
    return " ".join(row[0] for row in plan if "Index Cond" in row[0])


async def test_each_sweep_query_searches_by_status_and_its_own_time(
    router: Router, sql_url: str
) -> None:
    sent: list[tuple[str, Any]] = []

    def keep(_conn: object, _cursor: object, statement: str, parameters: Any, *_: object) -> None:
        sent.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", keep)
    try:
        await router.check_deadlines()
    finally:
        event.remove(Engine, "before_cursor_execute", keep)
    queries = _sweep_queries(sent)
    assert set(queries) == {"deadline", "remind_at", "follow_up_at"}

    engine = sa.create_engine(sync_url(sql_url))
    try:
        with engine.begin() as connection:
            for time, (statement, parameters) in queries.items():
                bounds = _searched_by(connection, statement, parameters)
                if connection.dialect.name == "sqlite":
                    assert f"status=? AND {time}<?" in bounds, (time, bounds)
                else:
                    assert "status" in bounds and f"{time} <=" in bounds, (time, bounds)
    finally:
        engine.dispose()
