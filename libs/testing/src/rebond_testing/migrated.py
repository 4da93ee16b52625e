"""Each store's migrations run once per test session, then copied: a fresh SQLite file that a
test's service migrates gets a copy of the file those same migrations made earlier.

The tests start hundreds of stores, and each start migrated from nothing: 533 Alembic runs in
`make check`'s tests, about 40 s of CPU (measured 2026-12-07), the same revisions every time.
`MigratedOnce` wraps Alembic's `command.upgrade`, which every store's `migrate` reaches
(`rebond_sql.migrations.upgrade`): for a SQLite file that does not exist yet (or is empty), it
runs the migrations once into a file of its own for that folder of migrations and revision, and
copies that file. What the copy holds is what the migrations made, so the store is the same; an
existing file, PostgreSQL, or a test marked `real_migrations` (what tests the migrations
themselves: their lock, their conversions, the command line) runs Alembic as it would.
"""

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

Upgrade = Callable[..., None]


class MigratedOnce:
    """`command.upgrade`'s stand-in: `upgrade(config, revision)` for Alembic's `Config`."""

    def __init__(self, real: Upgrade, folder: Path) -> None:
        self.real = real
        self.folder = folder
        #: On for each test unless it is marked `real_migrations` (the plugin sets it).
        self.enabled = True
        self._made: dict[tuple[str, str], Path] = {}

    def __call__(self, config: Any, revision: str, *args: Any, **kwargs: Any) -> None:
        target = self._fresh_sqlite_file(config)
        if not self.enabled or target is None or args or kwargs:
            self.real(config, revision, *args, **kwargs)
            return
        key = (str(config.get_main_option("script_location")), revision)
        made = self._made.get(key)
        if made is None:
            made = self.folder / f"{len(self._made)}.sqlite3"
            self.real(_pointed_at(config, made), revision)
            self._made[key] = made
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(made, target)

    @staticmethod
    def _fresh_sqlite_file(config: Any) -> Path | None:
        """The SQLite file `config` migrates, if it has no content yet; None otherwise."""
        url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
        if not url:
            return None
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        path = Path(parsed.database)
        if path.exists() and path.stat().st_size > 0:
            return None
        if any(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-journal")):
            return None
        return path


def _pointed_at(config: Any, path: Path) -> Any:
    """A copy of Alembic's `config` for the SQLite file at `path`."""
    from alembic.config import Config

    other = Config()
    other.set_main_option("script_location", str(config.get_main_option("script_location")))
    # what `rebond_sql.migrations.run`, every store's env.py, reads
    other.attributes["url"] = make_url(f"sqlite:///{path}")
    return other
