"""Free loopback ports for servers a test starts (a service, a broker, a mail sink)."""

import socket

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nothing is bound to now: the system picks it (port 0) and the socket is closed
    at once, so the caller can bind it. Another process could take it in between; the system
    hands out ports in turn, so that is rare, and a server that fails to bind says so."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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
