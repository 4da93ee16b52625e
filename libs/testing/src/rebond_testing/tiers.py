"""Test tiers from what a test uses: nobody has to remember to mark a test.

A tier is a pytest marker set at collection from the fixtures in a test's closure (its own and
those they request, transitively: pytest's `fixturenames`) and from its parameters. Because the
closure is what pytest will actually set up, a test reaches a broker, a service process, a
browser or PostgreSQL only through a fixture named here, and so carries that tier's marker;
`make check` deselects by marker and cannot run a test that needs what it leaves out.

A fixture that asks for PostgreSQL only for some parameters (`request.getfixturevalue(...)` is
not in the closure) says so by its parameter: the value `"postgresql"` marks that instance.
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

#: Each tier's marker and the fixtures that put a test in it.
TIER_FIXTURES: Mapping[str, frozenset[str]] = {
    # a real Kafka broker: the session's, or one a fault test owns (and may kill)
    "kafka": frozenset(
        {
            "kafka_bootstrap",
            "kafka_secure",
            "_kafka_broker",
            "own_broker",
            "module_broker",
            "broker6",
        }
    ),
    # Rebond's services started as processes (`python -m rebond_<name>`)
    "services": frozenset(
        {
            "launch",
            "running_services",
            "privacy_pipeline",
            "association_pipeline",
            "notifier_process",
        }
    ),
    # Chromium driven by Playwright
    "browser": frozenset({"chromium_launch_options", "axe_source"}),
    # a PostgreSQL server (the session's cluster, or a fault test's own)
    "postgres": frozenset({"postgres_server", "postgres_url", "pg_cluster"}),
}

#: The parameter value by which a test instance asks for PostgreSQL (`sql_url` and its kin).
POSTGRES_PARAMETER = "postgresql"

#: What each marker means, as `pytest --markers` shows it.
DESCRIPTIONS: Mapping[str, str] = {
    "kafka": "needs a real Kafka broker (set from its fixtures; fails in CI when none is reachable)",
    "services": "starts Rebond's services as processes (set from its fixtures)",
    "browser": "drives Chromium (set from its fixtures)",
    "postgres": "needs a PostgreSQL server (set from its fixtures or a 'postgresql' parameter)",
    "faults": "fault suite (kills brokers, services, sinks); `make test-faults`",
}


def tiers_of(fixture_names: Iterable[str], parameters: Mapping[str, object]) -> set[str]:
    """The tier markers of a test whose closure is `fixture_names`, with `parameters`."""
    names = set(fixture_names)
    found = {tier for tier, fixtures in TIER_FIXTURES.items() if names & fixtures}
    if any(value == POSTGRES_PARAMETER for value in parameters.values()):
        found.add("postgres")
    return found


def distinct_node_ids(tests: Sequence[tuple[str, str]]) -> list[str]:
    """A node id for each of `tests` (`(node id, name)` pairs) that no other test has.

    pytest-xdist tells tests apart by node id, and of two with the same one a worker runs only
    one. schemathesis' `parametrize` gives one test per operation, each named after it
    (`test_api[GET /v1/events]`) but all with the function's node id; such a test gets its
    name in place of the function's, so their modules run on xdist like any other (whole, on
    one worker, with `--dist loadfile`). Two tests still alike after that are an error."""
    counts = Counter(node_id for node_id, _ in tests)
    ids = [
        f"{node_id.rpartition('::')[0]}::{name}" if counts[node_id] > 1 else node_id
        for node_id, name in tests
    ]
    if alike := sorted(node_id for node_id, n in Counter(ids).items() if n > 1):
        raise ValueError(f"tests with one node id, which pytest-xdist cannot tell apart: {alike}")
    return ids


#: Folders whose modules share processes started once for the folder (a package-scoped fixture:
#: tests/e2e's four services). pytest tears such a fixture down whenever the next test is
#: outside the folder, so the folder goes to one pytest-xdist worker as one unit, its modules
#: one after the other, instead of module by module between other modules' tests.
SHARED_FOLDERS = ("tests/e2e/",)


def work_unit(node_id: str) -> str:
    """The unit of work pytest-xdist hands one worker whole (`--dist loadfile`): the test's
    module, or the folder of `SHARED_FOLDERS` it is in."""
    module = node_id.split("::", 1)[0]
    return next((folder for folder in SHARED_FOLDERS if module.startswith(folder)), module)
