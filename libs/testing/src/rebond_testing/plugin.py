"""The pytest plugin every layer shares (the root `conftest.py` loads it): the tier markers, the
session's Kafka broker, the session's PostgreSQL cluster, and Chromium with axe-core.

Each fixture here is session-scoped where starting the thing costs seconds (a broker, a
cluster): started once, the first time a test asks for it, and never when no selected test
does (so `make check` starts neither a broker nor a cluster). Tests keep out of each other's way
by their own names, not by their own servers: a topic, group or database of their own.
"""

import gc
import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rebond_testing.kafka import Broker, Kafkactl, SecureKafka, session_broker
from rebond_testing.migrated import MigratedOnce
from rebond_testing.needs import unavailable
from rebond_testing.postgres import PostgresCluster, new_database
from rebond_testing.tiers import DESCRIPTIONS, distinct_node_ids, tiers_of, work_unit

# --- tiers ----------------------------------------------------------------------------------

#: The cyclic garbage collector's thresholds in a test process (Python's are 700, 10, 10). A
#: test process tracks 440,000 objects once collected (every service imported, pytest's items,
#: hypothesis' strategies), more as its tests run, and each full collection walks them all:
#: with Python's thresholds a `make check` worker collected in full about 20 times, 15 % of its
#: CPU in the collector. Collecting the youngest generation every 10,000 allocations instead of
#: 700 makes every generation's collections 14 times rarer: measured on 2 cores, `make check`'s
#: tests spent 5.8 to 6.7 s of CPU in the collector instead of 15.5, a worker's peak memory
#: 380 to 460 MB against 380 to 410. No test waits on the collector: what a test leaves to it
#: is collected explicitly where that is checked (`rebond_testing.leaks`).
GC_THRESHOLDS = (10_000, 10, 10)


def pytest_configure(config: pytest.Config) -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    for marker, description in DESCRIPTIONS.items():
        config.addinivalue_line("markers", f"{marker}: {description}")
    # Alembic loaded in every test process, so that a service started in a test migrates in
    # that process, not in a child interpreter (`rebond_sql.migrations.upgrade_apart`), which
    # would cost each start a second. The child is tested on its own, and runs in every
    # service process of the services tier.
    importlib.import_module("alembic")
    config.addinivalue_line(
        "markers",
        "real_migrations: runs Alembic for every store it makes, instead of copying what the "
        "session's first run of the same migrations made (rebond_testing.migrated)",
    )


def pytest_sessionfinish() -> None:
    """End the lifespans schemathesis started to read a service's OpenAPI document at
    collection. A fuzzing module ends them after its tests, but a session that runs none of them
    (`--collect-only`, a `-k` that deselects them) left them to schemathesis' exit handler, and by
    then the event loop's thread pool is shut: each store and telemetry closing failed with a
    traceback (`stop_failed`)."""
    asgi = sys.modules.get("schemathesis.python.asgi")
    if asgi is not None:
        asgi.shutdown_lifespans()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the tiers its fixtures and parameters put it in, give each a node id
    of its own (`distinct_node_ids`: pytest-xdist runs one of two alike), and sort them."""
    ids = distinct_node_ids([(item.nodeid, item.name) for item in items])
    for item, node_id in zip(items, ids, strict=True):
        callspec = getattr(item, "callspec", None)
        parameters = callspec.params if callspec is not None else {}
        for tier in tiers_of(getattr(item, "fixturenames", ()), parameters):
            item.add_marker(tier)
        if node_id != item.nodeid:
            # schemathesis 4 builds its items with the function's name as `originalname`, from
            # which pytest 9 builds their id, losing the operation their name has; put it back
            # (pytest has no public way to: reports and xdist read `_id`)
            base, _, params = item.name.partition("[")
            assert item.parent is not None
            item._id = item.parent.id.child(base).with_params(params.removesuffix("]"))
            assert item.nodeid == node_id, (item.nodeid, node_id)
    items.sort(key=_weight)


def _weight(item: pytest.Item) -> int:
    """Heaviest first: the fault suite, then what starts service processes, then the rest (the
    sort is stable, so each module keeps its order). Under `--dist loadfile`, pytest-xdist
    then hands out the units with the most tests first (its `--loadscope-reorder`), so this
    order only decides between units of the same size: handing out the fault suite first was
    slower (README, "Tests", session 7)."""
    if item.get_closest_marker("faults"):
        return 0
    return 1 if item.get_closest_marker("services") else 2


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`, but by `work_unit`: a module, or a folder whose modules share
    processes (tests/e2e), whole on one worker."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling  # type: ignore[import-untyped]

    class ByWorkUnit(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ByWorkUnit(config, log)


# --- Stores: each folder of migrations run once a session, then copied -------------------------


@pytest.fixture(scope="session", autouse=True)
def _migrated_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MigratedOnce]:
    """Alembic's `command.upgrade`, for the session, as `rebond_testing.migrated.MigratedOnce`."""
    from alembic import command

    once = MigratedOnce(command.upgrade, tmp_path_factory.mktemp("migrated"))
    command.upgrade = once
    try:
        yield once
    finally:
        command.upgrade = once.real


@pytest.fixture(autouse=True)
def _real_migrations(request: pytest.FixtureRequest, _migrated_once: MigratedOnce) -> None:
    """Alembic as it is for the tests marked `real_migrations` (the migrations' own tests)."""
    _migrated_once.enabled = request.node.get_closest_marker("real_migrations") is None


# --- Kafka ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _kafka_broker(pytestconfig: pytest.Config) -> Iterator[Broker]:
    """The session's one broker (`rebond_testing.kafka.session_broker`); tests that kill a
    broker start their own (tests/faults)."""
    kafkactl = Kafkactl(pytestconfig.rootpath / "deploy" / "kafka" / "kafkactl.py")
    with session_broker(kafkactl, os.environ.get("KAFKA_BOOTSTRAP_SERVERS")) as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_bootstrap(_kafka_broker: Broker) -> str:
    """Bootstrap servers of a real broker whose registry topics exist (no credentials needed)."""
    return _kafka_broker.bootstrap


@pytest.fixture(scope="session")
def kafka_secure(_kafka_broker: Broker) -> SecureKafka:
    """The same broker's SASL listener, where ACLs decide what each principal may do."""
    if _kafka_broker.secure is None:
        unavailable(
            "no Kafka broker: the broker given from outside has no SASL listener with Rebond's ACLs"
        )
    return _kafka_broker.secure


# --- PostgreSQL: one throwaway cluster per session, a fresh database per test ----------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """`postgresql+psycopg://…/` of a real PostgreSQL server: POSTGRES_URL, or a throwaway
    cluster for the session (`PostgresCluster`, never stopped under a test, so its commits need
    not wait for their log: `crash_safe=False`)."""
    if url := os.environ.get("POSTGRES_URL"):
        yield url.rstrip("/") + "/"
        return
    cluster = PostgresCluster(crash_safe=False)
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.remove()


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A SQLAlchemy URL of a brand-new, empty database on the session's PostgreSQL server."""
    return new_database(postgres_server)


@pytest.fixture
def pg_cluster() -> Iterator[PostgresCluster]:
    """A cluster of the test's own, started, which the test may stop (at once, as a crash) and
    start again on the same port: crash-safe, so that what was committed survives that."""
    cluster = PostgresCluster(crash_safe=True)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL on each database the services support: a SQLite file, then a brand-new
    PostgreSQL database (a test taking it runs once on each)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


# --- Browser tests: Debian's headless Chromium driven by Playwright (no browser download) ----

#: Debian's `chromium-headless-shell`: Chromium's own build for headless runs (the one Playwright
#: launches by default), the same Blink and V8 as the desktop browser without its display
#: compositor. Measured on 2 cores: intake's 18 browser tests took 23 s and 27 s of CPU, against
#: 36 s and 56 s in the desktop `chromium --headless`, whose browser process kept half a core
#: busy the whole run.
CHROMIUM = "chromium-headless-shell"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="session")
def chromium_launch_options() -> dict[str, object]:
    """Keyword arguments for Playwright's `chromium.launch(...)`: Debian's headless Chromium."""
    path = shutil.which(CHROMIUM)
    if path is None:
        unavailable(f"{CHROMIUM} is not installed (deploy/local/ensure-test-packages.sh)")
    return {"executable_path": path, "args": CHROMIUM_ARGS, "headless": True}


# --- Accessibility audits: axe-core from the npm registry, cached (no CDN at test time) ------

AXE_VERSION = "4.10.3"


@pytest.fixture(scope="session")
def axe_source() -> str:
    """The source of `axe.min.js` (axe-core AXE_VERSION), for `page.add_script_tag(content=…)`.

    Installed once with npm into `$REBOND_CACHE/npm` (default `~/.cache/rebond/npm`) and read
    from there afterwards; the browser never fetches it from elsewhere."""
    cache = Path(os.environ.get("REBOND_CACHE", Path.home() / ".cache" / "rebond")) / "npm"
    script = cache / "node_modules" / "axe-core" / "axe.min.js"
    installed = cache / "node_modules" / "axe-core" / "package.json"
    if not (script.exists() and json.loads(installed.read_text()).get("version") == AXE_VERSION):
        npm = shutil.which("npm")
        if npm is None:
            unavailable(
                "npm is not installed (deploy/local/ensure-test-packages.sh): no axe-core for "
                "the accessibility audit"
            )
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--no-save",
             f"axe-core@{AXE_VERSION}"],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    return script.read_text()
