"""An observer's forwarder: keeps a primary validator, fails over, re-sends ballots refused as not registered,
and pushes back when all refuse."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from node.errors import Overloaded
from node.forward import (
    CONNECT_TIMEOUT_S, DEGRADED, HEALTHY, MAX_IN_FLIGHT, NOT_REGISTERED_RETRIES, NOT_REGISTERED_RETRY_S,
    REFORWARD_AFTER_S, Forwarder, response_timeout,
)
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
        forwarder._primary = 0  # noqa: SLF001 - start with the busy validator for a deterministic order
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
    assert first == []  # it asked for a second (Retry-After: 1): the next batch went to the other one too
    assert second == [[b"tx-1", b"tx-2"], [b"tx-3"]]


def frozen_validator(requests: list[float]) -> web.Application:
    """Accepts the connection and the request, then never answers (a SIGSTOPped or cut-off process)."""
    async def txs(request: web.Request) -> web.Response:
        requests.append(time.monotonic())
        await asyncio.Event().wait()
        raise AssertionError("unreachable")
    app = web.Application()
    app.router.add_post("/api/v1/txs", txs)
    return app


def timed_validator(arrivals: dict[bytes, list[float]]) -> web.Application:
    async def txs(request: web.Request) -> web.Response:
        for raw in decode_batch(await request.read()):
            arrivals.setdefault(raw, []).append(time.monotonic())
        return web.json_response({"accepted": [], "rejected": []})
    app = web.Application()
    app.router.add_post("/api/v1/txs", txs)
    return app


def test_a_frozen_validator_delays_forwarding_by_one_short_timeout_then_is_avoided() -> None:
    frozen_requests: list[float] = []
    arrivals: dict[bytes, list[float]] = {}
    pushed: dict[bytes, float] = {}
    raws = [f"tx-{i}".encode() for i in range(30)]

    async def main() -> None:
        frozen = TestServer(frozen_validator(frozen_requests), host="127.0.0.1")
        healthy = TestServer(timed_validator(arrivals), host="127.0.0.1")
        await frozen.start_server()
        await healthy.start_server()
        forwarder = Forwarder([str(frozen.make_url("")), str(healthy.make_url(""))])
        forwarder._primary = 0  # noqa: SLF001 - the frozen validator is the first choice
        async with aiohttp.ClientSession() as session:
            forwarder.attach(session)
            task = asyncio.create_task(forwarder.run())
            for raw in raws:  # one client submission every 20 ms, as votes arrive
                pushed[raw] = time.monotonic()
                forwarder.push([raw])
                await asyncio.sleep(0.02)
            deadline = time.monotonic() + 60
            while len(arrivals) < len(raws) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            task.cancel()
        await healthy.close()
        await frozen.close()

    asyncio.run(main())
    assert sorted(arrivals) == sorted(raws)  # every acknowledged submission reached a validator
    assert all(len(times) == 1 for times in arrivals.values())  # each exactly once (the frozen one never took any)
    # a batch stuck at the frozen validator fails over after one short timeout (connect + response
    # for a small batch: 3 s), not the old 15 s; margin for a loaded CI box
    latest = max(arrivals[raw][0] - pushed[raw] for raw in raws)
    assert latest < response_timeout(len(raws)) + CONNECT_TIMEOUT_S + 4.0, latest
    # after its first timeout it is avoided: only the batches already in flight to it were stuck
    assert len(frozen_requests) <= MAX_IN_FLIGHT
    stuck = [raw for raw in raws if arrivals[raw][0] - pushed[raw] > 1.0]
    assert len(stuck) < len(raws) // 2, f"{len(stuck)} of {len(raws)} waited for the frozen validator"


def test_an_unhealthy_validator_is_not_chosen_while_a_healthy_one_takes_batches() -> None:
    lagging: list[list[bytes]] = []
    healthy: list[list[bytes]] = []

    async def main() -> None:
        lag = TestServer(validator([], lagging), host="127.0.0.1")
        good = TestServer(validator([], healthy), host="127.0.0.1")
        await lag.start_server()
        await good.start_server()
        lag_url = str(lag.make_url("")).rstrip("/")
        forwarder = Forwarder([lag_url, str(good.make_url(""))],
                              health=lambda url: DEGRADED if url == lag_url else HEALTHY)
        async with aiohttp.ClientSession() as session:
            forwarder.attach(session)
            task = asyncio.create_task(forwarder.run())
            for index in range(10):
                forwarder.push([f"tx-{index}".encode()])
                deadline = time.monotonic() + 30
                while forwarder.forwarded <= index and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
            task.cancel()
        await lag.close()
        await good.close()

    asyncio.run(main())
    assert lagging == []
    assert [raw for batch in healthy for raw in batch] == [f"tx-{index}".encode() for index in range(10)]


class Registry:
    """A validator's view of registrations: ``reg-K`` registers voter group K; ``vote-K-…`` is refused as
    ``not_registered`` until K is registered here (by a batch, or later by "gossip" from the test)."""

    def __init__(self) -> None:
        self.registered: set[bytes] = set()
        self.received: list[bytes] = []
        self.refused: list[bytes] = []

    def app(self) -> web.Application:
        async def txs(request: web.Request) -> web.Response:
            rejected = []
            for index, raw in enumerate(decode_batch(await request.read())):
                self.received.append(raw)
                kind, group = raw.split(b"-")[:2]
                if kind == b"reg":
                    self.registered.add(group)
                elif group not in self.registered:
                    self.refused.append(raw)
                    rejected.append({"index": index, "code": "not_registered", "message": "voter is not registered"})
            return web.json_response({"accepted": [], "rejected": rejected})
        app = web.Application()
        app.router.add_post("/api/v1/txs", txs)
        return app


async def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return condition()


def test_ballots_forwarded_after_their_registration_go_to_the_same_validator() -> None:
    registries = [Registry(), Registry(), Registry()]

    async def main() -> None:
        servers = [TestServer(registry.app(), host="127.0.0.1") for registry in registries]
        for server in servers:
            await server.start_server()
        forwarder = Forwarder([str(server.make_url("")) for server in servers])
        async with aiohttp.ClientSession() as session:
            forwarder.attach(session)
            task = asyncio.create_task(forwarder.run())
            for group in range(10):  # a registration, then its ballots in a separate client request
                forwarder.push([f"reg-{group}".encode()])
                assert await wait_until(lambda: forwarder.forwarded == 4 * group + 1, 30)
                forwarder.push([f"vote-{group}-{voter}".encode() for voter in range(3)])
                assert await wait_until(lambda: forwarder.forwarded == 4 * group + 4, 30)
            task.cancel()
        for server in servers:
            await server.close()

    asyncio.run(main())
    assert [registry.refused for registry in registries] == [[], [], []]  # no ballot overtook its registration
    assert sorted(len(registry.received) for registry in registries) == [0, 0, 40]  # one primary, kept


def test_a_ballot_refused_as_not_registered_is_sent_again_shortly_a_bounded_number_of_times() -> None:
    registry = Registry()
    accepted_after: list[float] = []

    async def main() -> None:
        server = TestServer(registry.app(), host="127.0.0.1")
        await server.start_server()
        forwarder = Forwarder([str(server.make_url(""))])
        async with aiohttp.ClientSession() as session:
            forwarder.attach(session)
            task = asyncio.create_task(forwarder.run())
            pushed = time.monotonic()
            forwarder.push([b"vote-7-0", b"vote-never-0"])  # their registrations went to another validator
            assert await wait_until(lambda: registry.refused.count(b"vote-7-0") == 1, 30)
            registry.registered.add(b"7")                  # ... and reach this one by gossip
            assert await wait_until(lambda: registry.received.count(b"vote-7-0") == 2, 30)
            accepted_after.append(time.monotonic() - pushed)
            attempts = 1 + NOT_REGISTERED_RETRIES
            assert await wait_until(lambda: registry.received.count(b"vote-never-0") == attempts, 30)
            await asyncio.sleep(3 * NOT_REGISTERED_RETRY_S)  # no further re-sends: the 5 s re-forward takes over
            assert registry.received.count(b"vote-never-0") == attempts
            assert forwarder.retried == 1 + NOT_REGISTERED_RETRIES
            task.cancel()
        await server.close()

    asyncio.run(main())
    assert registry.received.count(b"vote-7-0") == 2 and registry.refused.count(b"vote-7-0") == 1
    assert accepted_after[0] < REFORWARD_AFTER_S, accepted_after  # not the 5 s re-forward
