"""A throwaway PostgreSQL cluster: Debian's server binaries, a temporary folder, a free
loopback port, local connections trusted; started, stopped (immediately, as a crash would) and
started again on the same port; as root it runs as the `postgres` user."""

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from rebond_testing.needs import unavailable
from rebond_testing.ports import LOOPBACK, free_port

#: No flush to disk (fsync): a test cluster is thrown away, and a flush per commit is most of a
#: store test's time. A server stopped at once (`stop()`) still keeps what it wrote: the data is
#: in the system's cache; only the machine's crash would lose it.
NO_FLUSH = "-c fsync=off -c max_connections=200"
#: Moreover commits that return before their WAL is written (and no full-page images): faster
#: again, but a server stopped at once loses the last commits, so only for a cluster never
#: stopped under a test (`crash_safe=False`).
NO_WAIT = "-c synchronous_commit=off -c full_page_writes=off"


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL's `bin/` folder, if any."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


class PostgresCluster:
    """One cluster in its own folder; `url` is its server's SQLAlchemy URL (ending in `/`).

    `crash_safe=False` for a cluster that is only ever stopped after its tests (`NO_WAIT`)."""

    def __init__(self, crash_safe: bool = True) -> None:
        self.options = NO_FLUSH if crash_safe else f"{NO_FLUSH} {NO_WAIT}"
        bindir = server_binaries()
        if bindir is None:
            unavailable(
                "PostgreSQL is not installed (deploy/local/ensure-test-packages.sh installs it)"
            )
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="rebond-pg-"))
        self.run_as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        self.data = self.folder / "cluster"
        self._run(
            "initdb", "-D", str(self.data), "-U", "rebond", "--auth=trust", "--encoding=UTF8",
            "--locale=C.UTF-8",
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://rebond@{LOOPBACK}:{self.port}/"

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        subprocess.run(
            [*self.run_as, str(self.bindir / program), *args], check=check, capture_output=True
        )

    def start(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.folder / "postgres.log"), "-w",
            "-t", "60", "start", "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses={LOOPBACK} {self.options}",
        )  # fmt: skip

    def stop(self) -> None:
        """Stop at once (`-m immediate`): clients see the server gone, as after a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", check=False)

    def database(self, name: str | None = None) -> str:
        """A new, empty database of this cluster (`new_database`)."""
        return new_database(self.url, name)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def new_database(server_url: str, name: str | None = None) -> str:
    """A new, empty database on the server at `server_url` (a SQLAlchemy URL ending in `/`):
    its URL. Named `name`, or a fresh `test_…`, so that tests sharing a server share no table."""
    import psycopg

    name = name or f"test_{uuid.uuid4().hex[:12]}"
    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain + "postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return server_url + name
