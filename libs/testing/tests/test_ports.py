"""Free ports are free: a server can bind them at once."""

import socket
from contextlib import ExitStack
from pathlib import Path

from rebond_testing import free_port, free_port_pair, free_ports
from rebond_testing.ports import ports_for_servers


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


def test_free_ports_are_distinct_and_all_bind_together() -> None:
    """Nine ports for a three-node cluster: no two alike, and all bind at the same time."""
    ports = free_ports(9)
    assert len(set(ports)) == 9
    with ExitStack() as stack:
        for port in ports:
            stack.enter_context(_bind(port))


def test_servers_get_ports_outside_the_range_of_outgoing_connections() -> None:
    """Every port handed out is below the system's ephemeral range, where no outgoing
    connection can take it before the server binds it."""
    first_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(50)] + free_ports(9) + [free_port_pair()]
    assert all(port in ports_for_servers() for port in ports)
    assert all(port < first_ephemeral for port in ports), ports
