"""A service's command line: one word runs its command, anything else serves."""

import gc
import socket

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
        command.run(commands, serve, argv)
    finally:
        gc.unfreeze()
    return calls


def test_a_command_runs_alone_and_nothing_is_served() -> None:
    server = FakeServer()
    assert _run(["migrate"], server) == ["migrate"]
    assert _run(["anonymise"], server) == ["anon"]
    assert server.ran_on is None


@pytest.mark.parametrize("argv", [[], ["unknown"], ["migrate", "now"]])
def test_no_command_or_an_unknown_one_serves_with_the_start_up_frozen(argv: list[str]) -> None:
    server = FakeServer()
    assert _run(argv, server) == ["serve"]
    assert server.ran_on == [] and server.frozen_before_run
