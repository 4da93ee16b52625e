"""Test fixtures shared by every layer: a real Kafka broker for the tests that need one.

The broker comes from, in order: KAFKA_BOOTSTRAP_SERVERS; testcontainers' Kafka when a Docker
engine answers; else a local broker started from deploy/kafka/kafkactl.py on free ports and
stopped at the end. With CI=true a test that needs the broker fails when none can be had;
elsewhere it is skipped with the reason.

The local broker is the secured one (`kafkactl.py start --secure`: SASL/SCRAM, ACLs from the
registry, a principal per service and per association). `kafka_secure` hands out its SASL address,
its SASL_SSL address and CA (`--tls-port`), and the principals' passwords; `kafka_bootstrap` is an extra unauthenticated listener whose clients
are super users, so that tests about something else need no credentials.
"""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent
KAFKACTL = REPO / "deploy" / "kafka" / "kafkactl.py"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"no Kafka broker for this test (CI=true): {reason}", pytrace=False)
    pytest.skip(f"no Kafka broker: {reason}")


def free_port_pair() -> int:
    """A free port whose successor is free too (broker + controller)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with socket.socket() as sock:  # bindable, not merely unanswered: a client may hold it
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return int(port)
    raise RuntimeError("no free port pair")


def _docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (subprocess.TimeoutExpired, OSError):
        return False


async def _metadata_ok(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(client.start(), 10)
        await asyncio.wait_for(client.list_topics(), 10)
        return True
    except Exception:
        return False
    finally:
        await client.close()


def _kafkactl(*args: str) -> None:
    subprocess.run([sys.executable, str(KAFKACTL), *args], check=True, timeout=300)


@dataclass(frozen=True)
class SecureKafka:
    """The secured listener of the session's broker and every principal's password."""

    bootstrap: str
    credentials: dict[str, str]
    data_dir: Path
    #: The same broker's SASL_SSL listener (SCRAM over TLS, as production connects), whose
    #: certificate `ca_file` signed.
    tls_bootstrap: str = ""

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    def sasl(self, principal: str) -> dict[str, str]:
        """aiokafka keyword arguments to connect as `principal` (SCRAM-SHA-512)."""
        return {
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": principal,
            "sasl_plain_password": self.credentials[principal],
        }


@dataclass(frozen=True)
class _Broker:
    bootstrap: str
    secure: SecureKafka | None


@pytest.fixture(scope="session")
def _kafka_broker() -> Iterator[_Broker]:
    if bootstrap := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        if not asyncio.run(_metadata_ok(bootstrap)):
            _unavailable(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap} does not answer")
        _kafkactl("topics", "--bootstrap", bootstrap)
        yield _Broker(bootstrap, None)
        return
    if _docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            bootstrap = container.get_bootstrap_server()
            _kafkactl("topics", "--bootstrap", bootstrap)
            yield _Broker(bootstrap, None)
        return
    port = free_port_pair()
    plaintext_port = free_port_pair()
    tls_port = free_port_pair()
    data_dir = Path(tempfile.mkdtemp(prefix="rebond-kafka-"))
    try:
        _kafkactl(
            "start", "--secure", "--port", str(port), "--plaintext-port", str(plaintext_port),
            "--tls-port", str(tls_port), "--data-dir", str(data_dir),
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        _kafkactl("stop", "--data-dir", str(data_dir))
        _unavailable(f"could not start the local broker: {error}")
    credentials = json.loads((data_dir / "credentials.json").read_text())
    try:
        yield _Broker(
            f"127.0.0.1:{plaintext_port}",
            SecureKafka(f"127.0.0.1:{port}", credentials, data_dir, f"127.0.0.1:{tls_port}"),
        )
    finally:
        _kafkactl("stop", "--data-dir", str(data_dir))
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(_kafka_broker: _Broker) -> str:
    """Bootstrap servers of a real broker whose registry topics exist (no credentials needed)."""
    return _kafka_broker.bootstrap


@pytest.fixture(scope="session")
def kafka_secure(_kafka_broker: _Broker) -> SecureKafka:
    """The same broker's SASL listener, where ACLs decide what each principal may do."""
    if _kafka_broker.secure is None:
        _unavailable("the broker given from outside has no SASL listener with Rebond's ACLs")
    assert _kafka_broker.secure is not None
    return _kafka_broker.secure


# --- PostgreSQL: a throwaway cluster per test session, a fresh database per test ------------


def _postgres_bindir() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """`postgresql+psycopg://…/` of a real PostgreSQL server (POSTGRES_URL, or a throwaway one).

    The throwaway cluster lives in a temporary folder, listens on a free loopback port, trusts
    local connections and is stopped at the end. As root it runs as the `postgres` user.
    """
    if url := os.environ.get("POSTGRES_URL"):
        yield url.rstrip("/") + "/"
        return
    bindir = _postgres_bindir()
    if bindir is None:
        _unavailable(
            "PostgreSQL is not installed (deploy/local/ensure-test-packages.sh installs it)"
        )
        return
    data = Path(tempfile.mkdtemp(prefix="rebond-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    port = free_port_pair()
    cluster = data / "cluster"
    subprocess.run(
        [*run_as, str(bindir / "initdb"), "-D", str(cluster), "-U", "rebond", "--auth=trust",
         "--encoding=UTF8", "--locale=C.UTF-8"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [*run_as, str(bindir / "pg_ctl"), "-D", str(cluster), "-l", str(data / "postgres.log"),
         "-w", "-t", "60", "start", "-o",
         f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off "
         "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield f"postgresql+psycopg://rebond@127.0.0.1:{port}/"
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(cluster), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A SQLAlchemy URL of a brand-new, empty database on the session's PostgreSQL server."""
    import uuid

    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    plain = postgres_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain + "postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return postgres_server + name


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL on each database the services support: a SQLite file, then a brand-new
    PostgreSQL database (a test taking it runs once on each)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


# --- Browser tests: Debian's Chromium driven by Playwright (no browser download) -------------

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="session")
def chromium_launch_options() -> dict[str, object]:
    """Keyword arguments for Playwright's `chromium.launch(...)`: Debian's Chromium, headless."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if IN_CI:
            pytest.fail(
                "Chromium is not installed (deploy/local/ensure-test-packages.sh)", pytrace=False
            )
        pytest.skip("Chromium is not installed")
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
            if IN_CI:
                pytest.fail(
                    "npm is not installed (deploy/local/ensure-test-packages.sh)", pytrace=False
                )
            pytest.skip("npm is not installed: no axe-core for the accessibility audit")
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--no-save",
             f"axe-core@{AXE_VERSION}"],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    return script.read_text()
