"""What a request says about its client when it came through a trusted reverse proxy.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only from the addresses in
RELAY_TRUSTED_PROXIES (the TLS proxy in front, docs/deployment.md): anyone else could
send them to pose as another address or as HTTPS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TrustedProxies:
    def __init__(self, networks: list[str] | None = None) -> None:
        self._networks = [ipaddress.ip_network(p, strict=False) for p in networks or []]

    def is_trusted(self, address: Address | None) -> bool:
        return address is not None and any(address in net for net in self._networks)

    def client_address(self, headers: Mapping[str, str], peer: str | None) -> Address | None:
        """The peer address, or the client named by X-Forwarded-For when the peer is a
        trusted proxy (the right-most address not itself a trusted proxy)."""
        address = parse_ip(peer)
        if address is None or not self.is_trusted(address):
            return address
        forwarded = [part.strip() for part in headers.get("x-forwarded-for", "").split(",")]
        for hop in reversed([p for p in forwarded if p]):
            hop_address = parse_ip(hop)
            if hop_address is None:
                return address
            if not self.is_trusted(hop_address):
                return hop_address
        return address

    def came_over_https(self, scheme: str, headers: Mapping[str, str], peer: str | None) -> bool:
        """Whether the client's own connection was TLS: directly, or as a trusted proxy
        says in X-Forwarded-Proto (its last value: the one the proxy itself appended)."""
        if scheme == "https":
            return True
        if not self.is_trusted(parse_ip(peer)):
            return False
        proto = headers.get("x-forwarded-proto", "").rsplit(",", 1)[-1].strip().lower()
        return proto == "https"


def parse_ip(value: str | None) -> Address | None:
    if not value:
        return None
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
