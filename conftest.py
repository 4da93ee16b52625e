"""Test fixtures shared by every layer come from `rebond_testing.plugin` (libs/testing):

- tiers: each test is marked `kafka`, `services`, `browser` or `postgres` from the fixtures it
  uses (`faults` is written by hand), so `make check` deselects what needs a broker or a service
  process and nobody has to remember to mark;
- a real Kafka broker (`kafka_bootstrap`, `kafka_secure`), one per session, from, in order:
  KAFKA_BOOTSTRAP_SERVERS; testcontainers' Kafka when a Docker engine answers; else a local
  secured broker started from deploy/kafka/kafkactl.py on free ports and stopped at the end;
- a PostgreSQL cluster per session (`postgres_server`, `postgres_url`, `sql_url`);
- Chromium and axe-core for the browser tests.

With CI=true a test whose broker, database or program is missing fails; elsewhere it is skipped
with the reason.
"""

pytest_plugins = ["rebond_testing.plugin", "pytester"]
