"""Anti-fraud and overload guards: rate limits, client addresses, CSRF tokens, refusal counts.

Rate limits are token buckets per key (an IP address, a /24 subnet — /64 for IPv6 — or a phone's
keyed hash). Every refusal is logged with its reason (never a phone number) and counted per
(campaign, district, reason); the counts are public (``/transparency``) and kept in the store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from chain.numbers import is_decimal, parse_decimal
from chain.storage import KeyValueStore
from gateway.config import RateLimit
from gateway.errors import Refusal
from gateway.vault import blocked_key, decode_u64, encode_u64
from genesis.forwarding import ProxyTrust, parse_networks

log = logging.getLogger("veche.gateway.guard")

NO_CAMPAIGN = "-"


class TokenBuckets:
    """At most ``limit.count`` events per ``limit.seconds`` per key, refilled evenly.

    Memory is bounded: beyond ``max_keys`` the least recently used key is forgotten (which can
    only make the limiter more lenient for that key, never refuse someone wrongly).
    """

    def __init__(self, limit: RateLimit, *, max_keys: int = 200_000) -> None:
        self.capacity = float(limit.count)
        self.rate = limit.count / limit.seconds
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, now: float) -> float | None:
        """Take one token; return None if allowed, else the seconds until a token is available."""
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            self._buckets.move_to_end(key)
            return (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens - 1.0, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return None

    def forget(self, key: str) -> None:
        """Drop ``key``'s bucket: it starts full again (an operator's unlock)."""
        self._buckets.pop(key, None)


def subnet_of(address: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) network of an address, as text."""
    head, dot, last = address.rpartition(".")
    if dot and is_decimal(last, 3) and ":" not in address:      # a normalised IPv4 address (the common case)
        return f"{head}.0/24"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


LOOPBACK_PROXIES = ProxyTrust(parse_networks(("127.0.0.1", "::1"), "trusted_proxies"))


def client_address(request: web.Request, trusted_proxy_header: str | None,
                   proxies: ProxyTrust = LOOPBACK_PROXIES) -> str:
    """The client's IP: the TCP peer, or — when ``trusted_proxy_header`` is set and the peer is one of
    ``proxies`` (config ``trusted_proxies``) — the address that header names (genesis/forwarding.py)."""
    if not trusted_proxy_header:
        return request.remote or "unknown"
    value = ",".join(request.headers.getall(trusted_proxy_header, ())) or None
    if trusted_proxy_header.lower() == "x-forwarded-for":
        return proxies.client(request.remote, forwarded_for=value)
    return proxies.client(request.remote, real_ip=value)


@dataclass(frozen=True, slots=True)
class Where:
    """Which campaign and district a refused request was about ("-" when not known yet)."""

    campaign_id: str = NO_CAMPAIGN
    district_id: str = NO_CAMPAIGN


class RefusalLog:
    """Counts refusals per (campaign, district, reason); flushes to the store periodically."""

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self._dirty: set[tuple[str, str, str]] = set()
        for key, value in store.iterate(b"B/"):
            parts = key[2:].decode().split("/")
            if len(parts) == 3:
                self.counts[(parts[0], parts[1], parts[2])] = decode_u64(value)

    def refuse(self, refusal: Refusal, where: Where, client: str) -> None:
        entry = (where.campaign_id, where.district_id, refusal.reason)
        self.counts[entry] += 1
        self._dirty.add(entry)
        log.info("refused: reason=%s status=%s client=%s campaign=%s district=%s", refusal.reason,
                 refusal.status, client, where.campaign_id, where.district_id)

    def flush(self) -> None:
        if not self._dirty:
            return
        writes: dict[bytes, bytes | None] = {blocked_key(*entry): encode_u64(self.counts[entry])
                                             for entry in self._dirty}
        self._dirty.clear()
        self.store.write(writes, sync=False)

    def by_district(self) -> dict[tuple[str, str], Counter[str]]:
        table: dict[tuple[str, str], Counter[str]] = {}
        for (campaign_id, district_id, reason), count in self.counts.items():
            table.setdefault((campaign_id, district_id), Counter())[reason] += count
        return table


class CsrfTokens:
    """``<issued ms>.<mac>`` bound to the session id; also carries the form's issue time.

    A token proves the form came from this gateway to this session, and when: a POST sooner than
    ``form_min_seconds`` after the form was issued is refused (bots fill forms instantly). A token
    is **single-use**: once a POST passed with it, the same token is refused (``form_reused``), so
    the minimum form time is paid for every POST, not once per 4-hour token. Every page that holds
    a form carries a fresh token. Used tokens are remembered until they would be stale anyway (at
    most ``MAX_USED`` of them; beyond that the oldest is forgotten, which only re-opens one stale
    form to a second POST).
    """

    MAX_AGE_MS = 4 * 3600 * 1000
    MAX_USED = 500_000

    def __init__(self, secret: bytes, clock: Callable[[], int]) -> None:
        self.secret = secret
        self.clock = clock
        self._used: OrderedDict[str, int] = OrderedDict()   # token -> issued ms, oldest use first

    def _mac(self, session_id: str, issued_ms: int, nonce: str) -> str:
        digest = hmac.new(self.secret, f"veche/gw/csrf/v2|{session_id}|{issued_ms}|{nonce}".encode(),
                          hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()

    def issue(self, session_id: str) -> str:
        """``<issued ms>.<nonce>.<mac>``: the nonce makes two forms of one millisecond different tokens."""
        now = self.clock()
        nonce = secrets.token_urlsafe(6)
        return f"{now}.{nonce}.{self._mac(session_id, now, nonce)}"

    def check(self, session_id: str, token: str, form_min_seconds: float, *, single_use: bool = True) -> None:
        """Raise ``Refusal`` unless ``token`` is this session's and old enough but not stale."""
        issued_text, _, rest = token.partition(".")
        nonce, _, mac = rest.partition(".")
        issued = parse_decimal(issued_text, 15)
        if issued is None or not nonce or not mac or len(token) > 80:
            raise Refusal("err_csrf", status=403, reason="csrf")
        if not hmac.compare_digest(mac.encode(), self._mac(session_id, issued, nonce).encode()):
            raise Refusal("err_csrf", status=403, reason="csrf")
        age = self.clock() - issued
        if age > self.MAX_AGE_MS:
            raise Refusal("err_form_stale", status=403, reason="form_stale")
        if age < form_min_seconds * 1000:
            raise Refusal("err_too_fast", status=429, reason="too_fast",
                          retry_after=max(1, int(form_min_seconds - age / 1000 + 0.999)))
        if single_use:
            self._consume(token, issued)

    def _consume(self, token: str, issued: int) -> None:
        if token in self._used:
            raise Refusal("err_form_used", status=403, reason="form_reused")
        self._used[token] = issued
        horizon = self.clock() - self.MAX_AGE_MS
        while self._used and (len(self._used) > self.MAX_USED or next(iter(self._used.values())) < horizon):
            self._used.popitem(last=False)


class Limiter:
    """The named rate limits of the gateway (see ``gateway.config.Limits``)."""

    def __init__(self, limits: dict[str, RateLimit], monotonic: Callable[[], float] = time.monotonic) -> None:
        self.buckets = {name: TokenBuckets(limit) for name, limit in limits.items()}
        self.monotonic = monotonic

    def forget(self, name: str, key: str) -> None:
        self.buckets[name].forget(key)

    def check(self, name: str, key: str, reason: str) -> None:
        wait = self.buckets[name].take(key, self.monotonic())
        if wait is not None:
            raise Refusal("err_rate_limited", status=429, reason=reason, retry_after=max(1, int(wait + 0.999)))
