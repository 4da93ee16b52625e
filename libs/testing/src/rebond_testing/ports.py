"""Free loopback ports for servers a test starts (a service, a broker, a mail sink)."""

import secrets
import socket
from contextlib import ExitStack
from pathlib import Path

LOOPBACK = "127.0.0.1"
#: Where the system picks the local ports of outgoing connections (Linux's default when
#: unreadable); test servers take theirs below it (`ports_for_servers`).
EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: The lowest port handed out: above the well-known ports of anything a developer may run.
LOWEST = 15_000


def ports_for_servers() -> range:
    """The ports test servers are given: below the system's ephemeral range, which outgoing
    connections draw from. A port the system picked (binding port 0) could be taken by any
    process's next connection between the test closing it and its server binding it: with the
    broker tiers and `make check`'s tests side by side, a restarted notifier once found its
    port held so (`Address already in use`)."""
    try:
        first_ephemeral = int(EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first_ephemeral = 32_768
    return range(LOWEST, max(first_ephemeral, LOWEST + 1_000))


def _bound(sock: socket.socket, host: str, attempts: int = 200) -> int:
    """Bind `sock` on `host` to a free port of `ports_for_servers`, drawn at random (two tests
    asking at once rarely draw the same), and return it."""
    ports = ports_for_servers()
    for _ in range(attempts):
        port = ports[secrets.randbelow(len(ports))]
        try:
            sock.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no free port in {ports} on {host} after {attempts} tries")


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nothing is bound to now (`ports_for_servers`), closed at once so that the
    caller can bind it. Another test could draw the same in between: rare, and a server that
    fails to bind says so."""
    with socket.socket() as sock:
        return _bound(sock, host)


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """`count` distinct free ports (a cluster's nodes): all are bound at once before any is
    closed, so none is handed out twice."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        return [_bound(sock, host) for sock in sockets]


def free_port_pair(host: str = LOOPBACK, attempts: int = 50) -> int:
    """A free port whose successor is free too (a broker and its controller). The successor is
    bound, not merely probed for an answer: a client may hold it without listening."""
    for _ in range(attempts):
        port = free_port(host)
        with socket.socket() as sock:
            try:
                sock.bind((host, port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no two consecutive free ports on {host} after {attempts} tries")
