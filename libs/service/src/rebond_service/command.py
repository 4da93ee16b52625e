"""One command line for every service: `rebond-<service>` alone serves; `rebond-<service>
<command>` runs one of the service's commands (`migrate`, `anonymise`, …) and exits;
`--help` prints the service's usage (its `__main__` module's docstring).

Anything else fails, naming the commands, instead of serving: `migrat` in a Kubernetes Job
would otherwise start a server that never ends, and the Job with it (and `--help` on a
terminal started the service).

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

HELP = ("-h", "--help")
#: What `sys.exit` is given for a command line no command matches (as argparse does).
USAGE_ERROR = 2


class Server(Protocol):
    """What serving needs of a server (uvicorn's `Server` fits)."""

    def run(self, sockets: list[socket.socket] | None = None) -> None: ...


def run(
    commands: Mapping[str, Callable[[], object]],
    serve: Callable[[], tuple[Server, list[socket.socket]]],
    argv: Sequence[str] | None = None,
    *,
    program: str,
    usage: str | None,
) -> None:
    """Serve (no arguments), run the command `argv` names (its one word, a key of
    `commands`), print `usage` (`-h`, `--help`), or exit with status 2 naming the commands.
    `argv`: the process's arguments by default; `program`: the name messages start with."""
    words = list(sys.argv[1:] if argv is None else argv)
    if not words:
        server, sockets = serve()
        gc.freeze()
        server.run(sockets=sockets)
        return
    if len(words) == 1 and words[0] in HELP:
        print(usage or program)
        return
    command = commands.get(words[0]) if len(words) == 1 else None
    if command is None:
        known = ", ".join(commands) or "none"
        print(
            f"{program}: unknown command line {' '.join(words)!r}; without arguments it serves; "
            f"its commands: {known}; --help says more",
            file=sys.stderr,
        )
        sys.exit(USAGE_ERROR)
    command()
