"""One command line for every service: `rebond-<service> <command>` runs one of the service's
commands (`migrate`, `anonymise`, …) and exits; without one, the service serves.

Serving is the same everywhere: build the server (binding its sockets, so a port in use fails
at once), move the start-up's objects, kept for the process's life, out of the garbage
collector's full collections (`gc.freeze`: fewer and shorter pauses, README), then serve until
stopped.
"""

import gc
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol


class Server(Protocol):
    """What serving needs of a server (uvicorn's `Server` fits)."""

    def run(self, sockets: list[socket.socket] | None = None) -> None: ...


def run(
    commands: Mapping[str, Callable[[], object]],
    serve: Callable[[], tuple[Server, list[socket.socket]]],
    argv: Sequence[str] | None = None,
) -> None:
    """Run the command `argv` names (its one word, a key of `commands`); otherwise build the
    server with `serve` and serve on its sockets. `argv`: the process's arguments by default."""
    words = list(sys.argv[1:] if argv is None else argv)
    command = commands.get(words[0]) if len(words) == 1 else None
    if command is not None:
        command()
        return
    server, sockets = serve()
    gc.freeze()
    server.run(sockets=sockets)
