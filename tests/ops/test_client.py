"""NodeClient: fail-over, busy retries, typed errors from the JSON error body."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from chain import codec
from node.client import (
    ClientError, NodeApiError, NodeClient, NodeProtocolError, NodeUnreachable, SyncNodeClient, normalize_urls,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def status_ok(name: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({"node": name, "height": 7})
    return handler


def server(handler: Handler, *, calls: list[str] | None = None, name: str = "") -> TestServer:
    async def counted(request: web.Request) -> web.StreamResponse:
        if calls is not None:
            calls.append(name)
        return await handler(request)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", counted)
    return TestServer(app, host="127.0.0.1")


async def with_servers(handlers: list[Handler], body: Callable[[list[str], list[str]], Awaitable[Any]]) -> Any:
    calls: list[str] = []
    servers = [server(h, calls=calls, name=str(i)) for i, h in enumerate(handlers)]
    for s in servers:
        await s.start_server()
    try:
        urls = [str(s.make_url("")).rstrip("/") for s in servers]
        return await body(urls, calls)
    finally:
        for s in servers:
            await s.close()


def test_fails_over_on_5xx_and_remembers_the_working_node() -> None:
    async def broken(request: web.Request) -> web.StreamResponse:
        return web.Response(status=500, text="boom")

    async def body(urls: list[str], calls: list[str]) -> None:
        async with NodeClient(urls) as client:
            assert (await client.status())["node"] == "b"
            assert client.current_url == urls[1]
            assert (await client.status())["node"] == "b"
        assert calls == ["0", "1", "1"]

    asyncio.run(with_servers([broken, status_ok("b")], body))


def test_fails_over_on_connection_refused_and_timeout() -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.json_response({})

    async def body(urls: list[str], calls: list[str]) -> None:
        async with NodeClient(["http://127.0.0.1:1", *urls], timeout=0.5) as client:
            assert (await client.status())["node"] == "c"

    asyncio.run(with_servers([slow, status_ok("c")], body))


def test_4xx_raises_the_nodes_error_without_fail_over() -> None:
    async def refuse(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": {"code": "too_large", "message": "body over 32 MiB"}}, status=413)

    async def body(urls: list[str], calls: list[str]) -> None:
        async with NodeClient(urls) as client:
            with pytest.raises(NodeApiError) as caught:
                await client.submit([b"x"])
        assert (caught.value.status, caught.value.code, caught.value.message) == (413, "too_large", "body over 32 MiB")
        assert calls == ["0"]

    asyncio.run(with_servers([refuse, status_ok("b")], body))


def test_4xx_without_a_json_body_is_still_typed() -> None:
    async def plain(request: web.Request) -> web.StreamResponse:
        return web.Response(status=404, text="Not Found")

    async def body(urls: list[str], calls: list[str]) -> None:
        async with NodeClient(urls) as client:
            with pytest.raises(NodeApiError) as caught:
                await client.block(99)
        assert caught.value.code == "http_404" and caught.value.message == "Not Found"

    asyncio.run(with_servers([plain], body))


def test_busy_nodes_are_retried_after_retry_after() -> None:
    attempts: list[int] = []

    async def busy_twice(request: web.Request) -> web.StreamResponse:
        attempts.append(1)
        if len(attempts) <= 2:
            return web.json_response({"error": {"code": "busy", "message": "shedding load"}}, status=503,
                                     headers={"Retry-After": "0.05"})
        return web.json_response({"node": "late"})

    async def body(urls: list[str], calls: list[str]) -> None:
        async with NodeClient(urls) as client:
            assert (await client.status())["node"] == "late"
        assert len(attempts) == 3

    asyncio.run(with_servers([busy_twice], body))


def test_always_busy_gives_up_as_unreachable() -> None:
    async def busy(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": {"code": "over_budget", "message": "slow down"}}, status=429,
                                 headers={"Retry-After": "0.01"})

    async def body(urls: list[str], calls: list[str]) -> None:
        async with NodeClient(urls, busy_rounds=2) as client:
            with pytest.raises(NodeUnreachable, match="busy"):
                await client.status()
        assert len(calls) == 2 * 3

    asyncio.run(with_servers([busy, busy], body))


def test_malformed_replies_are_protocol_errors() -> None:
    async def garbage(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/raw"):
            return web.Response(body=b"\xc1\xc1", content_type="application/octet-stream")
        if request.path.endswith("/txs"):
            return web.json_response({"accepted": "nope"})
        return web.Response(text="<html>")

    async def body(urls: list[str], calls: list[str]) -> None:
        async with NodeClient(urls) as client:
            with pytest.raises(NodeProtocolError, match="did not return JSON"):
                await client.status()
            with pytest.raises(NodeProtocolError, match="not canonical msgpack"):
                await client.raw_block(1)
            with pytest.raises(NodeProtocolError, match="accepted/rejected"):
                await client.submit([b"tx"])

    asyncio.run(with_servers([garbage], body))


def test_submit_sends_a_msgpack_array_and_parses_the_verdicts() -> None:
    seen: list[Any] = []

    async def txs(request: web.Request) -> web.StreamResponse:
        seen.append((request.content_type, codec.decode(await request.read())))
        return web.json_response({"accepted": ["aa"], "rejected": [{"index": 1, "code": "replay", "message": "m"}]})

    async def body(urls: list[str], calls: list[str]) -> None:
        async with NodeClient(urls) as client:
            result = await client.submit([b"one", b"two"])
        assert result.accepted == ("aa",)
        assert [(r.index, r.code, r.message) for r in result.rejected] == [(1, "replay", "m")]
        assert result.node == urls[0]

    asyncio.run(with_servers([txs], body))
    assert seen == [("application/octet-stream", [b"one", b"two"])]


def test_sync_wrapper_and_url_checks() -> None:
    async def body(urls: list[str], calls: list[str]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: SyncNodeClient(urls).status())

    assert asyncio.run(with_servers([status_ok("s")], body))["node"] == "s"
    assert normalize_urls(["http://a:1/", "http://a:1"]) == ["http://a:1"]
    with pytest.raises(ClientError):
        normalize_urls([])
    with pytest.raises(ClientError):
        normalize_urls("localhost:26600")
