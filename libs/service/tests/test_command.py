"""A service's command line: nothing serves, one word runs its command, `--help` prints the
usage, and anything else fails naming the commands (a typo in a Kubernetes Job's command must
not start a server that never ends)."""

import gc
import socket
import subprocess
import sys

import pytest

from rebond_service import command


class FakeServer:
    def __init__(self) -> None:
        self.ran_on: list[socket.socket] | None = None
        self.frozen_before_run = False

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        self.frozen_before_run = gc.get_freeze_count() > 0
        self.ran_on = sockets


def _run(argv: list[str], server: FakeServer) -> list[str]:
    calls: list[str] = []

    def serve() -> tuple[FakeServer, list[socket.socket]]:
        calls.append("serve")
        return server, []

    commands = {
        "migrate": lambda: calls.append("migrate"),
        "anonymise": lambda: calls.append("anon"),
    }
    try:
        command.run(commands, serve, argv, program="rebond-test", usage="Usage: rebond-test")
    finally:
        gc.unfreeze()
    return calls


def test_a_command_runs_alone_and_nothing_is_served() -> None:
    server = FakeServer()
    assert _run(["migrate"], server) == ["migrate"]
    assert _run(["anonymise"], server) == ["anon"]
    assert server.ran_on is None


def test_no_arguments_serve_with_the_start_up_frozen() -> None:
    server = FakeServer()
    assert _run([], server) == ["serve"]
    assert server.ran_on == [] and server.frozen_before_run


@pytest.mark.parametrize("argv", [["-h"], ["--help"]])
def test_help_prints_the_usage_and_serves_nothing(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    server = FakeServer()
    assert _run(argv, server) == []
    assert capsys.readouterr().out == "Usage: rebond-test\n"
    assert server.ran_on is None


@pytest.mark.parametrize("argv", [["migrat"], ["migrate", "now"], ["--port", "8001"]])
def test_anything_else_fails_naming_the_commands_and_serves_nothing(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    server = FakeServer()
    with pytest.raises(SystemExit) as exited:
        _run(argv, server)
    assert exited.value.code == command.USAGE_ERROR
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
