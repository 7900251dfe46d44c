"""Unit tests of the guards: token buckets, client addresses and subnets, CSRF tokens."""

from __future__ import annotations

from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from gateway.config import RateLimit
from gateway.errors import Refusal
from gateway.guard import CsrfTokens, Limiter, TokenBuckets, client_address, subnet_of
from genesis.forwarding import ProxyTrust, parse_networks


def test_token_bucket_allows_a_burst_then_refills_evenly() -> None:
    buckets = TokenBuckets(RateLimit(3, 60))
    assert [buckets.take("a", 0.0) for _ in range(3)] == [None, None, None]
    wait = buckets.take("a", 0.0)
    assert wait is not None and 19.9 < wait <= 20.0
    assert buckets.take("b", 0.0) is None                 # keys are independent
    assert buckets.take("a", 20.0) is None                # one token back after 60/3 s
    assert buckets.take("a", 20.0) is not None


def test_token_bucket_memory_is_bounded() -> None:
    buckets = TokenBuckets(RateLimit(1, 60), max_keys=100)
    for i in range(1000):
        buckets.take(str(i), 0.0)
    assert len(buckets._buckets) == 100


def test_limiter_refusal_carries_retry_after() -> None:
    clock = [0.0]
    limiter = Limiter({"x": RateLimit(1, 10)}, monotonic=lambda: clock[0])
    limiter.check("x", "k", "rate_ip")
    with pytest.raises(Refusal) as caught:
        limiter.check("x", "k", "rate_ip")
    assert caught.value.status == 429 and caught.value.retry_after == 10 and caught.value.reason == "rate_ip"


@pytest.mark.parametrize("address, subnet", [
    ("10.1.2.3", "10.1.2.0/24"), ("192.0.2.255", "192.0.2.0/24"), ("::ffff:10.1.2.3", "10.1.2.0/24"),
    ("2001:db8:1:2:3::4", "2001:db8:1:2::/64"), ("unknown", "unknown"),
])
def test_subnets(address: str, subnet: str) -> None:
    assert subnet_of(address) == subnet


def from_peer(peer: str, headers: dict[str, str]) -> web.Request:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (peer, 40000) if name == "peername" else default
    return make_mocked_request("GET", "/", headers=headers, transport=transport)


def test_client_address_from_the_trusted_header_only_when_configured() -> None:
    request = from_peer("127.0.0.1", {"X-Real-IP": "203.0.113.9"})
    assert client_address(request, None) == "127.0.0.1"
    assert client_address(request, "X-Real-IP") == "203.0.113.9"
    chained = from_peer("127.0.0.1", {"X-Forwarded-For": "1.1.1.1, 198.51.100.7"})
    assert client_address(chained, "X-Forwarded-For") == "198.51.100.7"
    v6 = from_peer("::1", {"X-Real-IP": "2001:DB8::1"})
    assert client_address(v6, "X-Real-IP") == "2001:db8::1"
    garbage = from_peer("127.0.0.1", {"X-Real-IP": "999.1.1.1; drop table"})
    assert client_address(garbage, "X-Real-IP") == client_address(garbage, None) == "127.0.0.1"


def test_client_address_header_is_believed_only_from_a_trusted_proxy() -> None:
    forged = from_peer("198.51.100.50", {"X-Real-IP": "10.0.0.7", "X-Forwarded-For": "10.0.0.7"})
    assert client_address(forged, "X-Real-IP") == "198.51.100.50"
    assert client_address(forged, "X-Forwarded-For") == "198.51.100.50"
    proxies = ProxyTrust(parse_networks(["192.0.2.0/24"], "trusted_proxies"))
    via_proxy = from_peer("192.0.2.10", {"X-Forwarded-For": "10.0.0.7, 203.0.113.4, 192.0.2.11"})
    assert client_address(via_proxy, "X-Forwarded-For", proxies) == "203.0.113.4"  # proxies skipped from the right
    assert client_address(via_proxy, "X-Forwarded-For") == "192.0.2.10"           # default: loopback only


def test_csrf_tokens_bind_session_and_time() -> None:
    now = [1_000_000]
    tokens = CsrfTokens(b"k" * 32, lambda: now[0])
    token = tokens.issue("session-a")
    now[0] += 2000
    tokens.check("session-a", token, 1.0)
    for bad in (tokens.issue("session-b"), token.replace(".", ".x"), "abc", "", "1." + token.split(".")[1]):
        with pytest.raises(Refusal) as caught:
            tokens.check("session-a", bad, 0)
        assert caught.value.reason == "csrf"
    fresh = tokens.issue("session-a")
    with pytest.raises(Refusal) as caught:
        tokens.check("session-a", fresh, 1.0)
    assert caught.value.reason == "too_fast" and caught.value.retry_after == 1
    now[0] += CsrfTokens.MAX_AGE_MS + 1
    with pytest.raises(Refusal) as caught:
        tokens.check("session-a", fresh, 0)
    assert caught.value.reason == "form_stale"
