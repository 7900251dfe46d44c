"""Which addresses get the reserved connection pool: validator peers and trusted clients."""

from __future__ import annotations

import ipaddress
import logging
import socket
from urllib.parse import urlsplit

from node.admission import parse_networks
from node.config import NodeLimits
from node.net.guard import Network
from node.node import Node

log = logging.getLogger("veche.node.net")


def host_networks(host: str) -> list[Network]:
    """The addresses a host name resolves to now (one /32 or /128 each); none if it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        log.warning("cannot resolve validator host %s (%s): its connections count as public", host, exc)
        return []
    networks: list[Network] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]
        networks.append(ipaddress.ip_network(address))
    return networks


def reserved_hosts(node: Node) -> list[str]:
    """The host names of every validator the chain has had or scheduled — the genesis set and each
    ``validators.update`` — and of the config's peers."""
    history = node.ledger.state.history
    rosters = [history.change_at(0).roster] + [change.roster for change in history.changes()]
    hosts = {urlsplit(v.url).hostname for roster in rosters for v in roster.validators.validators}
    hosts |= {urlsplit(peer.url).hostname for peer in node.config.peers}
    return sorted(h for h in hosts if h)


def resolve_reserved(hosts: list[str], limits: NodeLimits) -> tuple[Network, ...]:
    """Those hosts' addresses and ``limits.trusted_clients`` (may block on DNS)."""
    networks: list[Network] = list(parse_networks(limits.trusted_clients))
    for host in hosts:
        networks.extend(host_networks(host))
    return tuple(dict.fromkeys(networks))


def reserved_networks(node: Node, limits: NodeLimits) -> tuple[Network, ...]:
    """The other validators' hosts (``reserved_hosts``) and ``limits.trusted_clients``. Resolved at
    start and again after each set change commits (``node.process``); a validator that moves its host
    needs a restart here."""
    return resolve_reserved(reserved_hosts(node), limits)
