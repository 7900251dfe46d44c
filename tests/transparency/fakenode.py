"""An in-process stand-in for a Veche network, serving the public node API (ARCHITECTURE §6).

One ``FakeNetwork`` owns one ``Ledger`` and plays every validator at once: it admits transactions
(strict decoding, one signature check, a check state like a mempool's), cuts a block every few
milliseconds through ``Ledger.build_block``, signs a commit certificate with a quorum of the test's
validator keys and commits it. Several HTTP "nodes" (one per home of a testnet directory) serve the
same chain on their own ports, so clients can fail over between them; a node can be stopped.

It exists so the operator, transparency and pabulib tools can be tested end to end before, and
independently of, the real node processes; the tests later run the same flows on real nodes.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from chain import codec
from chain.block import Block, CommitCertificate
from chain.crypto import SigningKey, read_key_file
from chain.errors import DecodeError, SignatureError, TxRejected
from chain.ledger import Ledger
from chain.merkle import inclusion_proof
from chain.results import compute_equal_shares_result, tally_document
from chain.state import Execution
from chain.storage import KeyValueStore, MemoryStore
from chain.tx import Tx, body_to_json, decode_tx
from genesis.model import Genesis, load_genesis
from genesis.testnet import TestnetLayout, init_testnet, load_testnet
from tests.transparency.chainkit import Keys, certify

BLOCK_INTERVAL_S = 0.02
MAX_BLOCK_TXS = 5000


def now_ms() -> int:
    return int(time.time() * 1000)


def msgpack_array_header(count: int) -> bytes:
    if count < 16:
        return bytes([0x90 | count])
    if count < 1 << 16:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class FakeNetwork:
    """The chain every fake node serves."""

    def __init__(self, genesis: Genesis, validator_keys: list[SigningKey], store: KeyValueStore | None = None) -> None:
        self.genesis = genesis
        self.keys = Keys(validator_keys, SigningKey.generate(), SigningKey.generate())
        self.ledger = Ledger(store or MemoryStore(), genesis.params)
        self.pending: dict[bytes, Tx] = {}
        self.rejected: dict[bytes, tuple[str, str]] = {}
        self.check_state: Execution = self._fresh_check_state()
        self.last_certificate: CommitCertificate | None = None
        self.es_results: dict[str, tuple[tuple[str, ...], bytes]] = {}
        self.lock = threading.Lock()
        self.heartbeat_ms = 1000
        for campaign_id, campaign in self.ledger.state.campaigns.items():
            if campaign.status == "closed":
                self._compute_equal_shares(campaign_id)

    def _fresh_check_state(self) -> Execution:
        execution = self.ledger.state.begin(self.ledger.height + 1, max(now_ms(), self.ledger.last_time_ms + 1))
        execution.begin_block()
        return execution

    # --- admission -----------------------------------------------------------------------------

    def admit(self, raw: bytes) -> tuple[str, str] | Tx:
        """Return the admitted ``Tx`` or (code, message)."""
        try:
            tx = decode_tx(raw)
        except DecodeError as exc:
            return exc.code, exc.message
        if tx.hash in self.pending:
            return "already_pending", "this transaction is already pending"
        if self.ledger.tx_location(tx.hash) is not None:
            return "already_committed", "this transaction is already committed"
        try:
            tx.verify_signatures()
        except SignatureError as exc:
            return "bad_signature", exc.message
        try:
            self.check_state.apply(tx, signatures_checked=True)
        except TxRejected as exc:
            return exc.code, exc.message
        self.pending[tx.hash] = tx
        self.rejected.pop(tx.hash, None)
        return tx

    # --- blocks --------------------------------------------------------------------------------

    def produce(self) -> Block | None:
        """Cut one block if transactions wait or the heartbeat is due."""
        with self.lock:
            now = now_ms()
            if not self.pending and now - self.ledger.last_time_ms < self.heartbeat_ms:
                return None
            txs = list(self.pending.values())[:MAX_BLOCK_TXS]
            verified = {tx.hash for tx in txs}
            built = self.ledger.build_block(txs, time_ms=now, round_=0, last_commit=self.last_certificate,
                                            checked=verified.__contains__)
            certificate = certify(self.genesis, self.keys, built.block)
            self.ledger.commit(built.block, certificate, built.execution)
            self.last_certificate = certificate
            for tx in txs:
                self.pending.pop(tx.hash, None)
            for tx, error in built.rejected:
                self.rejected[tx.hash] = (error.code, error.message)
            for kind, campaign_id in built.execution.events:
                if kind == "campaign.closed":
                    self._compute_equal_shares(campaign_id)
            self.check_state = self._fresh_check_state()
            for tx in list(self.pending.values()):
                try:
                    self.check_state.apply(tx, signatures_checked=True)
                except TxRejected as exc:
                    self.pending.pop(tx.hash)
                    self.rejected[tx.hash] = (exc.code, exc.message)
            return built.block

    def _compute_equal_shares(self, campaign_id: str) -> None:
        campaign = self.ledger.state.campaigns[campaign_id]
        if campaign.spec.rule.name == "equal-shares":
            self.es_results[campaign_id] = compute_equal_shares_result(self.ledger.state, self.ledger.store, campaign)

    def result_of(self, campaign_id: str) -> tuple[tuple[str, ...], bytes] | None:
        return self.ledger.state.results.get(campaign_id) or self.es_results.get(campaign_id)


@dataclass
class FakeNode:
    name: str
    role: str
    port: int
    runner: web.AppRunner | None = None


def build_app(network: FakeNetwork, name: str, role: str) -> web.Application:
    ledger = network.ledger
    routes = web.RouteTableDef()

    @routes.get("/api/v1/status")
    async def status(request: web.Request) -> web.Response:
        return web.json_response({
            "chain_id": network.genesis.chain_id, "node": name, "role": role, "height": ledger.height,
            "last_block_hash": ledger.last_block_hash.hex(), "app_hash": ledger.app_hash.hex(), "peers": 4,
            "mempool": len(network.pending), "catching_up": False, "genesis_hash": network.genesis.hash.hex(),
            "last_block_time_ms": ledger.last_time_ms, "validator_index": None,
        })

    @routes.get("/api/v1/genesis")
    async def genesis(request: web.Request) -> web.Response:
        return web.json_response(network.genesis.document)

    @routes.post("/api/v1/txs")
    async def submit(request: web.Request) -> web.Response:
        if request.content_type != "application/octet-stream":
            return error_response(415, "unsupported_media_type", "send application/octet-stream")
        try:
            raws = codec.decode(await request.read(), max_bytes=16 * 1024 * 1024)
        except DecodeError as exc:
            return error_response(400, "malformed", exc.message)
        if not isinstance(raws, list) or not all(isinstance(r, bytes) for r in raws):
            return error_response(400, "malformed", "expected a msgpack array of byte strings")
        accepted: list[str] = []
        rejected: list[dict[str, Any]] = []
        with network.lock:
            for index, raw in enumerate(raws):
                outcome = network.admit(raw)
                if isinstance(outcome, Tx):
                    accepted.append(outcome.hash.hex())
                else:
                    rejected.append({"index": index, "code": outcome[0], "message": outcome[1]})
        return web.json_response({"accepted": accepted, "rejected": rejected})

    @routes.get("/api/v1/txs/{hash}")
    async def tx_status(request: web.Request) -> web.Response:
        try:
            tx_hash = bytes.fromhex(request.match_info["hash"])
        except ValueError:
            return error_response(400, "malformed", "tx hash must be hex")
        location = ledger.tx_location(tx_hash)
        if location is not None:
            block = ledger.block(location.height)
            certificate = ledger.certificate(location.height)
            assert block is not None and certificate is not None
            return web.json_response({
                "status": "committed", "height": location.height, "index": location.index,
                "proof": {"tree_size": len(block.txs),
                          "path": [p.hex() for p in inclusion_proof(block.txs, location.index)],
                          "tx": block.txs[location.index].hex(), "block_hash": block.hash().hex(),
                          "header": block.header.encode().hex(), "certificate": certificate.encode().hex()},
            })
        if tx_hash in network.pending:
            return web.json_response({"status": "pending", "height": None, "index": None, "proof": None})
        if tx_hash in network.rejected:
            code, message = network.rejected[tx_hash]
            return web.json_response({"status": "rejected", "code": code, "message": message})
        return web.json_response({"status": "unknown", "height": None, "index": None, "proof": None})

    def block_or_404(height: int) -> Block | None:
        return ledger.block(height) if 1 <= height <= ledger.height else None

    @routes.get("/api/v1/blocks/raw")
    async def blocks_raw(request: web.Request) -> web.Response:
        try:
            start = int(request.query["from"])
            end = int(request.query["to"])
        except (KeyError, ValueError):
            return error_response(400, "bad_range", "from and to must be integers")
        if start < 1 or end < start:
            return error_response(400, "bad_range", "need 1 <= from <= to")
        items: list[bytes] = []
        size = 0
        for height in range(start, min(end, ledger.height, start + 499) + 1):
            raw = ledger.raw_block_with_certificate(height)
            if raw is None:
                break  # a store with a hole serves what it has, as a damaged node would
            size += len(raw)
            if items and size > 8 * 1024 * 1024:
                break
            items.append(raw)
        return web.Response(body=msgpack_array_header(len(items)) + b"".join(items),
                            content_type="application/octet-stream")

    @routes.get("/api/v1/blocks/{height}/raw")
    async def block_raw(request: web.Request) -> web.Response:
        raw = ledger.raw_block_with_certificate(int(request.match_info["height"]))
        if raw is None:
            return error_response(404, "not_found", "no such block")
        return web.Response(body=raw, content_type="application/octet-stream")

    @routes.get("/api/v1/blocks/{height}")
    async def block_json(request: web.Request) -> web.Response:
        block = block_or_404(int(request.match_info["height"]))
        if block is None:
            return error_response(404, "not_found", "no such block")
        certificate = ledger.certificate(block.height)
        assert certificate is not None
        header = block.header
        from chain.crypto import sha256
        return web.json_response({
            "height": block.height, "hash": block.hash().hex(),
            "header": {"chain_id": header.chain_id, "height": header.height, "round": header.round,
                       "time_ms": header.time_ms, "previous_hash": header.previous_hash.hex(),
                       "tx_root": header.tx_root.hex(), "app_hash": header.app_hash.hex(),
                       "proposer": header.proposer, "last_commit_hash": header.last_commit_hash.hex()},
            "txs": [sha256(raw).hex() for raw in block.txs],
            "commit": {"height": certificate.height, "round": certificate.round,
                       "block_hash": certificate.block_hash.hex(),
                       "signatures": [[i, s.hex()] for i, s in certificate.signatures]},
        })

    @routes.get("/api/v1/campaigns")
    async def campaigns(request: web.Request) -> web.Response:
        return web.json_response({"campaigns": [
            {"campaign_id": c.campaign_id, "status": c.status} for c in ledger.state.campaigns.values()]})

    @routes.get("/api/v1/campaigns/{cid}")
    async def campaign(request: web.Request) -> web.Response:
        found = ledger.state.campaigns.get(request.match_info["cid"])
        if found is None:
            return error_response(404, "not_found", "no such campaign")
        return web.json_response({"campaign": body_to_json(found.spec), "status": found.status,
                                  "created_height": found.created_height, "total_ballots": found.total_ballots})

    @routes.get("/api/v1/campaigns/{cid}/tally")
    async def tally(request: web.Request) -> web.Response:
        found = ledger.state.campaigns.get(request.match_info["cid"])
        if found is None:
            return error_response(404, "not_found", "no such campaign")
        return web.json_response(tally_document(ledger.state, found, ledger.height,
                                                network.result_of(found.campaign_id)))

    @routes.get("/api/v1/campaigns/{cid}/initiatives/{iid}")
    async def initiative(request: web.Request) -> web.Response:
        found = ledger.state.initiatives.get((request.match_info["cid"], request.match_info["iid"]))
        if found is None:
            return error_response(404, "not_found", "no such initiative")
        return web.json_response({**body_to_json(found.spec), "status": found.status, "progress": []})

    app = web.Application(client_max_size=32 * 1024 * 1024)
    app.add_routes(routes)
    return app


class FakeTestnet:
    """Serves a ``FakeNetwork`` on several ports, one per node name."""

    def __init__(self, network: FakeNetwork, nodes: list[FakeNode], *, produce: bool = True,
                 directory: Path | None = None) -> None:
        self.network = network
        self.nodes = nodes
        self.produce = produce
        self.directory = directory
        self._producer: asyncio.Task[None] | None = None

    @classmethod
    def from_directory(cls, directory: Path, *, store: KeyValueStore | None = None) -> "FakeTestnet":
        """The nodes of a testnet directory written by ``veche testnet init``."""
        layout = load_testnet(directory)
        genesis = load_genesis(layout.genesis_file)
        validator_keys = [read_key_file(node.key_file) for node in layout.validators if node.key_file]
        network = FakeNetwork(genesis, validator_keys, store)
        return cls(network, [FakeNode(node.name, node.role, node.port) for node in layout.nodes], directory=directory)

    async def start(self) -> None:
        for node in self.nodes:
            await self.start_node(node.name)
        if self.produce:
            self._producer = asyncio.create_task(self._produce())

    async def start_node(self, name: str) -> None:
        node = next(n for n in self.nodes if n.name == name)
        runner = web.AppRunner(build_app(self.network, node.name, node.role), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", node.port).start()
        node.runner = runner

    async def stop_node(self, name: str) -> None:
        node = next(n for n in self.nodes if n.name == name)
        if node.runner is not None:
            await node.runner.cleanup()
            node.runner = None

    async def _produce(self) -> None:
        while True:
            self.network.produce()  # on the loop thread: requests never see a half-committed block
            await asyncio.sleep(BLOCK_INTERVAL_S)

    async def stop(self) -> None:
        if self._producer is not None:
            self._producer.cancel()
            try:
                await self._producer
            except asyncio.CancelledError:
                pass
        for node in self.nodes:
            await self.stop_node(node.name)


class ThreadedTestnet:
    """A ``FakeTestnet`` on its own event loop thread, for tests that call blocking CLIs."""

    def __init__(self, testnet: FakeTestnet | Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.testnet = testnet if isinstance(testnet, FakeTestnet) else FakeTestnet.from_directory(testnet)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def network(self) -> FakeNetwork:
        return self.testnet.network

    @property
    def directory(self) -> Path:
        if self.testnet.directory is None:
            raise ValueError("this fake network was not made from a testnet directory")
        return self.testnet.directory

    def url(self, index: int = 0) -> str:
        return f"http://127.0.0.1:{self.testnet.nodes[index].port}"

    def run(self, coroutine_factory: Callable[[], Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine_factory(), self.loop).result(timeout=60)

    def __enter__(self) -> "ThreadedTestnet":
        self.thread.start()
        self.run(self.testnet.start)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.run(self.testnet.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    def wait_height(self, height: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.network.ledger.height < height:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fake network did not reach height {height}")
            time.sleep(0.02)


def write_testnet(directory: Path, *, validators: int = 4, observers: int = 1, base_port: int = 26600) -> TestnetLayout:
    """A testnet directory exactly as ``veche testnet init`` writes it."""
    return init_testnet(directory, validators=validators, observers=observers, base_port=base_port)
