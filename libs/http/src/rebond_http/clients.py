"""Who sent a request: the client address the rate limit counts, behind trusted proxies or not.

Behind an ingress or a load balancer every request comes from the proxy's address, so a limit
keyed on the TCP peer would put the whole country in one bucket. The proxy says who it forwarded
in `X-Forwarded-For`, but anyone can send that header too: it is believed only when the peer is
one of `trusted` (`<PREFIX>_TRUSTED_PROXIES`, CIDRs, empty by default). Each trusted proxy
appends the address it received the request from, so the list is read from the right, skipping
trusted hops: the first untrusted one is the client. Entries to its left were written by the
client itself and are never looked at.

This is the only place that decides: uvicorn's own proxy-headers handling is switched off
(`rebond_http.private.server`), so `FORWARDED_ALLOW_IPS` cannot make uvicorn rewrite the peer
first.

IPv6 clients are counted per /64: one subscriber line usually holds a whole /64, so rotating
addresses inside it must not give fresh buckets.
"""

from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

#: What an unknown peer (no `client` in the scope: a Unix socket, a test transport) counts as.
UNKNOWN = "unknown"


def _parse(entry: str) -> Address | None:
    """An `X-Forwarded-For` entry as an address: `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:443`
    or `2001:db8::1`; None for anything else (`unknown`, an obfuscated id, garbage)."""
    entry = entry.strip()
    if entry.startswith("["):
        entry = entry[1:].split("]", 1)[0]
    elif entry.count(":") == 1:  # IPv4 with a port
        entry = entry.split(":", 1)[0]
    try:
        return _plain(ip_address(entry))
    except ValueError:
        return None


def _plain(address: Address) -> Address:
    """An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, a dual-stack socket) as its IPv4 one."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientAddress:
    """The client of a request, and the rate-limit key it is counted under."""

    def __init__(self, trusted: Iterable[Network | str] = ()) -> None:
        self.trusted = tuple(
            ip_network(n, strict=False) if isinstance(n, str) else n for n in trusted
        )

    def _is_trusted(self, address: Address) -> bool:
        return any(address.version == n.version and address in n for n in self.trusted)

    def of(self, scope: Mapping[str, Any]) -> Address | None:
        """The right-most untrusted hop: the TCP peer, unless the peer is a trusted proxy, in
        which case `X-Forwarded-For` is walked from the right past every trusted hop. An entry
        that is not an address stops the walk at the last trusted hop (a proxy would never
        write one; the client may have)."""
        peer = (scope.get("client") or (None, 0))[0]
        current = _parse(peer) if isinstance(peer, str) else None
        if current is None or not self.trusted or not self._is_trusted(current):
            return current
        forwarded = ",".join(
            value.decode("latin-1")
            for name, value in scope.get("headers", ())
            if name.lower() == b"x-forwarded-for"
        )
        for entry in reversed(forwarded.split(",") if forwarded else []):
            hop = _parse(entry)
            if hop is None:
                break
            current = hop
            if not self._is_trusted(hop):
                break
        return current

    def key(self, scope: Mapping[str, Any]) -> str:
        """The rate-limit bucket: the IPv4 address, or the /64 of an IPv6 one."""
        address = self.of(scope)
        if address is None:
            return UNKNOWN
        if isinstance(address, IPv6Address):
            return str(IPv6Network((address, 64), strict=False))
        return str(address)
