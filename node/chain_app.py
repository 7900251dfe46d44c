"""The consensus ``Application`` over the ledger and the mempool, and every way a block lands.

The engine calls ``create_block``/``check_block``/``has_pending``/``deadline_due`` synchronously.
Executions of blocks built or checked at the current height are cached by block hash, so the
block the quorum decides is written with ``Ledger.commit`` without running it a second time.
Blocks arrive either from consensus (``commit``, one synced LevelDB batch per block) or from block
sync (``apply_synced``, one synced batch per fetched range: ``Ledger.committing``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chain.block import Block, CommitCertificate
from chain.crypto import sha256
from chain.errors import BlockInvalid, DecodeError, StorageError
from chain.ledger import Ledger
from chain.state import Execution
from node.errors import FatalError
from node.mempool import Mempool

log = logging.getLogger("veche.node.chain")

MAX_BLOCK_TX_BYTES = 4 * 1024 * 1024
VERDICT_CACHE = 256


@dataclass(frozen=True, slots=True)
class CommittedBlock:
    height: int
    block: Block
    certificate: CommitCertificate
    events: tuple[tuple[str, str], ...] = field(default=())
    via: str = "consensus"


class ChainApp:
    def __init__(self, ledger: Ledger, mempool: Mempool, *, max_block_txs: int,
                 max_block_bytes: int = MAX_BLOCK_TX_BYTES, proposal_grace_ms: int = 0,
                 wall_clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.ledger = ledger
        self.mempool = mempool
        self.proposal_grace_ms = proposal_grace_ms
        self.max_block_txs = max_block_txs
        self.max_block_bytes = max_block_bytes
        self._clock_ms = wall_clock_ms
        self._height = ledger.height
        self._executions: dict[bytes, tuple[Block, Execution]] = {}
        self._verdicts: dict[bytes, bytes | None] = {}
        self.built = 0
        self.checked = 0

    # --- consensus.Application ---------------------------------------------------------------------

    def create_block(self, height: int, round_: int, now_ms: int,
                     last_commit: CommitCertificate | None) -> tuple[bytes, bytes]:
        self._fresh_height()
        if height != self.ledger.height + 1:
            raise FatalError(f"asked to build block {height} while the ledger is at {self.ledger.height}")
        txs = self.mempool.reap(self.max_block_txs, self.max_block_bytes, self._ripe_before())
        built = self.ledger.build_block(txs, time_ms=now_ms, round_=round_, last_commit=last_commit,
                                        checked=self.mempool.is_verified)
        for tx, error in built.rejected:
            self.mempool.drop(tx.hash, error.code, error.message)
        block_hash = built.block.hash()
        self._executions[block_hash] = (built.block, built.execution)
        self.built += 1
        log.debug("built block %d round %d with %d txs (%d left out)", height, round_, len(built.block.txs),
                  len(built.rejected))
        return block_hash, built.block.encode()

    def check_block(self, height: int, encoded_block: bytes, now_ms: int) -> bytes | None:
        self._fresh_height()
        if height != self.ledger.height + 1:
            return None
        key = sha256(encoded_block)
        if key in self._verdicts:
            return self._verdicts[key]
        try:
            block = Block.decode(encoded_block)
        except DecodeError as exc:
            log.warning("proposal at height %d does not decode: %s", height, exc.message)
            return self._remember(key, None)
        block_hash = block.hash()
        cached = self._executions.get(block_hash)
        if cached is not None:
            # same header: the body must be the one we executed (anything else fails the tx root)
            return self._remember(key, block_hash if cached[0] == block else None)
        if block.header.time_ms > now_ms + self.ledger.params.time_precision_ms:
            log.info("proposal at height %d is timed %d ms ahead of this node's clock; waiting", height,
                     block.header.time_ms - now_ms)
            return None  # may become valid later: not remembered
        started = time.perf_counter()
        try:
            execution = self.ledger.check_block(block, now_ms=now_ms, checked=self.mempool.is_verified)
        except BlockInvalid as exc:
            log.warning("proposal at height %d is invalid: %s", height, exc.message)
            return self._remember(key, None)
        log.debug("checked the proposal of height %d round %d (%d txs) in %.0f ms", height, block.header.round,
                  len(block.txs), (time.perf_counter() - started) * 1000)
        self.checked += 1
        self.mempool.mark_verified(sha256(raw) for raw in block.txs)  # a valid block's signatures all checked
        self._executions[block_hash] = (block, execution)
        return self._remember(key, block_hash)

    def has_pending(self) -> bool:
        """Transactions wait that are old enough to propose (see ``proposal_grace_ms``)."""
        ripe_before = self._ripe_before()
        return bool(self.mempool.pending) if ripe_before is None else self.mempool.has_ripe(ripe_before)

    def _ripe_before(self) -> int | None:
        """Transactions admitted after this moment are left for the next block.

        A transaction becomes proposable ``proposal_grace_ms`` after this node admitted it: by then
        gossip has usually brought it to the other validators, which verified its signature off the
        consensus path instead of while checking the proposal (a slow check makes the next proposer
        late and costs a round).
        """
        if self.proposal_grace_ms <= 0:
            return None
        return self._clock_ms() - self.proposal_grace_ms

    def deadline_due(self, now_ms: int) -> bool:
        return bool(self.ledger.state.open_campaigns_due(now_ms))

    # --- landing blocks -----------------------------------------------------------------------------

    def commit(self, height: int, encoded_block: bytes, block_hash: bytes,
               certificate: CommitCertificate) -> CommittedBlock | None:
        """Write a block the quorum decided. None when block sync already stored it."""
        self._fresh_height()
        if height <= self.ledger.height:
            stored = self.ledger.block(height)
            if stored is None or stored.hash() != block_hash:
                raise FatalError(f"consensus decided block {height} {block_hash.hex()} but this node stored "
                                 "another block at that height: the validator set is compromised")
            return None
        if height != self.ledger.height + 1:
            raise FatalError(f"consensus decided block {height} while the ledger is at {self.ledger.height}")
        entry = self._executions.get(block_hash)
        if entry is None:
            try:
                block = Block.decode(encoded_block)
                if block.hash() != block_hash:
                    raise BlockInvalid("decided block does not hash to its certificate")
                execution = self.ledger.check_block(block, checked=self.mempool.is_verified)
            except (BlockInvalid, DecodeError) as exc:
                raise FatalError(f"a quorum committed block {height} that does not check here: {exc.message}; "
                                 "this node's state has diverged — stop and run `veche verify`") from exc
        else:
            block, execution = entry
        events = tuple(execution.events)
        exact = self.mempool.absorb(block.txs, bool(events))
        try:
            self.ledger.commit(block, certificate, execution)
        except StorageError as exc:
            raise FatalError(f"cannot store block {height}: {exc.message}") from exc
        self.mempool.after_commit(block.txs, exact=exact)
        self._fresh_height()
        return CommittedBlock(height, block, certificate, events)

    def apply_synced(self, block: Block, certificate: CommitCertificate) -> CommittedBlock:
        """Apply a block from block sync: its certificate is checked against the genesis validators.

        Raises ``CertificateError``/``BlockInvalid`` when the peer served something that does not check.
        Transaction signatures are trusted under a valid certificate (``veche verify`` checks them all).
        """
        self._fresh_height()
        self.ledger.apply_synced(block, certificate)
        self.mempool.note_committed(len(block.txs))
        self._fresh_height()
        return CommittedBlock(block.height, block, certificate, (), via="sync")

    # --- helpers -------------------------------------------------------------------------------------

    def _fresh_height(self) -> None:
        if self._height != self.ledger.height:
            self._height = self.ledger.height
            self._executions.clear()
            self._verdicts.clear()

    def _remember(self, key: bytes, verdict: bytes | None) -> bytes | None:
        if len(self._verdicts) >= VERDICT_CACHE:
            self._verdicts.clear()
        self._verdicts[key] = verdict
        return verdict
