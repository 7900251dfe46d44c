"""Validator sets, block headers, blocks, consensus votes and commit certificates.

Wire forms (canonical msgpack arrays, see docs/PROTOCOL.md):
  header      = [chain_id, height, round, time_ms, previous_hash, tx_root, app_hash, proposer, last_commit_hash]
  block       = [header, [tx_bytes, ...], last_commit]      last_commit = certificate of height-1 or nil
  certificate = [height, round, block_hash, [[validator_index, signature], ...]]   indices ascending
The block hash is SHA-256 of the encoded header. ``app_hash`` is the state hash *after* the
block's transactions apply, so a header proves the state it produced.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from chain import codec
from chain.crypto import DOMAIN, sha256, verify
from chain.errors import BlockInvalid, CertificateError, DecodeError, SignatureError
from chain.merkle import merkle_root

HASH_BYTES = 32
ZERO_HASH = b"\x00" * HASH_BYTES
MAX_BLOCK_BYTES = 8 * 1024 * 1024
MAX_TXS_PER_BLOCK = 20_000

STEP_PREVOTE = "prevote"
STEP_PRECOMMIT = "precommit"
STEPS = (STEP_PREVOTE, STEP_PRECOMMIT)
MAX_CERTIFICATE_SIGNATURES = 1024
_CHAIN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def quorum_size(n: int) -> int:
    """Votes needed for a commit, a polka or a certificate: more than two thirds of n."""
    return (2 * n) // 3 + 1


def skip_threshold(n: int) -> int:
    """Messages from a higher round needed to skip to it: more than one third of n."""
    return n // 3 + 1


def max_faulty(n: int) -> int:
    return (n - 1) // 3


@dataclass(frozen=True, slots=True)
class Validator:
    name: str
    public_key: bytes
    operator: str = "committee"
    url: str = ""


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    validators: tuple[Validator, ...]

    def __post_init__(self) -> None:
        keys = [v.public_key for v in self.validators]
        if not keys:
            raise BlockInvalid("a validator set needs at least one validator")
        if len(set(keys)) != len(keys):
            raise BlockInvalid("validator public keys must be distinct")

    @property
    def size(self) -> int:
        return len(self.validators)

    @property
    def quorum(self) -> int:
        return quorum_size(len(self.validators))

    @property
    def skip(self) -> int:
        return skip_threshold(len(self.validators))

    def proposer_index(self, height: int, round_: int) -> int:
        return (height + round_) % len(self.validators)

    def index_of(self, public_key: bytes) -> int | None:
        for index, validator in enumerate(self.validators):
            if validator.public_key == public_key:
                return index
        return None

    def public_key(self, index: int) -> bytes:
        if not 0 <= index < len(self.validators):
            raise CertificateError(f"validator index {index} out of range")
        return self.validators[index].public_key


# --- signing bytes -----------------------------------------------------------------------------


def vote_signing_bytes(chain_id: str, step: str, height: int, round_: int, block_hash: bytes | None) -> bytes:
    """Bytes a validator signs for a prevote or precommit; ``None`` is a vote for nil."""
    body = codec.encode([height, round_, block_hash if block_hash is not None else b""])
    return DOMAIN + b"consensus." + step.encode() + chain_id.encode() + body


def proposal_signing_bytes(chain_id: str, height: int, round_: int, pol_round: int, block_hash: bytes) -> bytes:
    body = codec.encode([height, round_, pol_round, block_hash])
    return DOMAIN + b"consensus.proposal" + chain_id.encode() + body


# --- headers and blocks ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlockHeader:
    chain_id: str
    height: int
    round: int
    time_ms: int
    previous_hash: bytes
    tx_root: bytes
    app_hash: bytes
    proposer: int
    last_commit_hash: bytes

    def to_wire(self) -> list[Any]:
        return [
            self.chain_id, self.height, self.round, self.time_ms, self.previous_hash,
            self.tx_root, self.app_hash, self.proposer, self.last_commit_hash,
        ]

    def encode(self) -> bytes:
        return codec.encode(self.to_wire())

    def hash(self) -> bytes:
        return sha256(self.encode())

    @classmethod
    def from_wire(cls, raw: Any) -> "BlockHeader":
        if not isinstance(raw, list) or len(raw) != 9:
            raise DecodeError("block header must be an array of 9 fields")
        chain_id, height, round_, time_ms, previous_hash, tx_root, app_hash, proposer, last_commit_hash = raw
        _want(isinstance(chain_id, str) and _CHAIN_ID.fullmatch(chain_id) is not None, "header chain_id")
        for name, value in (("height", height), ("round", round_), ("time_ms", time_ms), ("proposer", proposer)):
            _want(_is_uint(value), f"header {name}")
        _want(height >= 1, "header height must be at least 1")
        for name, value in (("previous_hash", previous_hash), ("tx_root", tx_root), ("app_hash", app_hash),
                            ("last_commit_hash", last_commit_hash)):
            _want(isinstance(value, bytes) and len(value) == HASH_BYTES, f"header {name} must be 32 bytes")
        return cls(chain_id, height, round_, time_ms, previous_hash, tx_root, app_hash, proposer, last_commit_hash)


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    height: int
    round: int
    block_hash: bytes
    signatures: tuple[tuple[int, bytes], ...]

    def to_wire(self) -> list[Any]:
        return [self.height, self.round, self.block_hash, [[i, s] for i, s in self.signatures]]

    def encode(self) -> bytes:
        return codec.encode(self.to_wire())

    def hash(self) -> bytes:
        return sha256(self.encode())

    @classmethod
    def from_wire(cls, raw: Any) -> "CommitCertificate":
        if not isinstance(raw, list) or len(raw) != 4:
            raise DecodeError("commit certificate must be an array of 4 fields")
        height, round_, block_hash, signatures = raw
        _want(_is_uint(height) and height >= 1, "certificate height")
        _want(_is_uint(round_), "certificate round")
        _want(isinstance(block_hash, bytes) and len(block_hash) == HASH_BYTES, "certificate block_hash")
        _want(isinstance(signatures, list) and len(signatures) <= MAX_CERTIFICATE_SIGNATURES,
              "certificate signatures")
        pairs: list[tuple[int, bytes]] = []
        for item in signatures:
            _want(isinstance(item, list) and len(item) == 2, "certificate signature entry")
            index, signature = item
            _want(_is_uint(index) and isinstance(signature, bytes) and len(signature) == 64,
                  "certificate signature entry")
            pairs.append((index, signature))
        indices = [i for i, _ in pairs]
        _want(all(a < b for a, b in zip(indices, indices[1:])),
              "certificate validator indices must be ascending and distinct")
        return cls(height, round_, block_hash, tuple(pairs))

    @classmethod
    def decode(cls, data: bytes) -> "CommitCertificate":
        return cls.from_wire(codec.decode(data))


def make_certificate(height: int, round_: int, block_hash: bytes,
                     signatures: Iterable[tuple[int, bytes]]) -> CommitCertificate:
    unique = dict(signatures)
    return CommitCertificate(height, round_, block_hash, tuple(sorted(unique.items())))


def verify_certificate(certificate: CommitCertificate, validators: ValidatorSet, chain_id: str,
                       *, height: int | None = None, block_hash: bytes | None = None,
                       verified: Collection[tuple[int, bytes]] = ()) -> None:
    """Raise ``CertificateError`` unless a quorum of distinct validators precommitted the block.

    ``verified``: (validator index, signature) pairs already verified over this very precommit
    (same chain, height, round and block hash) — Ed25519 signatures are deterministic, so the
    same validator's precommit is the same bytes in every certificate of that block. They still
    count towards the quorum and the duplicate check; only their curve arithmetic is skipped.
    """
    if height is not None and certificate.height != height:
        raise CertificateError(f"certificate is for height {certificate.height}, expected {height}")
    if block_hash is not None and certificate.block_hash != block_hash:
        raise CertificateError(f"certificate at height {certificate.height} is for another block")
    seen: set[int] = set()
    message = vote_signing_bytes(chain_id, STEP_PRECOMMIT, certificate.height, certificate.round,
                                 certificate.block_hash)
    for index, signature in certificate.signatures:
        if index in seen:
            raise CertificateError(f"validator {index} signed the certificate twice")
        public_key = validators.public_key(index)
        if (index, signature) in verified:
            seen.add(index)
            continue
        try:
            verify(public_key, signature, message, cache_key=True)
        except SignatureError as exc:
            raise CertificateError(
                f"certificate at height {certificate.height}: signature of validator {index} does not verify"
            ) from exc
        seen.add(index)
    if len(seen) < validators.quorum:
        raise CertificateError(
            f"certificate at height {certificate.height} has {len(seen)} signatures, quorum is {validators.quorum}"
        )


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    txs: tuple[bytes, ...]
    last_commit: CommitCertificate | None

    def hash(self) -> bytes:
        return self.header.hash()

    @property
    def height(self) -> int:
        return self.header.height

    def to_wire(self) -> list[Any]:
        return [self.header.to_wire(), list(self.txs),
                None if self.last_commit is None else self.last_commit.to_wire()]

    def encode(self) -> bytes:
        return codec.encode(self.to_wire())

    @classmethod
    def from_wire(cls, raw: Any) -> "Block":
        if not isinstance(raw, list) or len(raw) != 3:
            raise DecodeError("block must be an array of 3 fields")
        header = BlockHeader.from_wire(raw[0])
        txs = raw[1]
        _want(isinstance(txs, list) and len(txs) <= MAX_TXS_PER_BLOCK, "block txs")
        _want(all(isinstance(tx, bytes) for tx in txs), "block txs must be byte strings")
        last_commit = None if raw[2] is None else CommitCertificate.from_wire(raw[2])
        return cls(header, tuple(txs), last_commit)

    @classmethod
    def decode(cls, data: bytes) -> "Block":
        block = cls.from_wire(codec.decode(data, max_bytes=MAX_BLOCK_BYTES))
        return block

    def check_structure(self) -> None:
        """Checks that need no state: size limits, tx root and last-commit hash match the body."""
        if len(self.txs) > MAX_TXS_PER_BLOCK:
            raise BlockInvalid(f"block {self.header.height}: more than {MAX_TXS_PER_BLOCK} transactions")
        if len(self.encode()) > MAX_BLOCK_BYTES:
            raise BlockInvalid(f"block {self.header.height}: larger than {MAX_BLOCK_BYTES} bytes")
        if merkle_root(self.txs) != self.header.tx_root:
            raise BlockInvalid(f"block {self.header.height}: tx root does not match its transactions")
        expected = ZERO_HASH if self.last_commit is None else self.last_commit.hash()
        if expected != self.header.last_commit_hash:
            raise BlockInvalid(f"block {self.header.height}: last commit hash does not match")
        if self.header.height > 1 and self.last_commit is None:
            raise BlockInvalid(f"block {self.header.height}: missing the previous block's commit")
        if self.header.height == 1 and self.last_commit is not None:
            raise BlockInvalid("block 1 cannot carry a last commit")
        if self.last_commit is not None and self.last_commit.height != self.header.height - 1:
            raise BlockInvalid(f"block {self.header.height}: last commit is for the wrong height")
        if self.last_commit is not None and self.last_commit.block_hash != self.header.previous_hash:
            raise BlockInvalid(f"block {self.header.height}: last commit is not for the previous block")


def encoded_tx_bytes(tx: bytes) -> int:
    """Bytes one transaction adds to a block's encoding (bin header + the transaction)."""
    size = len(tx)
    return size + (2 if size < 256 else 3 if size < 65536 else 5)


def block_overhead_bytes(chain_id: str, last_commit: CommitCertificate | None) -> int:
    """An upper bound of a block's encoding without its transactions (integers at their widest)."""
    header = 1 + len(codec.encode(chain_id)) + 4 * 9 + 4 * (2 + HASH_BYTES)
    commit = 1 if last_commit is None else len(last_commit.encode())
    return 1 + header + 5 + commit


def make_header(*, chain_id: str, height: int, round_: int, time_ms: int, previous_hash: bytes,
                txs: Sequence[bytes], app_hash: bytes, proposer: int,
                last_commit: CommitCertificate | None) -> BlockHeader:
    return BlockHeader(
        chain_id=chain_id, height=height, round=round_, time_ms=time_ms, previous_hash=previous_hash,
        tx_root=merkle_root(txs), app_hash=app_hash, proposer=proposer,
        last_commit_hash=ZERO_HASH if last_commit is None else last_commit.hash(),
    )


def _is_uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _want(condition: bool, what: str) -> None:
    if not condition:
        raise DecodeError(f"malformed {what}")
