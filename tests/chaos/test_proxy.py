"""The fault proxy cuts real TCP connections per direction, and heals without losing bytes."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from veche_chaos.fabric import free_port_block
from veche_chaos.proxy import BLACKHOLE, PASS, RESET, LinkSpec, ProxyServer


async def _echo_server(port: int) -> asyncio.base_events.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", port)


async def _roundtrip(port: int, payload: bytes, timeout: float = 2.0) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), timeout)
    finally:
        writer.close()


async def _scenario() -> None:
    base = free_port_block(3)
    target, forward, backward = base, base + 1, base + 2
    server = await _echo_server(target)
    proxy = ProxyServer([LinkSpec("a->b", "127.0.0.1", forward, "127.0.0.1", target),
                         LinkSpec("b->a", "127.0.0.1", backward, "127.0.0.1", target)])
    await proxy.start()
    try:
        assert await _roundtrip(forward, b"hello") == b"hello"

        # one direction blackholed: its connections stall, the other direction still flows
        reader, writer = await asyncio.open_connection("127.0.0.1", forward)
        writer.write(b"before")
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(6), 2) == b"before"
        proxy.apply(PASS, {"a->b": BLACKHOLE})
        writer.write(b"during-the-cut")
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readexactly(14), 0.7)
        with pytest.raises(TimeoutError):
            await _roundtrip(forward, b"new", timeout=0.7)
        assert await _roundtrip(backward, b"other way") == b"other way"
        assert proxy.links["a->b"].describe()["state"] == BLACKHOLE

        # heal: the frozen connection resumes with nothing lost
        proxy.apply(PASS, {})
        assert await asyncio.wait_for(reader.readexactly(14), 3) == b"during-the-cut"
        assert await _roundtrip(forward, b"after") == b"after"

        # reset: open connections are aborted with RST, new ones refused at once
        proxy.apply(PASS, {"a->b": RESET})
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
            writer.write(b"x")
            await writer.drain()
            await asyncio.wait_for(reader.readexactly(1), 2)
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
            await _roundtrip(forward, b"refused")
        assert proxy.links["a->b"].reset >= 2
        proxy.apply(PASS, {})
        assert await _roundtrip(forward, b"again") == b"again"
        writer.close()
    finally:
        await proxy.close()
        server.close()


def test_proxy_blackholes_resets_and_heals_per_direction() -> None:
    asyncio.run(_scenario())


def test_proxy_rejects_unknown_links_and_states() -> None:
    proxy = ProxyServer([LinkSpec("a->b", "127.0.0.1", 1, "127.0.0.1", 2)])
    with pytest.raises(ValueError):
        proxy.apply(PASS, {"nope": BLACKHOLE})
    with pytest.raises(ValueError):
        proxy.apply("drop-everything", {})
    assert proxy.links["a->b"].state == PASS
