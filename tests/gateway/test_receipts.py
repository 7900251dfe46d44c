"""Receipts built by the gateway from raw blocks: exact RFC 6962 paths, certificates checked."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from chain.merkle import inclusion_proof
from chain.receipt import verify_receipt
from gateway.receipts import merkle_paths
from tests.gateway.harness import TX_HASH, gateway_world


def test_multi_leaf_paths_equal_single_rfc6962_proofs() -> None:
    for size in range(1, 70):
        leaves = [bytes([i % 251, i // 251]) * 3 for i in range(size)]
        paths = merkle_paths(leaves, range(size))
        for index in range(size):
            assert paths[index] == inclusion_proof(leaves, index), (size, index)
    assert merkle_paths([b"x"] * 9, [8]) == {8: inclusion_proof([b"x"] * 9, 8)}


def test_receipts_come_from_the_watched_block_without_a_request_per_ballot(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.login()
                _, page = await citizen.vote("ib-test", "north", ["n1"])
                tx_hash = TX_HASH.search(page).group(1)  # type: ignore[union-attr]
                async with citizen.session.get(f"{world.url}/receipt/{tx_hash}.json") as response:
                    receipt = json.loads(await response.text())
                verify_receipt(receipt, world.genesis.params)
                assert not any(r.startswith("GET /api/v1/txs/") for r in world.nodes[0].requests)
                assert any(r.endswith("/raw") for r in world.nodes[0].requests)
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_a_block_with_a_forged_certificate_is_not_believed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.login()
                world.chain.forge_certificates = True
                _, page = await citizen.vote("ib-test", "north", ["n2"])
                tx_hash = TX_HASH.search(page).group(1)  # type: ignore[union-attr]
                # the raw block did not check, so the gateway asked for the tx proof instead, which does
                assert "Ваш голос учтён" in page
                assert any(r == f"GET /api/v1/txs/{tx_hash}" for r in world.nodes[0].requests)
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_the_gateway_never_says_counted_on_a_proof_that_does_not_verify(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.login()
                world.chain.forge_certificates = world.chain.forge_proofs = True
                status, page = await citizen.vote("ib-test", "south", ["s1"])
                assert status in (200, 502) and "Ваш голос учтён" not in page
                assert "ждём подтверждения" in page or "не может подтвердить" in page
                tx_hash = TX_HASH.search(page).group(1)  # type: ignore[union-attr]
                status, page = await citizen.get(f"/receipt/{tx_hash}")
                assert status in (200, 502) and "Ваш голос учтён" not in page and tx_hash in page
                assert "ждём подтверждения" in page or "не может подтвердить" in page
                world.chain.forge_certificates = world.chain.forge_proofs = False
                status, page = await citizen.get(f"/receipt/{tx_hash}")
                assert status == 200 and "Ваш голос учтён" in page
            finally:
                await citizen.close()

    asyncio.run(scenario())
