"""The throwaway PostgreSQL cluster: a crash-safe one stopped at once keeps every commit (the
fault suite stops it under the router), and comes back on its port."""

import psycopg

from rebond_testing.postgres import PostgresCluster


def test_a_crash_safe_cluster_stopped_at_once_keeps_its_commits(
    pg_cluster: PostgresCluster,
) -> None:
    """Rows committed just before an immediate stop are there after a start on the same port."""
    url = pg_cluster.database("kept").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE notes (n int)")
        for n in range(50):
            connection.execute("INSERT INTO notes VALUES (%s)", (n,))
    port = pg_cluster.port
    pg_cluster.stop()
    pg_cluster.start()
    assert pg_cluster.port == port
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT count(*) FROM notes").fetchone() == (50,)
