"""deploy/kafka/kafkactl.py keeps the local broker's secrets to their owner: files private from
creation, no password on a command line (the groups it grants: libs/kafka/tests/test_acl_plan.py)."""

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture
def no_chmod(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A usual umask (files 0644 unless asked otherwise), and chmod after the fact disabled:
    whatever mode a file has then is the one it was created with."""
    old = os.umask(0o022)
    monkeypatch.setattr(os, "chmod", lambda *args, **kwargs: None)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("no_chmod")
def test_passwords_are_private_from_the_moment_their_files_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kafkactl: ModuleType
) -> None:
    """credentials.json and the per-principal client configurations are created 0600: there
    is no moment when another local user could read them."""
    monkeypatch.delenv("KAFKA_CREDENTIALS_FILE", raising=False)
    secrets = kafkactl.credentials(tmp_path)
    folder = kafkactl.write_client_configs(tmp_path, "127.0.0.1:9092", secrets)
    files = [tmp_path / "credentials.json", *folder.iterdir()]
    assert len(files) == 1 + 2 * (len(secrets) - 1)
    assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {
        f.name: "0o600" for f in files
    }


def test_an_existing_credentials_file_is_narrowed_before_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kafkactl: ModuleType
) -> None:
    """A credentials file an operator made readable by others gets 0600 when passwords are
    added to it."""
    path = tmp_path / "given.json"
    path.write_text("{}")
    path.chmod(0o644)
    monkeypatch.setenv("KAFKA_CREDENTIALS_FILE", str(path))
    assert "intake" in kafkactl.credentials(tmp_path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_scram_passwords_never_reach_a_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kafkactl: ModuleType
) -> None:
    """Formatting the storage with SCRAM users (Kafka's StorageTool, for real) passes their
    passwords in a private argument file: no process's arguments, which `ps` shows to every
    local user, hold one; the users are in the formatted metadata all the same."""
    seen: list[list[str]] = []
    real_run = subprocess.run

    def recording_run(args: list[str], *rest: Any, **kwargs: Any) -> Any:
        seen.append([str(a) for a in args])
        return real_run(args, *rest, **kwargs)

    monkeypatch.setattr(kafkactl.subprocess, "run", recording_run)
    layout = kafkactl.Layout.of(tmp_path, port=1)
    properties = tmp_path / "server.properties"
    properties.write_text(kafkactl.LocalKafka(layout).properties(layout.nodes[0]))
    classpath = os.pathsep.join(str(jar) for jar in kafkactl.fetch())
    password = "pw-only-in-a-file-" + os.urandom(6).hex()
    kafkactl.format_storage(
        kafkactl.java(), classpath, "MkU3OEVBNTcwNTJENDM2Qg", properties,
        {"association-apesa": password},
    )  # fmt: skip
    assert seen and not any(password in arg for args in seen for arg in args)
    checkpoint = (tmp_path / "logs" / "bootstrap.checkpoint").read_bytes()
    assert b"association-apesa" in checkpoint and password.encode() not in checkpoint
    assert not (tmp_path / "format.args").exists()
