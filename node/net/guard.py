"""Connection admission, timeouts, caps and shedding for the node's listening socket.

Every accepted TCP connection is wrapped in a ``GuardedProtocol`` before aiohttp sees it:

* **Classes.** A connection from a validator peer's address (resolved from the genesis and config
  URLs at start) or from ``limits.trusted_clients`` is *reserved*: it counts against a pool of its
  own (``max_reserved``), so a public flood can fill the public pool and never the consensus links
  or the gateway's. Everything else is *public*.
* **Caps.** Public connections are capped in total (``max_connections``, and never more than the
  file-descriptor budget allows: ``fd_budget``) and, once half of that pool is taken, per network
  (``max_per_network`` per IPv4 /24 or IPv6 /64): a network may open more while the node has room
  to spare (one NAT or proxy carries many honest clients), and keeps to its share under pressure.
  A connection over a cap is answered ``503`` with ``Retry-After`` at once and closed, before
  aiohttp allocates anything for it.
* **Timeouts.** A request head must be complete ``header_timeout_s`` after its first byte (or after
  the connection opened); a body must keep arriving — no pause longer than ``body_timeout_s``, and
  after that grace at least ``min_body_rate`` bytes per second on average. Time during which aiohttp
  itself paused reading (back-pressure: the node is the slow one) is not held against the client.
  A connection that fails is cut (``408`` when nothing else was sent on it yet).
* **Shedding.** ``shed(n)`` cuts the ``n`` public connections doing the least (between requests or
  in a head first, the oldest first) — the signing-state write calls it when the process runs short
  of descriptors, then retries.

One ``run()`` task sweeps every connection every ``SWEEP_S`` (a few microseconds each).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from node.metrics import NodeMetrics
from node.net.framing import FramingError, Phase, RequestFraming

log = logging.getLogger("veche.node.net")

SWEEP_S = 0.25
LEVELDB_FILES = 1000        # LevelDB's default max_open_files: table files the store may keep open
NODE_FILES = 256            # logs, signing state, pipes, the results worker, thread pools, epoll, ...
CLIENT_CONNECTIONS = 64     # the node's own outgoing HTTP connections (one ClientSession, limit 64)
FD_TARGET = 65_536          # the soft RLIMIT_NOFILE is raised towards this (never past the hard limit)
_REFUSED_BODY = b'{"error": {"code": "too_many_connections", "message": "too many connections; retry later"}}'
REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
           b"Content-Type: application/json\r\nContent-Length: " + str(len(_REFUSED_BODY)).encode() + b"\r\n\r\n"
           + _REFUSED_BODY)
TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class GuardLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    min_body_rate: float = 4096.0
    max_connections: int = 2048
    max_per_network: int = 64
    max_reserved: int = 512


def raise_fd_limit(target: int = FD_TARGET) -> int:
    """Raise the soft limit on open files towards ``target`` (within the hard limit); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, wanted, exc)
    return int(soft) if soft != resource.RLIM_INFINITY else target


def fd_budget(fd_limit: int, max_reserved: int) -> int:
    """Public connections the process can hold and still keep room for its own files."""
    return max(0, fd_limit - LEVELDB_FILES - NODE_FILES - CLIENT_CONNECTIONS - max_reserved)


def network_of(address: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) of an address, as text (an IPv4-mapped IPv6 address counts as IPv4)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class ConnectionGuard:
    """Accounting and policy for every connection of one listening socket."""

    def __init__(self, limits: GuardLimits, metrics: NodeMetrics, *, reserved: Iterable[Network] = (),
                 fd_limit: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.reserved_networks = tuple(reserved)
        self.clock = clock
        limit = fd_limit if fd_limit is not None else raise_fd_limit()
        self.public_cap = min(limits.max_connections, fd_budget(limit, limits.max_reserved))
        if self.public_cap < 64:
            log.warning("only %d public connections fit the open-files limit %d: raise LimitNOFILE", self.public_cap,
                        limit)
        self.connections: set[GuardedProtocol] = set()
        self.public = 0
        self.reserved = 0
        self.per_network: dict[str, int] = {}
        self._reserved_cache: dict[str, bool] = {}
        self.refused = metrics.counter(
            "veche_connections_refused_total", "Connections closed at accept: over a cap (reason).", ("reason",))
        self.cut = metrics.counter(
            "veche_connections_cut_total", "Connections cut: slow head or body, or shed under pressure (reason).",
            ("reason",))
        metrics.gauge("veche_connections_public", "Open public connections.", lambda: float(self.public))
        metrics.gauge("veche_connections_reserved", "Open connections of validator peers and trusted clients.",
                      lambda: float(self.reserved))

    def set_reserved(self, networks: Iterable[Network]) -> None:
        """New reserved networks (the validator set changed); open connections keep the class they
        were admitted with."""
        self.reserved_networks = tuple(networks)
        self._reserved_cache.clear()

    # --- admission -------------------------------------------------------------------------------

    def is_reserved(self, address: str) -> bool:
        known = self._reserved_cache.get(address)
        if known is None:
            try:
                ip = ipaddress.ip_address(address.split("%", 1)[0])
            except ValueError:
                known = False
            else:
                mapped = getattr(ip, "ipv4_mapped", None)
                candidates = (ip,) if mapped is None else (ip, mapped)
                known = any(c in network for c in candidates for network in self.reserved_networks)
            if len(self._reserved_cache) > 65_536:
                self._reserved_cache.clear()
            self._reserved_cache[address] = known
        return known

    def admit(self, connection: GuardedProtocol) -> str | None:
        """Count the connection in; return the reason it is refused instead (nothing counted)."""
        if self.is_reserved(connection.address):
            if self.reserved >= self.limits.max_reserved:
                return "reserved_cap"
            connection.reserved = True
            self.reserved += 1
        else:
            network = network_of(connection.address)
            if self.public >= self.public_cap:
                return "total_cap"
            if self.public >= self.public_cap // 2 and self.per_network.get(network, 0) >= self.limits.max_per_network:
                return "network_cap"     # under pressure (half the pool taken) a network keeps to its cap
            connection.network = network
            self.public += 1
            self.per_network[network] = self.per_network.get(network, 0) + 1
        self.connections.add(connection)
        return None

    def release(self, connection: GuardedProtocol) -> None:
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        if connection.reserved:
            self.reserved -= 1
            return
        self.public -= 1
        left = self.per_network.get(connection.network, 1) - 1
        if left > 0:
            self.per_network[connection.network] = left
        else:
            self.per_network.pop(connection.network, None)

    # --- timeouts and shedding -------------------------------------------------------------------

    def sweep(self) -> None:
        now = self.clock()
        for connection in list(self.connections):
            if connection.closing:
                continue
            reason = connection.overdue(now, self.limits)
            if reason is not None:
                self.cut.inc(reason)
                connection.cut(reason)

    def shed(self, count: int) -> int:
        """Cut up to ``count`` public connections, those doing the least first; return how many."""
        candidates = sorted((c for c in self.connections if not c.reserved and not c.closing),
                            key=lambda c: (c.framing.phase is Phase.BODY, c.activity))
        for connection in candidates[:count]:
            self.cut.inc("shed")
            connection.cut("shed")
        if candidates:
            log.warning("shed %d public connections to free file descriptors", min(count, len(candidates)))
        return min(count, len(candidates))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            self.sweep()

    def protocol_factory(self, make_inner: Callable[[], asyncio.Protocol]) -> Callable[[], GuardedProtocol]:
        return lambda: GuardedProtocol(self, make_inner)


class GuardedProtocol(asyncio.Protocol):
    """Wraps aiohttp's per-connection protocol; creates it only for an admitted connection."""

    def __init__(self, guard: ConnectionGuard, make_inner: Callable[[], asyncio.Protocol]) -> None:
        self.guard = guard
        self._make_inner = make_inner
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.address = ""
        self.network = ""
        self.reserved = False
        self.framing = RequestFraming()
        now = guard.clock()
        self.opened = now
        self.activity = now          # last byte received
        self.head_started = now      # the current head's first byte (or the connection's start)
        self.body_started = now
        self.paused_since: float | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, asyncio.Transport):   # a stream server hands stream transports
            transport.close()
            return
        self.transport = transport
        peer: Any = transport.get_extra_info("peername")
        self.address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        refusal = self.guard.admit(self)
        if refusal is not None:
            self.guard.refused.inc(refusal)
            transport.write(REFUSED)
            transport.close()
            return
        self.inner = self._make_inner()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            return
        now = self.guard.clock()
        before = self.framing.phase
        try:
            self.framing.feed(data)
        except FramingError:
            self.guard.cut.inc("bad_framing")
            self.cut("bad_framing")
            return
        if before is Phase.IDLE and self.framing.phase is not Phase.IDLE:
            self.head_started = now
        if self.framing.phase is Phase.BODY and before is not Phase.BODY:
            self.body_started = now
        self.activity = now
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.release(self)
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    # --- policy -------------------------------------------------------------------------------

    def overdue(self, now: float, limits: GuardLimits) -> str | None:
        """Why this connection is to be cut now, or None."""
        phase = self.framing.phase
        if phase is Phase.HEAD or (phase is Phase.IDLE and self.framing.requests == 0):
            return "header_timeout" if now - self.head_started > limits.header_timeout_s else None
        if phase is not Phase.BODY:
            return None              # between requests: aiohttp's keep-alive timeout closes idle ones
        transport = self.transport
        if transport is not None and not transport.is_reading():
            # aiohttp stopped reading (its buffer is full: the node is the slow side) — not the client's time
            if self.paused_since is None:
                self.paused_since = now
            return None
        if self.paused_since is not None:
            paused = now - self.paused_since
            self.body_started += paused
            self.activity = max(self.activity, now - SWEEP_S)
            self.paused_since = None
        if now - self.activity > limits.body_timeout_s:
            return "body_timeout"
        elapsed = now - self.body_started - limits.body_timeout_s
        if elapsed > 0 and self.framing.body_bytes < elapsed * limits.min_body_rate:
            return "body_too_slow"
        return None

    @property
    def closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def cut(self, reason: str) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        log.debug("cutting connection from %s: %s", self.address, reason)
        if self.framing.requests == 0 and reason == "header_timeout":
            transport.write(TIMED_OUT)
        transport.abort()
