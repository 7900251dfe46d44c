"""The client address behind a reverse proxy: headers believed only from listed proxies."""

from __future__ import annotations

import pytest

from genesis.forwarding import ProxyTrust, normalize_address, parse_networks

PROXIES = ProxyTrust(parse_networks(["127.0.0.1", "::1", "10.0.0.0/8"], "trusted_proxies"))


@pytest.mark.parametrize("peer, forwarded_for, real_ip, client", [
    ("127.0.0.1", "203.0.113.4", None, "203.0.113.4"),                   # the proxy names the client
    ("127.0.0.1", None, "203.0.113.4", "203.0.113.4"),
    ("127.0.0.1", "198.51.100.9, 203.0.113.4", None, "203.0.113.4"),     # the client's own entry is ignored
    ("127.0.0.1", "203.0.113.4, 10.1.1.1", None, "203.0.113.4"),         # a second listed proxy is skipped
    ("127.0.0.1", "10.2.2.2, 10.1.1.1", None, "10.2.2.2"),               # all proxies: the left-most
    ("127.0.0.1", "203.0.113.4, garbage", None, "127.0.0.1"),            # malformed: charged to the proxy
    ("127.0.0.1", None, "not-an-address", "127.0.0.1"),
    ("::1", "[2001:db8::7]", None, "2001:db8::7"),
    ("127.0.0.1", "::ffff:203.0.113.4", None, "203.0.113.4"),
    ("198.51.100.50", "10.9.9.9", "10.9.9.9", "198.51.100.50"),         # not a proxy: headers ignored
    ("127.0.0.1", None, None, "127.0.0.1"),
    (None, "203.0.113.4", None, "unknown"),
])
def test_client_address(peer: str | None, forwarded_for: str | None, real_ip: str | None, client: str) -> None:
    assert PROXIES.client(peer, forwarded_for, real_ip) == client


def test_without_trusted_proxies_headers_are_never_believed() -> None:
    nobody = ProxyTrust()
    assert not nobody and nobody.client("127.0.0.1", "203.0.113.4", "203.0.113.4") == "127.0.0.1"


def test_bad_entries_are_refused_with_their_place() -> None:
    with pytest.raises(ValueError, match="trusted_proxies: 'ten.0.0.1' is not an IP address or network"):
        parse_networks(["127.0.0.1", "ten.0.0.1"], "trusted_proxies")
    assert normalize_address("1.2.3.4.5") is None and normalize_address("x" * 100) is None
