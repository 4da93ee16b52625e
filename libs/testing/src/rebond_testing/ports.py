"""Free loopback ports for servers a test starts (a service, a broker, a mail sink)."""

import socket
from contextlib import ExitStack

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nothing is bound to now: the system picks it (port 0) and the socket is closed
    at once, so the caller can bind it. Another process could take it in between; the system
    hands out ports in turn, so that is rare, and a server that fails to bind says so."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """`count` distinct free ports (a cluster's nodes): all are bound at once before any is
    closed, so the system cannot hand out one of them twice."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


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
