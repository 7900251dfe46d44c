"""Who may submit how many transactions: per-client, node-wide and trusted-client budgets.

A ``POST /api/v1/txs`` is charged, per transaction in the batch, against two token buckets:

* the client's own bucket (``limits.client_tx_rate`` / ``client_tx_burst``, one per client IP,
  ``ClientBudgets``), so one address cannot take more than its share;
* the **node-wide** bucket shared by every untrusted client (``limits.node_tx_rate`` /
  ``node_tx_burst``), so many addresses together cannot push more work into signature checks
  than the node can do beside consensus. Its default rate is derived from this machine's
  measured Ed25519 verification rate (``measure_verify_rate``, CPU time of one thread, so a busy
  machine at start-up does not skew it): one ``AUTO_NODE_SHARE``-th of it.

The node-wide bucket is shared **fairly**: ``FairShare`` keeps, per client *group* (an IPv4 /24, an
IPv6 /56: what one subscriber or one hosting customer usually holds), how many transactions it
took in the last second (two one-second windows, interpolated) and how many groups were active.
A group that has taken less than its equal share (``node_tx_rate`` / active groups) may spend the
whole node bucket; one that has taken its share already may only spend what lies above a reserve
(``FAIR_RESERVE`` of the bucket). While flooders keep the bucket near the reserve, the reserve is
left to clients under their share: a light client keeps being admitted, the heavy ones split what
is left, and the total never exceeds the node-wide rate (one bucket). With the bucket full, or one
group active, nobody is held back. O(1) per request; at most ``MAX_GROUPS`` groups are remembered
(least recently seen forgotten).

Clients in ``limits.trusted_clients`` (IP addresses or networks: the gateway, observers that
forward, an operator's tools) skip both and spend a bucket of their own (``trusted_tx_rate``), so
anonymous flooders can exhaust neither the node-wide budget of trusted clients nor theirs.

``precheck`` runs before the body is read (a bucket must hold at least one token); ``take`` runs
after decoding, when the batch size is known, and charges every bucket involved or none. A refusal
is a ``Refusal`` (which bucket, seconds to wait): the API answers 429 with ``Retry-After`` without
decoding a transaction or checking a signature.
"""

from __future__ import annotations

import functools
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
FAIR_WINDOW_S = 1.0          # usage and activity are counted over the last second (two windows)
FAIR_RESERVE = 0.25          # share of the node bucket only clients under their fair share may spend
MAX_GROUPS = 10_000
FAILURE_BYTES_PER_TX = 512   # a body that does not decode is charged as this many bytes per transaction
IPV4_GROUP_PREFIX = 24
IPV6_GROUP_PREFIX = 56

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused by a budget: ``scope`` is ``client``, ``node``, ``share`` (the node-wide
    budget is under pressure and this client's group took its fair share of it) or ``trusted``."""

    scope: str
    retry_after: float

    def message(self, amount: int | None = None) -> str:
        what = "this client's" if self.scope == "client" else (
            "the trusted clients'" if self.scope == "trusted" else "this node's shared (all untrusted clients)")
        if self.scope == "share":
            return ("this node's shared transaction budget is under pressure and this client's network took "
                    "its fair share of it in the last second; slow down")
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


@functools.lru_cache(maxsize=TRUSTED_CACHE)
def client_group(client: str) -> str:
    """The group a client address is counted in for fair sharing: its IPv4 /24 or IPv6 /56."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    prefix = IPV4_GROUP_PREFIX if address.version == 4 else IPV6_GROUP_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


class FairShare:
    """Who has taken how much of the node-wide bucket in the last second (see the module docstring)."""

    def __init__(self, rate: float, clock: Callable[[], float], *, max_groups: int = MAX_GROUPS) -> None:
        self.rate = float(rate)
        self.max_groups = max_groups
        self._clock = clock
        # group -> [window index, taken in that window, taken in the window before]
        self._groups: OrderedDict[str, list[float]] = OrderedDict()
        self._window = self._window_of(clock())
        self._active = 0            # groups seen in the current window
        self._active_before = 0     # ... and in the previous one

    @staticmethod
    def _window_of(now: float) -> int:
        return int(now // FAIR_WINDOW_S)

    def _roll(self, now: float) -> int:
        window = self._window_of(now)
        if window != self._window:
            self._active_before = self._active if window == self._window + 1 else 0
            self._active = 0
            self._window = window
        return window

    def _record(self, group: str, window: int) -> list[float]:
        record = self._groups.get(group)
        if record is None:
            record = [window, 0.0, 0.0]
            self._groups[group] = record
            self._active += 1
            while len(self._groups) > self.max_groups:
                self._groups.popitem(last=False)
        elif record[0] != window:
            record[2] = record[1] if record[0] == window - 1 else 0.0
            record[1] = 0.0
            record[0] = window
            self._active += 1
        self._groups.move_to_end(group)
        return record

    def over_share(self, group: str) -> bool:
        """Has ``group`` taken at least its equal share of the node rate in the last second? (Marks it active.)"""
        now = self._clock()
        window = self._roll(now)
        record = self._record(group, window)
        elapsed = now / FAIR_WINDOW_S - window
        taken = record[1] + record[2] * (1.0 - elapsed)
        groups = max(1, self._active, self._active_before)
        return groups > 1 and taken >= self.rate * FAIR_WINDOW_S / groups

    def charge(self, group: str, amount: float) -> None:
        self._record(group, self._roll(self._clock()))[1] += amount


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
        self.share = FairShare(node_rate, clock)
        self.reserve = burst * FAIR_RESERVE

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
        return self._node_refusal(client_group(client), 1)

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
        group = client_group(client)
        refusal = self._node_refusal(group, amount)
        if refusal is not None:
            return refusal
        self.clients.take(client, amount)
        self.node.spend(amount)
        self.share.charge(group, amount)
        return None

    def charge_failure(self, client: str, body_bytes: int) -> None:
        """A body that failed to decode still cost reading and decoding: charge it as the number of
        transactions it could have held (``FAILURE_BYTES_PER_TX`` bytes each, at least one), to this
        client's bucket (and, untrusted, to the node-wide bucket and its network's share), so a
        client sending garbage meets 429 like one sending too many transactions. The node-wide bucket
        is not charged (it meters signature checks, which garbage never reaches)."""
        amount = max(1, min(MAX_BATCH_TXS, body_bytes // FAILURE_BYTES_PER_TX))
        if self.is_trusted(client):
            self.trusted.spend(amount)
            return
        self.clients.charge(client, amount)
        self.share.charge(client_group(client), amount)

    def _node_refusal(self, group: str, amount: int) -> Refusal | None:
        """The node-wide bucket: a group past its fair share may not spend the reserve (a full bucket it may)."""
        if self.share.over_share(group):
            wait = self.node.wait_for(min(amount + self.reserve, self.node.burst))
            return None if wait is None else Refusal("share", wait)
        wait = self.node.wait_for(amount)
        return None if wait is None else Refusal("node", wait)


__all__ = ["AdmissionControl", "FairShare", "Refusal", "client_group", "TokenBucket", "auto_node_rate", "measure_verify_rate", "parse_networks"]
