"""Receipts: the node's inclusion proof for a tx, built into the file ``veche receipt verify`` takes.

``ReceiptBook.lookup(tx_hash)`` asks a node for ``GET /api/v1/txs/{hash}``; for a committed tx
it builds the receipt with ``chain.receipt.build_receipt`` and checks it with
``chain.receipt.verify_receipt`` against the validator set in force at its height before the gateway
shows the citizen "counted" — the gateway does not take a node's word for it. A block's commit
certificate is verified once; later receipts from the same block only re-check their Merkle path.
Verified receipts are kept in a small LRU cache.

Validator set changes (docs/PROTOCOL.md §15): ``SetFollower`` is the gateway's light client. It
fetches the change proofs (``GET /api/v1/validators/changes``) and follows them from the genesis set
(``chain.lightclient``); a certificate is checked against the set it knows for that height, which
for heights above the last fetch is the newest set it verified — sound under the one-third rule
(a certificate of the next set holds more than a third of the previous set's power, CometBFT's
skipping check). A certificate that does not check makes it fetch the changes again (at most once
per ``REFRESH_MIN_S``) and check once more before the node is blamed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from chain import codec
from chain.block import Block, BlockHeader, CommitCertificate, ValidatorSet
from chain.crypto import sha256
from chain.errors import DecodeError, VecheError
from chain.lightclient import LightClientError, ValidatorSchedule, follow_set_changes, proofs_from_json, verify_header
from chain.merkle import leaf_hash, node_hash, verify_inclusion
from chain.params import ChainParams
from chain.receipt import ReceiptError, build_receipt, verify_receipt
from chain.tx import Tx, decode_tx
from gateway.errors import NodeAnswerError, NodeUnavailable
from gateway.nodes import NodePool

log = logging.getLogger("veche.gateway.receipts")
NEGATIVE_TTL_S = 1.0
REFRESH_MIN_S = 1.0


class SetFollower:
    """The validator sets in force, as far as the gateway verified them from genesis (a light client)."""

    def __init__(self, pool: NodePool, params: ChainParams) -> None:
        self.pool = pool
        self.params = params
        self.schedule = ValidatorSchedule(params.validators)
        self.refreshed_at = float("-inf")
        self._refreshing: asyncio.Task[bool] | None = None

    def at(self, height: int) -> ValidatorSet:
        return self.schedule.at(height)

    async def refresh(self) -> bool:
        """Fetch and follow the change proofs again (rate-limited); True when the known sets changed."""
        if time.monotonic() - self.refreshed_at < REFRESH_MIN_S:
            return False
        self.refreshed_at = time.monotonic()
        try:
            document = await self.pool.get_ok("/validators/changes")
            schedule = follow_set_changes(self.params.chain_id, self.params.validators, proofs_from_json(document))
        except NodeUnavailable as exc:
            log.warning("validator set changes: no node answers (%s); the sets known so far stay in use", exc)
            return False
        except (NodeAnswerError, LightClientError) as exc:
            log.error("validator set changes from the nodes do not check: %s", exc)
            return False
        grew = schedule.changes != self.schedule.changes
        if grew:
            log.info("validator set: followed %d change(s) from genesis", schedule.changes)
        if schedule.changes >= self.schedule.changes:
            self.schedule = schedule
        return grew

    def refresh_soon(self) -> None:
        """From synchronous code: refresh in the background (one at a time)."""
        if self._refreshing is not None and not self._refreshing.done():
            return
        try:
            self._refreshing = asyncio.get_running_loop().create_task(self.refresh())
        except RuntimeError:  # no running loop (unit tests): the next lookup refreshes
            self._refreshing = None


@dataclass(frozen=True, slots=True)
class Lookup:
    status: str                       # committed | pending | rejected | unknown
    tx: Tx | None = None
    receipt: dict[str, Any] | None = None
    height: int | None = None
    index: int | None = None
    code: str = ""
    message: str = ""


def merkle_paths(leaves: Sequence[bytes], indices: Iterable[int]) -> dict[int, list[bytes]]:
    """RFC 6962 audit paths (bottom-up, as ``chain.merkle.inclusion_proof``) for several leaves at once.

    The RFC 6962 tree equals pairing each level left to right and carrying an odd last node up
    unchanged, so one pass over the levels serves every wanted leaf: O(n) hashes per block instead
    of O(n) per proof.
    """
    level = [leaf_hash(leaf) for leaf in leaves]
    positions = {index: index for index in indices}
    paths: dict[int, list[bytes]] = {index: [] for index in positions}
    while len(level) > 1:
        for index, position in positions.items():
            sibling = position ^ 1
            if sibling < len(level):
                paths[index].append(level[sibling])
            positions[index] = position >> 1
        level = [node_hash(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    return paths


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise NodeAnswerError(f"tx proof: {what} must be hex")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise NodeAnswerError(f"tx proof: {what} is not hex") from exc


class ReceiptBook:
    def __init__(self, pool: NodePool, params: ChainParams, *, cache_size: int = 20_000) -> None:
        self.pool = pool
        self.params = params
        self.sets = SetFollower(pool, params)
        self.cache_size = cache_size
        self._receipts: OrderedDict[bytes, Lookup] = OrderedDict()
        self._verified_blocks: OrderedDict[tuple[bytes, bytes], BlockHeader] = OrderedDict()
        self._not_committed: OrderedDict[bytes, tuple[float, Lookup]] = OrderedDict()

    def check(self, receipt: dict[str, Any]) -> None:
        """Raise ``ReceiptError`` unless ``receipt`` proves its tx is in a certified block."""
        header_raw = bytes.fromhex(receipt["header"])
        certificate_raw = bytes.fromhex(receipt["certificate"])
        header = self._verified_blocks.get((header_raw, certificate_raw))
        if header is None:
            checked = verify_receipt(receipt, self.params, self.sets.at)
            self._verified_blocks[(header_raw, certificate_raw)] = checked.header
            if len(self._verified_blocks) > 256:
                self._verified_blocks.popitem(last=False)
            return
        tx_raw = bytes.fromhex(receipt["tx"])
        if sha256(tx_raw).hex() != receipt["tx_hash"] or receipt["height"] != header.height:
            raise ReceiptError("receipt transaction or height does not match")
        try:
            verify_inclusion(tx_raw, receipt["index"], receipt["tree_size"],
                             [bytes.fromhex(p) for p in receipt["proof"]], header.tx_root)
        except VecheError as exc:
            raise ReceiptError(f"inclusion proof fails: {exc.message}") from exc

    def _remember(self, tx_hash: bytes, found: Lookup) -> None:
        self._not_committed.pop(tx_hash, None)
        self._receipts[tx_hash] = found
        if len(self._receipts) > self.cache_size:
            self._receipts.popitem(last=False)

    def add_block(self, block: Block, certificate: CommitCertificate, indices: Sequence[int]) -> bool:
        """Build and keep the receipts of ``indices`` in a block the watcher fetched.

        The certificate is checked against the genesis validators first (once per block); a block
        that does not check is ignored (its receipts come from ``lookup`` later) and False returned.
        """
        try:
            verify_header(self.params.chain_id, block.header, certificate, self.sets.at(block.height))
        except VecheError as exc:
            log.warning("block %d from a node does not check against the validator set known here (%s); "
                        "fetching the set changes", block.height, exc)
            self.sets.refresh_soon()
            return False
        self._verified_blocks[(block.header.encode(), certificate.encode())] = block.header
        if len(self._verified_blocks) > 256:
            self._verified_blocks.popitem(last=False)
        paths = merkle_paths(block.txs, indices)
        for index in indices:
            tx_raw = block.txs[index]
            try:
                tx = decode_tx(tx_raw)
            except DecodeError:
                continue
            receipt = build_receipt(self.params, tx_raw, block.height, index, len(block.txs), paths[index],
                                    block.header, certificate)
            self._remember(tx.hash, Lookup("committed", tx=tx, receipt=receipt, height=block.height, index=index))
        return True

    async def lookup(self, tx_hash: bytes) -> Lookup:
        cached = self._receipts.get(tx_hash)
        if cached is not None:
            self._receipts.move_to_end(tx_hash)
            return cached
        recent = self._not_committed.get(tx_hash)
        if recent is not None and time.monotonic() - recent[0] < NEGATIVE_TTL_S:
            return recent[1]
        found = await self.pool.tx_status(tx_hash.hex())
        state = found.get("status")
        if state != "committed":
            answer = (Lookup("rejected", code=str(found.get("code", "")), message=str(found.get("message", "")))
                      if state == "rejected" else Lookup(str(state)))
            self._not_committed[tx_hash] = (time.monotonic(), answer)   # a refresh loop costs a node little
            if len(self._not_committed) > self.cache_size:
                self._not_committed.popitem(last=False)
            return answer
        try:
            result = self._build(tx_hash, found)
        except NodeAnswerError:
            if not await self.sets.refresh():   # a set change this gateway has not followed yet?
                raise
            result = self._build(tx_hash, found)
        self._remember(tx_hash, result)
        return result

    def _build(self, tx_hash: bytes, found: dict[str, Any]) -> Lookup:
        proof = found.get("proof")
        height, index = found.get("height"), found.get("index")
        if not isinstance(proof, dict) or not isinstance(height, int) or not isinstance(index, int):
            raise NodeAnswerError("committed tx without a proof, height or index")
        tree_size = proof.get("tree_size")
        path = proof.get("path")
        if not isinstance(tree_size, int) or not isinstance(path, list):
            raise NodeAnswerError("tx proof lacks tree_size or path")
        tx_raw = _hex(proof.get("tx"), "tx")
        try:
            header = BlockHeader.from_wire(codec.decode(_hex(proof.get("header"), "header")))
            certificate = CommitCertificate.decode(_hex(proof.get("certificate"), "certificate"))
            tx = decode_tx(tx_raw)
        except DecodeError as exc:
            raise NodeAnswerError(f"tx proof holds malformed data: {exc.message}") from exc
        if tx.hash != tx_hash:
            raise NodeAnswerError("the node's proof is for another transaction")
        receipt = build_receipt(self.params, tx_raw, height, index, tree_size,
                                [_hex(p, "path") for p in path], header, certificate)
        try:
            self.check(receipt)
        except ReceiptError as exc:
            log.error("node sent a proof that does not verify for %s: %s", tx_hash.hex(), exc.message)
            raise NodeAnswerError(f"the node's proof does not verify: {exc.message}") from exc
        return Lookup("committed", tx=tx, receipt=receipt, height=height, index=index)
