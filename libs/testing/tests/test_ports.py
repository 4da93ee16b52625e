"""Free ports are free: a server can bind them at once."""

import socket

from rebond_testing import free_port, free_port_pair


def _bind(port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    return sock


def test_a_free_port_can_be_bound() -> None:
    """The port handed out binds, and two calls in a row give two ports."""
    first, second = free_port(), free_port()
    assert first != second
    with _bind(first), _bind(second):
        pass


def test_a_free_pair_is_two_consecutive_bindable_ports() -> None:
    """Both the port and its successor bind (a broker and its controller)."""
    port = free_port_pair()
    with _bind(port), _bind(port + 1):
        pass
