"""Client addresses behind a reverse proxy, shared by the nodes and the gateway.

A process behind nginx sees every request coming from the proxy. The proxy says who its client was
in ``X-Forwarded-For`` (a list, each proxy appending the address it saw) or ``X-Real-IP``; anyone can
send those headers too, so they are believed only when the TCP peer is a listed trusted proxy
(``trusted_proxies`` in config.json). ``X-Forwarded-For`` is read from the right: entries that are
themselves trusted proxies are skipped, and the first other address is the client (what the
left-most entries say was written by the client and is ignored). A malformed entry stops the walk
and the request is counted against the peer: never a value the client chose.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import OrderedDict
from collections.abc import Iterable

log = logging.getLogger("veche.forwarding")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_TRUSTED_PROXIES = 64
CACHE_SIZE = 4096
MAX_HEADER_ENTRIES = 32


def parse_networks(entries: Iterable[str], where: str) -> tuple[Network, ...]:
    """``["127.0.0.1", "10.0.0.0/8", "::1"]`` → networks; ``ValueError`` naming ``where`` and the bad entry."""
    networks: list[Network] = []
    for entry in entries:
        if not isinstance(entry, str):
            raise ValueError(f"{where}: {entry!r} is not an IP address or network (text)")
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{where}: {entry!r} is not an IP address or network ({exc})") from exc
    return tuple(networks)


def normalize_address(text: str) -> str | None:
    """An IP address as text (IPv4-mapped IPv6 as IPv4, brackets dropped), or None if it is not one."""
    candidate = text.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    if not candidate or len(candidate) > 64:
        return None
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped if mapped is not None else address)


class ProxyTrust:
    """Which TCP peers may tell us the client's address, and what they said."""

    def __init__(self, networks: Iterable[Network] = ()) -> None:
        self.networks = tuple(networks)
        self._known: OrderedDict[str, bool] = OrderedDict()

    def __bool__(self) -> bool:
        return bool(self.networks)

    def is_trusted(self, address: str) -> bool:
        known = self._known.get(address)
        if known is None:
            normal = normalize_address(address)
            known = normal is not None and any(ipaddress.ip_address(normal) in network for network in self.networks)
            self._known[address] = known
            if len(self._known) > CACHE_SIZE:
                self._known.popitem(last=False)
        return known

    def client(self, peer: str | None, forwarded_for: str | None = None, real_ip: str | None = None) -> str:
        """The client's address: ``peer`` itself unless ``peer`` is a trusted proxy that said otherwise."""
        if not peer:
            return "unknown"
        if not self.networks or not self.is_trusted(peer):
            return peer
        if forwarded_for:
            entries = forwarded_for.split(",")[-MAX_HEADER_ENTRIES:]
            for entry in reversed(entries):
                address = normalize_address(entry)
                if address is None:
                    log.debug("malformed X-Forwarded-For entry from proxy %s; counting the request against it", peer)
                    return peer
                if not self.is_trusted(address):
                    return address
            return normalize_address(entries[0]) or peer
        if real_ip:
            address = normalize_address(real_ip.rsplit(",", 1)[-1])
            if address is not None:
                return address
            log.debug("malformed X-Real-IP from proxy %s; counting the request against it", peer)
        return peer
