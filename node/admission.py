"""Who may submit how many transactions: per-client, node-wide and trusted-client budgets.

A ``POST /api/v1/txs`` is charged, per transaction in the batch, against two token buckets:

* the client's own bucket (``limits.client_tx_rate`` / ``client_tx_burst``, one per client IP,
  ``ClientBudgets``), so one address cannot take more than its share;
* the **node-wide** bucket shared by every untrusted client (``limits.node_tx_rate`` /
  ``node_tx_burst``), so many addresses together cannot push more work into signature checks
  than the node can do beside consensus. Its default rate is derived from this machine's
  measured Ed25519 verification rate (``measure_verify_rate``, CPU time of one thread, so a busy
  machine at start-up does not skew it): one ``AUTO_NODE_SHARE``-th of it.

Clients in ``limits.trusted_clients`` (IP addresses or networks: the gateway, observers that
forward, an operator's tools) skip both and spend a bucket of their own (``trusted_tx_rate``), so
anonymous flooders can exhaust neither the node-wide budget of trusted clients nor theirs.

``precheck`` runs before the body is read (a bucket must hold at least one token); ``take`` runs
after decoding, when the batch size is known, and charges every bucket involved or none. A refusal
is a ``Refusal`` (which bucket, seconds to wait): the API answers 429 with ``Retry-After`` without
decoding a transaction or checking a signature.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from chain.crypto import SigningKey, verify
from node.mempool import MAX_BATCH_TXS, ClientBudgets

AUTO_NODE_SHARE = 8          # node_tx_rate = measured verify rate / this (see docs/NODE.md §3)
AUTO_MIN_RATE = 200
AUTO_MAX_RATE = 10_000
VERIFY_SAMPLES = 200
TRUSTED_CACHE = 4096

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused by a budget: ``scope`` is ``client``, ``node`` or ``trusted``."""

    scope: str
    retry_after: float

    def message(self, amount: int | None = None) -> str:
        what = "this client's" if self.scope == "client" else (
            "the trusted clients'" if self.scope == "trusted" else "this node's shared (all untrusted clients)")
        if amount is None:
            return f"{what} transaction budget is spent; slow down"
        return f"{what} transaction budget does not cover {amount} more transactions now; slow down"


class TokenBucket:
    """One bucket: ``rate`` tokens per second up to ``burst``."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()

    def level(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        return self._tokens

    def wait_for(self, amount: float) -> float | None:
        """Seconds until ``amount`` tokens are there, or None if they are now."""
        level = self.level()
        return None if level >= amount else (amount - level) / self.rate

    def spend(self, amount: float) -> None:
        self._tokens = self.level() - amount


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.5", "192.168.1.0/24", "::1"]`` → networks; raises ``ValueError`` naming a bad entry."""
    networks: list[Network] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an IP address or network ({exc})") from exc
    return tuple(networks)


def measure_verify_rate(samples: int = VERIFY_SAMPLES) -> float:
    """Ed25519 verifications per second of CPU time on this machine, fresh key per signature (as for
    ballots); the best of three rounds of ``samples``, timed with the thread's CPU clock."""
    message = b"veche/v1/vote.cast" + bytes(96)
    keys = [SigningKey.generate() for _ in range(samples)]
    signed = [(key.public_key, key.sign(message)) for key in keys]
    best = 0.0
    for _ in range(3):
        started = time.thread_time()
        for public_key, signature in signed:
            verify(public_key, signature, message)
        spent = time.thread_time() - started
        if spent > 0:
            best = max(best, samples / spent)
    return best


def auto_node_rate(verify_rate: float) -> int:
    return int(min(AUTO_MAX_RATE, max(AUTO_MIN_RATE, verify_rate / AUTO_NODE_SHARE)))


class AdmissionControl:
    def __init__(self, *, client_rate: float, client_burst: float, node_rate: float, node_burst: float,
                 trusted: Iterable[Network] = (), trusted_rate: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clients = ClientBudgets(client_rate, client_burst, clock=clock)
        burst = max(node_burst, MAX_BATCH_TXS)  # a full batch can always pass, in time
        self.node = TokenBucket(node_rate, burst, clock)
        self.trusted_networks = tuple(trusted)
        self.trusted = TokenBucket(trusted_rate if trusted_rate else node_rate, burst, clock)
        self._trusted_cache: OrderedDict[str, bool] = OrderedDict()

    @property
    def node_rate(self) -> float:
        return self.node.rate

    def is_trusted(self, client: str) -> bool:
        if not self.trusted_networks:
            return False
        known = self._trusted_cache.get(client)
        if known is None:
            try:
                address = ipaddress.ip_address(client)
            except ValueError:
                known = False
            else:
                mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:10.0.0.7 on a dual-stack socket
                candidates = (address,) if mapped is None else (address, mapped)
                known = any(candidate in network for candidate in candidates for network in self.trusted_networks)
            self._trusted_cache[client] = known
            while len(self._trusted_cache) > TRUSTED_CACHE:
                self._trusted_cache.popitem(last=False)
        return known

    def precheck(self, client: str) -> Refusal | None:
        """Before reading the body: refuse when a bucket this client draws on is empty."""
        if self.is_trusted(client):
            wait = self.trusted.wait_for(1)
            return None if wait is None else Refusal("trusted", wait)
        wait = self.clients.retry_after(client)
        if wait is not None:
            return Refusal("client", wait)
        wait = self.node.wait_for(1)
        return None if wait is None else Refusal("node", wait)

    def take(self, client: str, amount: int) -> Refusal | None:
        """Charge ``amount`` transactions to every bucket of this client, or to none (and say why)."""
        if self.is_trusted(client):
            wait = self.trusted.wait_for(amount)
            if wait is not None:
                return Refusal("trusted", wait)
            self.trusted.spend(amount)
            return None
        wait = self.clients.retry_after(client, amount)
        if wait is not None:
            return Refusal("client", wait)
        wait = self.node.wait_for(amount)
        if wait is not None:
            return Refusal("node", wait)
        self.clients.take(client, amount)
        self.node.spend(amount)
        return None


__all__ = ["AdmissionControl", "Refusal", "TokenBucket", "auto_node_rate", "measure_verify_rate", "parse_networks"]
