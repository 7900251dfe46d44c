"""The connection guard's parts without sockets: request framing, caps, timeouts and shedding."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from node.metrics import NodeMetrics
from node.net.framing import FramingError, Phase, RequestFraming
from node.net.guard import ConnectionGuard, GuardedProtocol, GuardLimits, fd_budget, network_of


def test_framing_follows_heads_and_content_length_bodies_across_chunks() -> None:
    framing = RequestFraming()
    framing.feed(b"GET /a HTTP/1.1\r\nHost: x\r")
    assert framing.phase is Phase.HEAD
    framing.feed(b"\n\r\nPOST /b HTTP/1.1\r\ncontent-length: 5\r\n\r\nab")
    assert (framing.phase, framing.requests, framing.body_bytes) == (Phase.BODY, 2, 2)
    framing.feed(b"cdeGET /c HTTP/1.1\r\n\r\n")
    assert (framing.phase, framing.requests) == (Phase.IDLE, 3)


def phase_of(framing: RequestFraming) -> Phase:
    return framing.phase


def test_framing_follows_chunked_bodies_and_trailers() -> None:
    framing = RequestFraming()
    framing.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert framing.phase is Phase.BODY
    for byte in b"3;ext=1\r\nabc\r\n10\r\n" + b"x" * 16 + b"\r\n0\r\nTrailer: 1\r\n":
        framing.feed(bytes([byte]))
        assert framing.phase is Phase.BODY
    framing.feed(b"\r\n")
    assert phase_of(framing) is Phase.IDLE and framing.requests == 1


@pytest.mark.parametrize("data", [b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                                  b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\xd9\xa3\r\n",
                                  b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000])
def test_framing_refuses_what_it_cannot_follow(data: bytes) -> None:
    with pytest.raises(FramingError):
        RequestFraming().feed(data)


def test_a_unicode_content_length_is_no_body() -> None:
    framing = RequestFraming()
    framing.feed("POST / HTTP/1.1\r\nContent-Length: ٣\r\n\r\n".encode())
    assert framing.phase is Phase.IDLE


@pytest.mark.parametrize("address, network", [("10.1.2.3", "10.1.2.0/24"), ("::ffff:10.1.2.3", "10.1.2.0/24"),
                                              ("2001:db8:1:2:3::9", "2001:db8:1:2::/64"), ("junk", "junk")])
def test_networks_are_slash_24_and_slash_64(address: str, network: str) -> None:
    assert network_of(address) == network


def test_the_fd_budget_keeps_room_for_the_nodes_own_files() -> None:
    assert fd_budget(65_536, 512) == 65_536 - 1000 - 256 - 64 - 512
    assert fd_budget(1024, 512) == 0


class FakeTransport(asyncio.Transport):
    def __init__(self, peer: str) -> None:
        super().__init__()
        self.peer = peer
        self.written = b""
        self.closing = False
        self.reading = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self.peer, 4242) if name == "peername" else default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def is_reading(self) -> bool:
        return self.reading


class Inner(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = b""
        self.lost = False

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


def connect(guard: ConnectionGuard, peer: str) -> tuple[GuardedProtocol, FakeTransport]:
    protocol = guard.protocol_factory(Inner)()
    transport = FakeTransport(peer)
    protocol.connection_made(transport)
    return protocol, transport


def make_guard(now: list[float], **limits: float) -> ConnectionGuard:
    return ConnectionGuard(GuardLimits(**limits), NodeMetrics(), fd_limit=100_000, clock=lambda: now[0],  # type: ignore[arg-type]
                           reserved=[ipaddress.ip_network("10.9.9.9/32")])


def test_caps_per_network_and_in_total_and_the_reserved_pool() -> None:
    now = [0.0]
    guard = make_guard(now, max_connections=6, max_per_network=2, max_reserved=1)
    # 1.1.1.0/24 may hold 3 while the pool (6) is under half full; at 3 of 6 it keeps to its cap of 2
    results = [connect(guard, address) for address in ("1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4", "2.2.2.2",
                                                        "3.3.3.3", "4.4.4.4", "5.5.5.5", "10.9.9.9", "10.9.9.9")]
    refused = [t.peer for _, t in results if t.written.startswith(b"HTTP/1.1 503")]
    assert refused == ["1.1.1.4", "5.5.5.5", "10.9.9.9"]
    assert all(p.inner is None for p, t in results if t.peer in refused and t.closing)
    assert (guard.public, guard.reserved) == (6, 1)
    for protocol, _ in results[:2]:                # two of 1.1.1.0/24 leave: one fits again, not two
        protocol.connection_lost(None)
    assert guard.per_network["1.1.1.0/24"] == 1 and guard.public == 4
    assert connect(guard, "1.1.1.9")[1].written == b""
    assert connect(guard, "1.1.1.10")[1].written.startswith(b"HTTP/1.1 503")


def test_slow_heads_and_slow_bodies_are_cut_and_paused_reading_is_not_held_against_the_client() -> None:
    now = [0.0]
    guard = make_guard(now, header_timeout_s=2, body_timeout_s=2, min_body_rate=100)
    silent, silent_t = connect(guard, "1.0.0.1")
    trickle, trickle_t = connect(guard, "1.0.1.1")
    slow, slow_t = connect(guard, "1.0.2.1")
    paused, paused_t = connect(guard, "1.0.3.1")
    for protocol in (slow, paused):
        protocol.data_received(b"POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n")
    for step in range(1, 13):                     # 3 s, a quarter second at a time
        now[0] = step * 0.25
        trickle.data_received(b"X: 1\r\n")
        slow.data_received(b"x" * 10)             # 40 bytes/s < 100 after the grace
        paused_t.reading = now[0] < 2.0           # the node stopped reading until 2 s
        paused.data_received(b"x" * 10 if paused_t.reading else b"")
        guard.sweep()
    assert silent_t.closing and silent_t.written.startswith(b"HTTP/1.1 408")
    assert trickle_t.closing
    assert not paused_t.closing
    now[0] = 4.5
    slow.data_received(b"x")
    guard.sweep()
    assert slow_t.closing
    assert guard.cut.value("header_timeout") == 2 and guard.cut.value("body_too_slow") == 1


def test_shedding_cuts_public_connections_doing_the_least_and_never_reserved_ones() -> None:
    now = [0.0]
    guard = make_guard(now)
    uploading, uploading_t = connect(guard, "1.0.0.1")
    uploading.data_received(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n")
    idle = [connect(guard, f"1.0.{i}.2") for i in range(1, 4)]
    reserved, reserved_t = connect(guard, "10.9.9.9")
    assert guard.shed(3) == 3
    assert all(t.closing for _, t in idle) and not uploading_t.closing and not reserved_t.closing
    assert guard.shed(5) == 1 and uploading_t.closing and not reserved_t.closing
