"""Never lose an acknowledged ballot: fail-over between nodes, re-sending, restart recovery, load shedding."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.gateway.fakenode import wait_for
from tests.gateway.harness import TX_HASH, gateway_world, start_gateway, stop_gateway


def test_fail_over_to_the_next_node_when_one_is_down(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path, nodes=2) as world:
            citizen = world.client()
            try:
                await world.nodes[0].stop()
                await citizen.login()
                status, page = await citizen.vote("ib-test", "north", ["n1"])
                assert status == 200 and "Ваш голос учтён" in page
                assert any(r.startswith("POST /api/v1/txs") for r in world.nodes[1].requests)
                assert world.chain.ledger.state.votes("ib-test", "n1") == 1
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_a_node_that_loses_accepted_transactions_gets_them_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.login()
                await citizen.get("/c/ib-test/d/south")
                world.chain.lose = True
                voting = asyncio.create_task(citizen.post("/c/ib-test/d/south/vote",
                                                          [("csrf_token", citizen.csrf), ("choice", "s2")],
                                                          csrf=False))
                await wait_for(lambda: world.chain.posts >= 1)
                world.chain.lose = False
                status, page = await voting
                assert status == 200 and "Ваш голос учтён" in page
                assert world.chain.ledger.state.votes("ib-test", "s2") == 1
                assert world.gateway.pipeline.stats["resends"] >= 1
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_a_transient_rejection_is_retried_not_shown_as_final(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.login()
                await citizen.get("/c/ib-test/d/north")
                world.chain.refuse_full = True
                voting = asyncio.create_task(citizen.post("/c/ib-test/d/north/vote",
                                                          [("csrf_token", citizen.csrf), ("choice", "n1")],
                                                          csrf=False))
                await wait_for(lambda: world.chain.posts >= 2)       # sent, refused, asked about, re-sent
                world.chain.refuse_full = False
                status, page = await voting
                assert status == 200 and "Ваш голос учтён" in page
                assert world.chain.ledger.state.votes("ib-test", "n1") == 1
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_acknowledged_ballot_survives_a_gateway_restart_with_every_node_down(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path, overrides={"commit_wait_seconds": 0.5}) as world:
            citizen = world.client()
            try:
                await citizen.login()
                await citizen.get("/c/ib-test/d/north")
                await world.nodes[0].stop()
                status, page = await citizen.post("/c/ib-test/d/north/vote",
                                                  [("csrf_token", citizen.csrf), ("choice", "n3")], csrf=False)
                # the ballot is stored: the citizen lands on its receipt, pending (not an error page)
                assert status == 200 and "ждём подтверждения" in page
                tx_hash = TX_HASH.search(page).group(1)  # type: ignore[union-attr]
                assert len(list(world.gateway.store.iterate(b"P/"))) == 1
                await stop_gateway(world)
                await world.nodes[0].start()
                await start_gateway(world)
                await wait_for(lambda: world.chain.ledger.state.votes("ib-test", "n3") == 1, timeout=10)
                await wait_for(lambda: not list(world.gateway.store.iterate(b"P/")), timeout=10)
                other = world.client("10.3.3.3")
                status, page = await other.get(f"/receipt/{tx_hash}")
                await other.close()
                assert status == 200 and "Ваш голос учтён" in page
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_overload_sheds_with_503_and_retry_after(tmp_path: Path) -> None:
    async def scenario() -> None:
        overrides = {"commit_wait_seconds": 3, "limits": {"max_inflight_requests": 2}}
        async with gateway_world(tmp_path, overrides=overrides) as world:
            voters = [world.client(f"10.7.{i}.1") for i in range(2)]
            visitor = world.client("10.8.0.1")
            try:
                for i, voter in enumerate(voters):
                    await voter.login(f"+7911000000{i}")
                    await voter.get("/c/ib-test/d/north")
                world.chain.hold = True
                tasks = [asyncio.create_task(v.post("/c/ib-test/d/north/vote", [("csrf_token", v.csrf),
                                                                               ("choice", "n1")], csrf=False))
                         for v in voters]
                await wait_for(lambda: world.gateway.inflight >= 2)
                async with visitor.session.get(world.url + "/") as response:
                    assert response.status == 503 and response.headers["Retry-After"] == "2"
                async with visitor.session.get(world.url + "/healthz") as response:
                    assert response.status == 200
                world.chain.release()
                results = await asyncio.gather(*tasks)
                assert all(status in (200, 202) for status, _ in results)
            finally:
                for citizen in voters + [visitor]:
                    await citizen.close()

    asyncio.run(scenario())


def test_full_submission_queue_sheds_ballots(tmp_path: Path) -> None:
    async def scenario() -> None:
        overrides = {"commit_wait_seconds": 0.2, "limits": {"max_pending_ballots": 2}}
        async with gateway_world(tmp_path, overrides=overrides) as world:
            first, second = world.client("10.1.0.1"), world.client("10.2.0.1")
            try:
                await first.login("+79110000001")
                await second.login("+79110000002")
                world.chain.hold = True
                status, page = await first.vote("ib-test", "north", ["n1"])
                assert status == 200 and "ждём подтверждения" in page   # registration + ballot wait in the queue
                status, page = await second.vote("ib-test", "north", ["n1"])
                assert status == 503 and "перегружен" in page and second.last_headers["Retry-After"] == "5"
                world.chain.release()
            finally:
                await first.close()
                await second.close()

    asyncio.run(scenario())


def test_a_registration_signed_with_a_revoked_gateway_key_is_signed_again() -> None:
    """After keys.rotate a new contractor runs this gateway's data with its own key: a pending
    registration the old key signed is refused with revoked_key, signed again with the new key, and the
    ballots that waited for it now wait for the new one."""
    from chain.crypto import SigningKey
    from chain.storage import MemoryStore
    from chain.tx import make_registration, make_vote
    from gateway.nodes import Rejection, SubmitResult
    from gateway.pipeline import BallotPipeline, Tracker
    from gateway.vault import pending_record, pending_registration_key, registered_key

    class Pool:
        def __init__(self) -> None:
            self.sent: list[list[bytes]] = []

        async def submit(self, raws: list[bytes]) -> SubmitResult:
            self.sent.append(raws)
            return SubmitResult(frozenset(), (), "node")

    async def scenario() -> None:
        old, new, voter = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
        store, pool = MemoryStore(), Pool()
        pipeline = BallotPipeline(store, pool, new, "veche-test")  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        registration = make_registration("veche-test", old, "c1", [voter.public_key])
        store.write({pending_registration_key(registration.hash): pending_record("c1", registration.raw),
                     registered_key("c1", voter.public_key): registration.hash})
        old_tracker = Tracker(registration, "c1", loop.create_future(), registers=(voter.public_key,))
        ballot = make_vote("veche-test", voter, "c1", "d1", ["a1"])
        waiting = Tracker(ballot, "c1", loop.create_future(), depends_on=registration.hash)
        pipeline.trackers = {registration.hash: old_tracker, ballot.hash: waiting}
        pipeline._apply_submit_result([old_tracker], SubmitResult(  # noqa: SLF001 - the unit under test
            frozenset(), (Rejection(0, "revoked_key", "this key of gateway 'gw' was revoked at height 9"),), "node"))
        await wait_for(lambda: bool(pool.sent))
        fresh_hash = store.get(registered_key("c1", voter.public_key))
        assert fresh_hash is not None and fresh_hash != registration.hash
        fresh = pipeline.trackers[fresh_hash]
        assert fresh.tx.signers == (new.public_key,) and fresh.registers == (voter.public_key,)
        assert registration.hash not in pipeline.trackers and waiting.depends_on == fresh_hash
        assert store.get(pending_registration_key(registration.hash)) is None
        assert pool.sent == [[fresh.tx.raw]] and pipeline.stats["resigned"] == 1
        assert not old_tracker.future.done()     # the same outcome is still to come, now for the new tx

    asyncio.run(scenario())
