"""`MigratedOnce`: a fresh SQLite file gets a copy of what one run of the same migrations made;
anything else is migrated by Alembic."""

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from rebond_testing.migrated import MigratedOnce

#: The test itself calls the real Alembic (through the plugin's stand-in, turned off here).
pytestmark = pytest.mark.real_migrations

SAMPLE = Path(__file__).parents[2] / "sql" / "tests" / "sample_migrations"


def _config(path: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SAMPLE))
    config.attributes["url"] = make_url(f"sqlite:///{path}")
    return config


def _tables(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall()


def _version(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return str(connection.execute("SELECT version_num FROM alembic_version").fetchone()[0])


class Counting:
    def __init__(self) -> None:
        self.runs: list[str] = []

    def __call__(self, config: Any, revision: str) -> None:
        self.runs.append(revision)
        command.upgrade(config, revision)


@pytest.fixture
def alembic_runs() -> Counting:
    return Counting()


def test_fresh_files_are_copies_of_one_run_of_the_migrations(
    tmp_path: Path, alembic_runs: Counting
) -> None:
    once = MigratedOnce(alembic_runs, tmp_path / "made")
    (tmp_path / "made").mkdir()
    first, second = tmp_path / "a" / "one.sqlite3", tmp_path / "b" / "two.sqlite3"
    once(_config(first), "head")
    once(_config(second), "head")
    assert alembic_runs.runs == ["head"]
    assert _tables(first) == _tables(second) != []
    assert _version(first) == _version(second) == "0002"
    once(_config(tmp_path / "three.sqlite3"), "0001")  # another revision: its own run
    assert alembic_runs.runs == ["head", "0001"]
    assert _version(tmp_path / "three.sqlite3") == "0001"


def test_a_file_with_content_a_memory_database_or_a_test_turning_it_off_run_alembic(
    tmp_path: Path, alembic_runs: Counting
) -> None:
    once = MigratedOnce(alembic_runs, tmp_path)
    older = tmp_path / "older.sqlite3"
    once(_config(older), "0001")
    once(_config(older), "head")  # has content: migrated in place, from 0001
    assert alembic_runs.runs == ["0001", "head"]
    assert _version(older) == "0002"

    memory = Config()
    memory.set_main_option("script_location", str(SAMPLE))
    memory.attributes["url"] = make_url("sqlite://")
    once(memory, "head")
    assert alembic_runs.runs == ["0001", "head", "head"]

    once.enabled = False
    once(_config(tmp_path / "fresh.sqlite3"), "0001")
    assert alembic_runs.runs == ["0001", "head", "head", "0001"]
