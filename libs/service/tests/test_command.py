"""A service's command line: nothing serves, one word runs its command, `--help` prints the
usage, and anything else fails naming the commands (a typo in a Kubernetes Job's command must
not start a server that never ends). Only a command or serving reads the settings."""

import gc
import socket
import subprocess
import sys
from dataclasses import dataclass

import pytest

from rebond_observability import logging as rebond_logging
from rebond_service import command


@dataclass
class FakeSettings:
    log_level: str = "WARNING"


class FakeServer:
    def __init__(self) -> None:
        self.ran_on: list[socket.socket] | None = None
        self.frozen_before_run = False

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        self.frozen_before_run = gc.get_freeze_count() > 0
        self.ran_on = sockets


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the command line did, in order; configuring logging is one of them (recorded in
    place of configuring this process's)."""
    done: list[str] = []
    monkeypatch.setattr(rebond_logging, "configure_logging", lambda level: done.append(level))
    return done


def _run(argv: list[str], server: FakeServer, calls: list[str]) -> list[str]:
    def read() -> FakeSettings:
        calls.append("settings")
        return FakeSettings()

    def serve(settings: FakeSettings) -> tuple[FakeServer, list[socket.socket]]:
        calls.append(f"serve {settings.log_level}")
        return server, []

    commands = {
        "migrate": lambda settings: calls.append(f"migrate {settings.log_level}"),
        "anonymise": lambda settings: calls.append(f"anon {settings.log_level}"),
    }
    try:
        command.run(
            commands, serve, argv, settings=read, program="rebond-test", usage="Usage: rebond-test"
        )
    finally:
        gc.unfreeze()
    return calls


def test_a_command_runs_alone_with_the_settings_and_nothing_is_served(calls: list[str]) -> None:
    server = FakeServer()
    assert _run(["migrate"], server, calls) == ["settings", "WARNING", "migrate WARNING"]
    calls.clear()
    assert _run(["anonymise"], server, calls) == ["settings", "WARNING", "anon WARNING"]
    assert server.ran_on is None


def test_no_arguments_serve_with_the_start_up_frozen(calls: list[str]) -> None:
    """The settings are read and logging configured from them before the server is built."""
    server = FakeServer()
    assert _run([], server, calls) == ["settings", "WARNING", "serve WARNING"]
    assert server.ran_on == [] and server.frozen_before_run


@pytest.mark.parametrize("argv", [["-h"], ["--help"]])
def test_help_prints_the_usage_and_reads_no_settings(
    argv: list[str], capsys: pytest.CaptureFixture[str], calls: list[str]
) -> None:
    server = FakeServer()
    assert _run(argv, server, calls) == []
    assert capsys.readouterr().out == "Usage: rebond-test\n"
    assert server.ran_on is None


@pytest.mark.parametrize("argv", [["migrat"], ["migrate", "now"], ["--port", "8001"]])
def test_anything_else_fails_naming_the_commands_and_reads_no_settings(
    argv: list[str], capsys: pytest.CaptureFixture[str], calls: list[str]
) -> None:
    server = FakeServer()
    with pytest.raises(SystemExit) as exited:
        _run(argv, server, calls)
    assert exited.value.code == command.USAGE_ERROR
    assert calls == []
    error = capsys.readouterr().err
    assert error.startswith(f"rebond-test: unknown command line {' '.join(argv)!r}")
    assert "its commands: migrate, anonymise" in error
    assert server.ran_on is None


@pytest.mark.parametrize("service", ["intake", "router", "notifier", "events", "coordination"])
def test_every_service_fails_on_a_mistyped_command_instead_of_serving(service: str) -> None:
    """The services' own command lines, in a child process: they exit at once (a timeout here
    means the service started serving)."""
    done = subprocess.run(
        [sys.executable, "-m", f"rebond_{service}", "migrat"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == command.USAGE_ERROR, done.stderr
    assert f"rebond-{service}: unknown command line 'migrat'" in done.stderr
