"""An observer's forwarder: spreads batches over validators, fails over, and pushes back when all refuse."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from node.errors import Overloaded
from node.forward import Forwarder
from node.mempool import decode_batch


def validator(answers: list[int], received: list[list[bytes]]) -> web.Application:
    async def txs(request: web.Request) -> web.Response:
        status = answers.pop(0) if answers else 200
        if status == 200:
            received.append(decode_batch(await request.read()))
            return web.json_response({"accepted": [], "rejected": []})
        return web.json_response({"error": {"code": "backlog", "message": "busy"}}, status=status,
                                 headers={"Retry-After": "1"})
    app = web.Application()
    app.router.add_post("/api/v1/txs", txs)
    return app


def test_forwarding_fails_over_then_pushes_back_while_every_validator_refuses() -> None:
    first: list[list[bytes]] = []
    second: list[list[bytes]] = []

    async def main() -> None:
        busy = TestServer(validator([503, 503, 503], first), host="127.0.0.1")
        other = TestServer(validator([503, 503], second), host="127.0.0.1")
        await busy.start_server()
        await other.start_server()
        forwarder = Forwarder([str(busy.make_url("")), str(other.make_url(""))])
        forwarder._next = 0  # noqa: SLF001 - start with the busy validator for a deterministic order
        async with aiohttp.ClientSession() as session:
            forwarder.attach(session)
            task = asyncio.create_task(forwarder.run())
            forwarder.check_room()
            forwarder.push([b"tx-1", b"tx-2"])
            for _ in range(100):
                if forwarder.busy_until:
                    break
                await asyncio.sleep(0.01)
            with pytest.raises(Overloaded) as refused:
                forwarder.check_room()  # both validators answered 503: clients are refused too
            assert refused.value.code == "upstream_busy" and refused.value.retry_after
            for _ in range(500):
                if forwarder.forwarded:
                    break
                await asyncio.sleep(0.01)
            forwarder.check_room()  # a validator took the batch: open again
            forwarder.push([b"tx-3"])
            for _ in range(500):
                if forwarder.forwarded == 3:
                    break
                await asyncio.sleep(0.01)
            task.cancel()
        await busy.close()
        await other.close()

    asyncio.run(main())
    assert second == [[b"tx-1", b"tx-2"]]  # the busy validator refused three times, the other took it
    assert first == [[b"tx-3"]]  # the next batch went to the next validator
