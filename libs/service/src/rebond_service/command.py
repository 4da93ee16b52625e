"""One command line for every service: `rebond-<service>` alone serves; `rebond-<service>
<command>` runs one of the service's commands (`migrate`, `anonymise`, …) and exits;
`--help` prints the service's usage (its `__main__` module's docstring).

Anything else fails, naming the commands, instead of serving: `migrat` in a Kubernetes Job
would otherwise start a server that never ends, and the Job with it (and `--help` on a
terminal started the service).

Only a command or serving reads the service's settings, and configures logging from them
(`configured`): a service's `__main__` imports its modules (and its settings, which bring
pydantic and Kafka's) in the functions that need them, so `--help` or a mistyped command
answers in a tenth of a second instead of after 1.2 to 1.4 s of imports (the tests run such
commands in child processes).

Serving is the same everywhere: build the server (binding its sockets, so a port in use fails
at once), move the start-up's objects, kept for the process's life, out of the garbage
collector's full collections (`gc.freeze`: fewer and shorter pauses, README), then serve until
stopped.
"""

import gc
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

HELP = ("-h", "--help")
#: What `sys.exit` is given for a command line no command matches (as argparse does).
USAGE_ERROR = 2


class Server(Protocol):
    """What serving needs of a server (uvicorn's `Server` fits)."""

    def run(self, sockets: list[socket.socket] | None = None) -> None: ...


class Settings(Protocol):
    """What the command line needs of a service's settings (`ServiceSettings` fits)."""

    @property
    def log_level(self) -> str: ...


S = TypeVar("S", bound=Settings)


def configured(settings: S) -> S:
    """`settings`, once the process's logging is configured from them (JSON lines at their
    `log_level`: `rebond_observability.logging`, imported only now, as it brings faststream)."""
    from rebond_observability.logging import configure_logging

    configure_logging(settings.log_level)
    return settings


def run(
    commands: Mapping[str, Callable[[S], object]],
    serve: Callable[[S], tuple[Server, list[socket.socket]]],
    argv: Sequence[str] | None = None,
    *,
    settings: Callable[[], S],
    program: str,
    usage: str | None,
) -> None:
    """Serve (no arguments), run the command `argv` names (its one word, a key of
    `commands`), print `usage` (`-h`, `--help`), or exit with status 2 naming the commands.
    The command or the server is given `settings()`, `configured`; `argv`: the process's
    arguments by default; `program`: the name messages start with."""
    words = list(sys.argv[1:] if argv is None else argv)
    if not words:
        server, sockets = serve(configured(settings()))
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
    command(configured(settings()))
