"""An in-process fake node for the gateway's unit tests: the public API over a real ``Ledger``.

``FakeChain`` holds one ledger (``MemoryStore``) and commits a block — with a real commit
certificate signed by a quorum of the test validators — for every ``POST /api/v1/txs`` (or when
``release()`` is called in hold mode). Several ``FakeNode`` servers may serve the same chain so
tests can stop one and watch the gateway fail over. JSON shapes follow node/api.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
from aiohttp import web

from chain import codec
from chain.block import CommitCertificate, make_certificate, vote_signing_bytes
from chain.crypto import SigningKey, sha256
from chain.errors import DecodeError
from chain.ledger import Ledger, decode_block_with_certificate
from chain.merkle import inclusion_proof
from chain.records import Progress, progress_prefix
from chain.results import tally_document
from chain.storage import MemoryStore
from chain.tx import Tx, body_to_json, decode_tx
from genesis.model import Genesis
from node.api import key_modes_json


@dataclass
class FakeChain:
    genesis: Genesis
    validator_keys: list[SigningKey]
    ledger: Ledger = field(init=False)
    pending: dict[bytes, Tx] = field(default_factory=dict)
    rejected: dict[bytes, tuple[str, str]] = field(default_factory=dict)
    last_certificate: CommitCertificate | None = None
    hold: bool = False          # accept transactions but do not commit them until release()
    lose: bool = False          # accept transactions and forget them (a node that crashed)
    forge_certificates: bool = False   # serve raw blocks whose certificate signatures are garbage
    forge_proofs: bool = False         # ... and tx proofs too
    refuse_full: bool = False          # refuse every transaction with "mempool_full" (and remember it)
    refuse_code: str | None = None     # refuse every transaction with this state-machine code
    posts: int = 0
    submitted: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ledger = Ledger(MemoryStore(), self.genesis.params)

    def admit(self, raws: Sequence[bytes]) -> dict[str, Any]:
        self.posts += 1
        accepted: list[str] = []
        rejected: list[dict[str, Any]] = []
        fresh: list[tuple[int, Tx]] = []
        for index, raw in enumerate(raws):
            try:
                tx = decode_tx(raw)
            except DecodeError as exc:
                rejected.append({"index": index, "code": exc.code, "message": exc.message})
                continue
            self.submitted.append(tx.hash)
            if self.ledger.tx_location(tx.hash) is not None:
                rejected.append({"index": index, "code": "already_committed", "message": "already committed"})
            elif tx.hash in self.pending:
                rejected.append({"index": index, "code": "already_pending", "message": "already pending"})
            elif self.refuse_full or self.refuse_code:
                code = self.refuse_code or "mempool_full"
                self.rejected[tx.hash] = (code, f"refused: {code}")
                rejected.append({"index": index, "code": code, "message": f"refused: {code}"})
            elif not self.lose:
                self.rejected.pop(tx.hash, None)
                self.pending[tx.hash] = tx
                fresh.append((index, tx))
                accepted.append(tx.hash.hex())
            else:
                accepted.append(tx.hash.hex())
        if not self.hold:
            failures = self.commit_pending()
            by_hash = {tx.hash: i for i, tx in fresh}
            for tx_hash, (code, message) in failures.items():
                if tx_hash in by_hash:
                    accepted.remove(tx_hash.hex())
                    rejected.append({"index": by_hash[tx_hash], "code": code, "message": message})
        return {"accepted": accepted, "rejected": sorted(rejected, key=lambda r: r["index"])}

    def commit_pending(self) -> dict[bytes, tuple[str, str]]:
        """Commit one block of every pending tx that applies; return the ones that did not."""
        txs = list(self.pending.values())
        self.pending.clear()
        now = int(time.time() * 1000)
        built = self.ledger.build_block(txs, time_ms=max(now, self.ledger.last_time_ms + 1), round_=0,
                                        last_commit=self.last_certificate)
        failures = {tx.hash: (exc.code, exc.message) for tx, exc in built.rejected}
        self.rejected.update(failures)
        if built.block.txs or not txs:
            block = built.block
            validators = self.genesis.params.validators
            message = vote_signing_bytes(self.genesis.chain_id, "precommit", block.height, 0, block.hash())
            certificate = make_certificate(block.height, 0, block.hash(),
                                           [(i, self.validator_keys[i].sign(message))
                                            for i in range(validators.quorum)])
            self.ledger.commit(block, certificate, built.execution)
            self.last_certificate = certificate
        return failures

    def release(self) -> None:
        self.hold = False
        self.commit_pending()

    def submit_signed(self, tx: Tx) -> dict[str, Any]:
        return self.admit([tx.raw])


class FakeNode:
    """One HTTP server for a ``FakeChain`` on 127.0.0.1."""

    def __init__(self, chain: FakeChain) -> None:
        self.chain = chain
        self.port = 0
        self.requests: list[str] = []
        self._runner: web.AppRunner | None = None
        self.app = web.Application(client_max_size=16 * 1024 * 1024)
        self.app.middlewares.append(self._count)
        routes = self.app.router
        routes.add_get("/api/v1/status", self.status)
        routes.add_get("/api/v1/genesis", self.genesis)
        routes.add_post("/api/v1/txs", self.post_txs)
        routes.add_get("/api/v1/txs/{hash}", self.get_tx)
        routes.add_get("/api/v1/blocks/{height}", self.get_block)
        routes.add_get("/api/v1/blocks/{height}/raw", self.get_block_raw)
        routes.add_get("/api/v1/campaigns", self.campaigns)
        routes.add_get("/api/v1/campaigns/{campaign}", self.campaign)
        routes.add_get("/api/v1/campaigns/{campaign}/tally", self.tally)
        routes.add_get("/api/v1/campaigns/{campaign}/initiatives/{initiative}", self.initiative)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @web.middleware
    async def _count(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path}")
        return await handler(request)  # type: ignore[no-any-return]

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if self.port == 0:
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- handlers ----------------------------------------------------------------------------------

    @property
    def ledger(self) -> Ledger:
        return self.chain.ledger

    async def status(self, request: web.Request) -> web.Response:
        ledger = self.ledger
        return web.json_response({"chain_id": self.chain.genesis.chain_id, "node": "fake", "role": "validator",
                                  "height": ledger.height, "last_block_hash": ledger.last_block_hash.hex(),
                                  "app_hash": ledger.app_hash.hex(), "peers": [], "mempool": len(self.chain.pending),
                                  "catching_up": False})

    async def genesis(self, request: web.Request) -> web.Response:
        return web.json_response(self.chain.genesis.document)

    async def post_txs(self, request: web.Request) -> web.Response:
        if request.content_type != "application/octet-stream":
            return web.json_response({"error": {"code": "wrong_type", "message": "octet-stream"}}, status=415)
        body = await request.read()
        raws = msgpack.unpackb(body, raw=False)
        return web.json_response(self.chain.admit(raws))

    async def get_tx(self, request: web.Request) -> web.Response:
        tx_hash = bytes.fromhex(request.match_info["hash"])
        location = self.ledger.tx_location(tx_hash)
        if location is not None:
            block = self.ledger.block(location.height)
            certificate = self.ledger.certificate(location.height)
            assert block is not None and certificate is not None
            if self.chain.forge_proofs:
                certificate = CommitCertificate(certificate.height, certificate.round, certificate.block_hash,
                                                tuple((i, bytes(64)) for i, _ in certificate.signatures))
            return web.json_response({
                "status": "committed", "height": location.height, "index": location.index,
                "proof": {"tree_size": len(block.txs),
                          "path": [p.hex() for p in inclusion_proof(block.txs, location.index)],
                          "tx": block.txs[location.index].hex(), "block_hash": block.hash().hex(),
                          "header": block.header.encode().hex(), "certificate": certificate.encode().hex()}})
        if tx_hash in self.chain.rejected:
            code, message = self.chain.rejected[tx_hash]
            return web.json_response({"status": "rejected", "height": None, "index": None, "proof": None,
                                      "code": code, "message": message})
        status = "pending" if tx_hash in self.chain.pending else "unknown"
        return web.json_response({"status": status, "height": None, "index": None, "proof": None})

    async def get_block(self, request: web.Request) -> web.Response:
        height = int(request.match_info["height"])
        block = self.ledger.block(height) if height >= 1 else None
        if block is None:
            return web.json_response({"error": {"code": "unknown_block", "message": "no block"}}, status=404)
        return web.json_response({"height": height, "hash": block.hash().hex(),
                                  "txs": [sha256(raw).hex() for raw in block.txs]})

    async def get_block_raw(self, request: web.Request) -> web.Response:
        height = int(request.match_info["height"])
        raw = self.ledger.raw_block_with_certificate(height) if height >= 1 else None
        if raw is None:
            return web.json_response({"error": {"code": "unknown_block", "message": "no block"}}, status=404)
        if self.chain.forge_certificates:
            block, certificate = decode_block_with_certificate(raw)
            forged = CommitCertificate(certificate.height, certificate.round, certificate.block_hash,
                                       tuple((i, bytes(64)) for i, _ in certificate.signatures))
            raw = codec.encode([block.to_wire(), forged.to_wire()])
        return web.Response(body=raw, content_type="application/octet-stream")

    async def campaigns(self, request: web.Request) -> web.Response:
        state = self.ledger.state
        items = []
        for campaign in sorted(state.campaigns.values(), key=lambda c: c.campaign_id):
            spec = campaign.spec
            items.append({"campaign_id": campaign.campaign_id, "title": spec.title, "track": spec.track,
                          "status": campaign.status, "voting_start": spec.voting_start,
                          "voting_end": spec.voting_end, "rule": spec.rule.name, "ballot": spec.ballot.type,
                          "districts": [{"district_id": d.district_id, "name": d.name} for d in spec.districts],
                          "total_ballots": campaign.total_ballots, "registered": campaign.registered,
                          "initiative_count": campaign.initiative_count, **key_modes_json(campaign)})
        return web.json_response({"height": self.ledger.height, "campaigns": items})

    def _initiative_json(self, initiative: Any) -> dict[str, Any]:
        return {**body_to_json(initiative.spec), "status": initiative.status,
                "review_reason": initiative.review_reason, "submitted_height": initiative.submitted_height,
                "submitter": initiative.submitter.hex()}

    async def campaign(self, request: web.Request) -> web.Response:
        state = self.ledger.state
        campaign = state.campaigns.get(request.match_info["campaign"])
        if campaign is None:
            return web.json_response({"error": {"code": "unknown_campaign", "message": "no"}}, status=404)
        return web.json_response({
            "campaign": body_to_json(campaign.spec), "status": campaign.status,
            "close_reason": campaign.close_reason or None, "registered": campaign.registered,
            "total_ballots": campaign.total_ballots, "height": self.ledger.height, **key_modes_json(campaign),
            "initiatives": [self._initiative_json(i) for i in state.campaign_initiatives(campaign.campaign_id)]})

    async def tally(self, request: web.Request) -> web.Response:
        state = self.ledger.state
        campaign = state.campaigns.get(request.match_info["campaign"])
        if campaign is None:
            return web.json_response({"error": {"code": "unknown_campaign", "message": "no"}}, status=404)
        return web.json_response(tally_document(state, campaign, self.ledger.height,
                                                state.results.get(campaign.campaign_id)))

    async def initiative(self, request: web.Request) -> web.Response:
        state = self.ledger.state
        key = (request.match_info["campaign"], request.match_info["initiative"])
        initiative = state.initiatives.get(key)
        if initiative is None:
            return web.json_response({"error": {"code": "unknown_initiative", "message": "no"}}, status=404)
        reports = []
        for _, value in self.ledger.store.iterate(progress_prefix(*key)):
            progress = Progress.decode(value)
            reports.append({**body_to_json(progress.report), "height": progress.height,
                            "time_ms": progress.time_ms, "reporter": progress.reporter.hex()})
        return web.json_response({**self._initiative_json(initiative), "progress": reports})


def decode_batch(body: bytes) -> list[bytes]:
    return list(codec.decode(body))


async def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)
