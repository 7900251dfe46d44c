"""A toy application for the consensus simulator.

A block is ``codec.encode([height, [tx, ...], nonce, time_ms])``; its hash is SHA-256 of those bytes.
A block is valid at a height when it decodes, names that height, its time is after the previous
block's and not more than ``precision_ms`` ahead of the receiver's clock, and no transaction in it
starts with ``b"bad"`` (such a transaction never applies).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from chain import codec
from chain.block import CommitCertificate
from chain.crypto import sha256
from chain.errors import DecodeError

BAD_TX_PREFIX = b"bad"
MAX_TXS = 50


@dataclass(frozen=True, slots=True)
class ToyBlock:
    height: int
    txs: tuple[bytes, ...]
    nonce: bytes
    time_ms: int


def encode_block(block: ToyBlock) -> bytes:
    return codec.encode([block.height, list(block.txs), block.nonce, block.time_ms])


def decode_block(data: bytes) -> ToyBlock | None:
    try:
        raw = codec.decode(data)
    except DecodeError:
        return None
    if not (isinstance(raw, list) and len(raw) == 4):
        return None
    height, txs, nonce, time_ms = raw
    if not (isinstance(height, int) and isinstance(txs, list) and all(isinstance(t, bytes) for t in txs)
            and isinstance(nonce, bytes) and isinstance(time_ms, int)):
        return None
    return ToyBlock(height, tuple(txs), nonce, time_ms)


def is_valid_successor(block: ToyBlock, height: int, previous_time: int) -> bool:
    """The deterministic part of validity (what every honest node agrees on, whatever its clock)."""
    return (block.height == height and block.time_ms > previous_time
            and not any(tx.startswith(BAD_TX_PREFIX) for tx in block.txs))


@dataclass
class ToyApp:
    precision_ms: int
    rng: random.Random
    genesis_time: int = 0
    blocks: list[ToyBlock] = field(default_factory=list)
    mempool: dict[bytes, None] = field(default_factory=dict)
    committed_txs: set[bytes] = field(default_factory=set)
    deadlines: list[int] = field(default_factory=list)
    calls: list[tuple[str, int]] = field(default_factory=list)
    record_calls: bool = False

    @property
    def height(self) -> int:
        return len(self.blocks)

    @property
    def previous_time(self) -> int:
        return self.blocks[-1].time_ms if self.blocks else self.genesis_time

    def create_block(self, height: int, round_: int, now_ms: int,
                     last_commit: CommitCertificate | None) -> tuple[bytes, bytes]:
        self._note("create_block", height)
        self._expect_height(height)
        txs = tuple(tx for tx in self.mempool if tx not in self.committed_txs)[:MAX_TXS]
        block = ToyBlock(height, txs, self.rng.randbytes(8), max(now_ms, self.previous_time + 1))
        data = encode_block(block)
        return sha256(data), data

    def check_block(self, height: int, encoded_block: bytes, now_ms: int) -> bytes | None:
        self._note("check_block", height)
        self._expect_height(height)
        block = decode_block(encoded_block)
        if block is None or not is_valid_successor(block, height, self.previous_time):
            return None
        if block.time_ms > now_ms + self.precision_ms:
            return None
        return sha256(encoded_block)

    def has_pending(self) -> bool:
        self._note("has_pending", self.height + 1)
        return any(tx not in self.committed_txs for tx in self.mempool)

    def deadline_due(self, now_ms: int) -> bool:
        self._note("deadline_due", self.height + 1)
        due = [d for d in self.deadlines if d <= now_ms and d > self.previous_time]
        return bool(due)

    def apply(self, encoded_block: bytes) -> ToyBlock:
        block = decode_block(encoded_block)
        if block is None or not is_valid_successor(block, self.height + 1, self.previous_time):
            raise AssertionError(f"a certified block does not apply at height {self.height + 1}")
        self.blocks.append(block)
        for tx in block.txs:
            self.committed_txs.add(tx)
            self.mempool.pop(tx, None)
        return block

    def add_tx(self, tx: bytes) -> None:
        if tx not in self.committed_txs:
            self.mempool[tx] = None

    def _expect_height(self, height: int) -> None:
        if height != self.height + 1:
            raise AssertionError(f"engine asked about height {height}, the app is at {self.height}")

    def _note(self, call: str, height: int) -> None:
        if self.record_calls:
            self.calls.append((call, height))
