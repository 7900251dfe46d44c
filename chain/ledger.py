"""The ledger: committed blocks, their certificates, the tx index and the state machine.

``Ledger`` is what a node (and ``veche verify``) drives:
  build_block()  — the proposer runs pending transactions, leaving out what would fail;
  check_block()  — a validator re-executes a proposal; every transaction must apply;
  commit()       — block, certificate, tx index and state changes go to disk in one synced batch;
  committing()   — inside it, commits are held and land together in one synced batch at its end
                   (block sync applies a fetched range this way).

Key layout besides the state (``S/``, see records.py):
  B/<height u64>  encoded block           C/<height u64>  its commit certificate
  H/<block hash>  height (u64)            T/<tx hash>     height (u64) ‖ index (u32)
  V/<campaign>/<height u64><index u32>    where a ballot sits in its block (chain/ballot_index.py)
  M/height, M/time, M/app_hash, M/genesis, M/ballot_index_from  metadata
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from chain import codec
from chain.ballot_index import BALLOT_INDEX_FROM_KEY, index_entries
from chain.block import (
    MAX_BLOCK_BYTES, MAX_TXS_PER_BLOCK, ZERO_HASH, Block, BlockHeader, CommitCertificate, ValidatorSet,
    block_overhead_bytes, encoded_tx_bytes, make_header, verify_certificate,
)
from chain.crypto import sha256
from chain.errors import BlockInvalid, DecodeError, StorageError, StoreCorrupt, TxRejected, UpgradeRequired
from chain.governance import LATEST_PROTOCOL_VERSION, Roster
from chain.lightclient import ChangeProof, IncludedTx
from chain.merkle import inclusion_proof
from chain.params import ChainParams
from chain.records import read_u64, u64
from chain.state import APP_HASH_KEY, HEIGHT_KEY, TIME_KEY, TX_INDEX_PREFIX, Execution, State
from chain.storage import KeyValueStore, StagedStore
from chain.tx import Tx, decode_tx

GENESIS_KEY = b"M/genesis"
BLOCK_PREFIX = b"B/"
CERT_PREFIX = b"C/"
HASH_PREFIX = b"H/"


def block_key(height: int) -> bytes:
    return BLOCK_PREFIX + u64(height)


def cert_key(height: int) -> bytes:
    return CERT_PREFIX + u64(height)


@dataclass(frozen=True, slots=True)
class TxLocation:
    height: int
    index: int


@dataclass(slots=True)
class BuiltBlock:
    block: Block
    execution: Execution
    rejected: list[tuple[Tx, TxRejected]]
    # Transactions left out only because the block was full (count or bytes); still valid to retry.
    deferred: list[Tx] = field(default_factory=list)


SignatureCache = Callable[[bytes], bool]


def _never_checked(tx_hash: bytes) -> bool:
    return False


class Ledger:
    def __init__(self, store: KeyValueStore, params: ChainParams, *,
                 supported_protocol_version: int = LATEST_PROTOCOL_VERSION) -> None:
        self.store = store if isinstance(store, StagedStore) else StagedStore(store)
        store = self.store
        self.params = params
        # The highest protocol version this ledger applies; a block in force under a higher one raises
        # UpgradeRequired before anything is checked or built (a node lowers it only to test upgrades).
        self.supported_protocol_version = min(supported_protocol_version, LATEST_PROTOCOL_VERSION)
        stored_genesis = store.get(GENESIS_KEY)
        if stored_genesis is not None and stored_genesis != params.genesis_hash:
            raise StorageError("this data directory belongs to a different genesis file; "
                               "use a fresh directory or the matching genesis")
        if stored_genesis is None and store.get(HEIGHT_KEY) is not None:
            raise StorageError("this data directory holds a chain without a genesis record; refusing to use it")
        self.state = State(store, params)
        if stored_genesis is None:
            self._apply_genesis()
        # The first height whose ballots the per-campaign index holds: 0 for a store indexed from
        # genesis; a store written before the index existed starts it at its next block.
        raw_from = store.get(BALLOT_INDEX_FROM_KEY)
        self._index_from_unrecorded = raw_from is None
        self.ballot_index_from = self.state.height + 1 if raw_from is None else read_u64(raw_from)
        self.last_block_hash = ZERO_HASH
        # The certificate of the last block this ledger stored, whose signatures are known valid:
        # the next block's last commit usually repeats most of them (deterministic Ed25519).
        self._stored_certificate: CommitCertificate | None = None
        if self.state.height > 0:
            block = self.block(self.state.height)
            if block is None:
                raise StorageError(f"block {self.state.height} is missing from the store")
            self.last_block_hash = block.hash()

    def _apply_genesis(self) -> None:
        execution = self.state.begin(0, self.params.genesis_time_ms)
        for kind, body in self.params.initial_bodies:
            try:
                execution.apply_initial(kind, body)
            except TxRejected as exc:
                raise StorageError(f"genesis data does not apply: {exc}") from exc
        writes, _ = execution.finish()
        batch = dict(writes)
        batch[GENESIS_KEY] = self.params.genesis_hash
        batch[APP_HASH_KEY] = execution.app_hash
        batch[HEIGHT_KEY] = u64(0)
        batch[TIME_KEY] = u64(self.params.genesis_time_ms)
        batch[BALLOT_INDEX_FROM_KEY] = u64(0)
        self.store.write(batch, sync=True)
        self.state.apply_changes(execution)

    # --- reads ---------------------------------------------------------------------------------

    @property
    def height(self) -> int:
        return self.state.height

    @property
    def app_hash(self) -> bytes:
        return self.state.app_hash

    @property
    def last_time_ms(self) -> int:
        return self.state.time_ms

    def roster_at(self, height: int) -> Roster:
        """Who may sign what at ``height`` (validators, committee, operators, gateways); known up to height + 2."""
        return self.state.roster_at(height)

    def validators_at(self, height: int) -> ValidatorSet:
        """The validator set in force at ``height``: its quorum certifies block ``height``."""
        return self.state.roster_at(height).validators

    def protocol_version_at(self, height: int) -> int:
        return self.state.protocol_version_at(height)

    def require_supported(self, height: int) -> None:
        """Raise ``UpgradeRequired`` when block ``height`` falls under a protocol version above ours."""
        version = self.state.protocol_version_at(height)
        if version > self.supported_protocol_version:
            raise UpgradeRequired(
                f"protocol version {version} is in force from height {self.upcoming_upgrade_height(height)}; this "
                f"software applies versions up to {self.supported_protocol_version}: install a version that "
                f"supports protocol {version} and start the node again",
                height=height, version=version, supported=self.supported_protocol_version)

    def upcoming_upgrade_height(self, height: int) -> int:
        """The height from which the version in force at ``height`` applies."""
        start = 0
        for record in self.state.protocol.upgrades:
            if record.height <= height:
                start = record.height
        return start

    def raw_block(self, height: int) -> bytes | None:
        return self.store.get(block_key(height))

    def block(self, height: int) -> Block | None:
        raw = self.raw_block(height)
        return None if raw is None else Block.decode(raw)

    def raw_certificate(self, height: int) -> bytes | None:
        return self.store.get(cert_key(height))

    def certificate(self, height: int) -> CommitCertificate | None:
        raw = self.raw_certificate(height)
        return None if raw is None else CommitCertificate.decode(raw)

    def height_of(self, block_hash: bytes) -> int | None:
        raw = self.store.get(HASH_PREFIX + block_hash)
        return None if raw is None else read_u64(raw)

    def tx_location(self, tx_hash: bytes) -> TxLocation | None:
        raw = self.store.get(TX_INDEX_PREFIX + tx_hash)
        if raw is None:
            return None
        height, index = struct.unpack(">QI", raw)
        return TxLocation(height, index)

    def set_change_proofs(self, up_to: int | None = None) -> list[ChangeProof]:
        """What a light client needs to follow every validator set change committed up to ``up_to``:
        per block that committed ``validators.update`` transactions, its header, its certificate and
        each of those transactions with its inclusion proof (chain/lightclient.py)."""
        proofs = []
        for change in self.state.history.changes():
            height = change.committed_height
            if up_to is not None and height > up_to:
                break
            hashes = [tx_hash for kind, tx_hash in change.txs if kind == "validators.update"]
            if not hashes:
                continue
            block, certificate = self.block(height), self.certificate(height)
            if block is None or certificate is None:
                raise StorageError(f"block {height}, which changed the validator set, is missing from the store")
            included = []
            for tx_hash in hashes:
                location = self.tx_location(tx_hash)
                if location is None or location.height != height:
                    raise StorageError(f"the validators.update {tx_hash.hex()} is not indexed in block {height}")
                included.append(IncludedTx(block.txs[location.index], location.index, len(block.txs),
                                           tuple(inclusion_proof(block.txs, location.index))))
            proofs.append(ChangeProof(block.header, certificate, tuple(sorted(included, key=lambda t: t.index))))
        return proofs

    def raw_block_with_certificate(self, height: int) -> bytes | None:
        """``[block, certificate]`` as one msgpack value, the form block sync and observers use."""
        raw_block = self.raw_block(height)
        raw_cert = self.raw_certificate(height)
        if raw_block is None or raw_cert is None:
            return None
        # Both are stored in canonical form, so the array of the two is a 2-element header
        # followed by the two encodings (exactly codec.encode([block, certificate])).
        return b"\x92" + raw_block + raw_cert

    def vouched_block_with_certificate(self, height: int) -> bytes | None:
        """``raw_block_with_certificate``, re-checked against the header chain before it is served:
        the stored block's header must hash to the block hash its stored certificate, the hash index
        and (for the top block) the ledger's last block hash name, and its last commit must hash to
        the header's ``last_commit_hash``. (The transactions are covered by LevelDB's per-block CRC32C,
        checked on every read; re-hashing them into the tx root would cost ≈ 1 ms per 200-ballot block.)

        Raises ``StoreCorrupt`` when they disagree: such bytes are never served.
        """
        raw_block = self.raw_block(height)
        raw_cert = self.raw_certificate(height)
        if raw_block is None or raw_cert is None:
            return None
        try:
            value = codec.decode_stored(raw_block)
            cert = codec.decode_stored(raw_cert)
            if not (isinstance(value, list) and len(value) == 3 and isinstance(cert, list) and len(cert) == 4):
                raise DecodeError("not [header, txs, last_commit] and [height, round, hash, signatures]")
            header = BlockHeader.from_wire(value[0])
        except DecodeError as exc:
            raise StoreCorrupt(f"stored block {height} or its certificate does not decode: {exc.message}") from exc
        block_hash = header.hash()
        last_commit_hash = ZERO_HASH if value[2] is None else sha256(codec.encode(value[2]))
        problems = [what for what, bad in (
            ("height", header.height != height or cert[0] != height),
            ("certificate", cert[2] != block_hash),
            ("hash index", self.height_of(block_hash) != height),
            ("top of the chain", height == self.height and block_hash != self.last_block_hash),
            ("last commit", last_commit_hash != header.last_commit_hash),
        ) if bad]
        if problems:
            raise StoreCorrupt(f"stored block {height} does not match its {', '.join(problems)}")
        return b"\x92" + raw_block + raw_cert

    # --- execution -----------------------------------------------------------------------------

    def execute(self, txs: Iterable[Tx], *, height: int, time_ms: int, skip_failing: bool,
                checked: SignatureCache = _never_checked) -> tuple[Execution, list[Tx], list[tuple[Tx, TxRejected]]]:
        execution = self.state.begin(height, time_ms)
        execution.begin_block()
        applied: list[Tx] = []
        rejected: list[tuple[Tx, TxRejected]] = []
        for tx in txs:
            try:
                execution.apply(tx, signatures_checked=checked(tx.hash))
            except TxRejected as exc:
                if not skip_failing:
                    raise
                rejected.append((tx, exc))
                continue
            applied.append(tx)
        return execution, applied, rejected

    def build_block(self, txs: Sequence[Tx], *, time_ms: int, round_: int,
                    last_commit: CommitCertificate | None, checked: SignatureCache = _never_checked,
                    max_txs: int = MAX_TXS_PER_BLOCK) -> BuiltBlock:
        """Run ``txs`` in order on the committed state; keep those that apply.

        The block time is at least the previous block's time + 1 ms. Transactions that fail go to
        ``rejected``. The first transaction that would overflow the block (``max_txs``,
        MAX_BLOCK_BYTES) and every one after it go to ``deferred`` without being run, so a later
        transaction never lands in a block without an earlier one it may depend on.
        """
        height = self.height + 1
        self.require_supported(height)
        if (last_commit is None) != (height == 1) or (
                last_commit is not None and (last_commit.height, last_commit.block_hash) != (self.height, self.last_block_hash)):
            raise BlockInvalid(f"block {height} needs the commit certificate of block {self.height} as its last commit")
        time_ms = max(time_ms, self.last_time_ms + 1)
        execution = self.state.begin(height, time_ms)
        execution.begin_block()
        limit = min(max_txs, MAX_TXS_PER_BLOCK)
        room = MAX_BLOCK_BYTES - block_overhead_bytes(self.params.chain_id, last_commit)
        applied: list[Tx] = []
        rejected: list[tuple[Tx, TxRejected]] = []
        deferred: list[Tx] = []
        for tx in txs:
            size = encoded_tx_bytes(tx.raw)
            if deferred or len(applied) >= limit or size > room:
                deferred.append(tx)
                continue
            try:
                execution.apply(tx, signatures_checked=checked(tx.hash))
            except TxRejected as exc:
                rejected.append((tx, exc))
                continue
            applied.append(tx)
            room -= size
        _, app_hash = execution.finish()
        raw_txs = [tx.raw for tx in applied]
        header = make_header(
            chain_id=self.params.chain_id, height=height, round_=round_, time_ms=time_ms,
            previous_hash=self.last_block_hash, txs=raw_txs, app_hash=app_hash,
            proposer=self.validators_at(height).proposer_index(height, round_), last_commit=last_commit,
        )
        return BuiltBlock(Block(header, tuple(raw_txs), last_commit), execution, rejected, deferred)

    def check_block(self, block: Block, *, now_ms: int | None = None, checked: SignatureCache = _never_checked,
                    verify_last_commit: bool = True) -> Execution:
        """Re-execute ``block`` on the committed state; raise ``BlockInvalid`` unless it is valid."""
        header = block.header
        height = self.height + 1
        self.require_supported(height)
        if header.chain_id != self.params.chain_id:
            raise BlockInvalid(f"block is for chain {header.chain_id!r}")
        if header.height != height:
            raise BlockInvalid(f"block height {header.height}, expected {height}")
        if header.previous_hash != self.last_block_hash:
            raise BlockInvalid(f"block {height} does not extend the last committed block")
        if header.proposer != self.validators_at(height).proposer_index(height, header.round):
            raise BlockInvalid(f"block {height}: wrong proposer for round {header.round}")
        if header.time_ms <= self.last_time_ms:
            raise BlockInvalid(f"block {height}: time is not after the previous block's")
        if now_ms is not None and header.time_ms > now_ms + self.params.time_precision_ms:
            raise BlockInvalid(f"block {height}: time is ahead of this node's clock by more than "
                               f"{self.params.time_precision_ms} ms")
        block.check_structure()
        if verify_last_commit and block.last_commit is not None:
            verify_certificate(block.last_commit, self.validators_at(height - 1), self.params.chain_id,
                               height=height - 1, block_hash=self.last_block_hash,
                               verified=self._verified_precommits(block.last_commit))
        txs: list[Tx] = []
        seen: set[bytes] = set()
        for index, raw in enumerate(block.txs):
            try:
                tx = decode_tx(raw)
            except DecodeError as exc:
                raise BlockInvalid(f"block {height}: transaction {index} is malformed: {exc.message}") from exc
            if tx.hash in seen:
                raise BlockInvalid(f"block {height}: transaction {index} appears twice")
            seen.add(tx.hash)
            txs.append(tx)
        try:
            execution, _, _ = self.execute(txs, height=height, time_ms=header.time_ms, skip_failing=False,
                                           checked=checked)
        except TxRejected as exc:
            raise BlockInvalid(f"block {height}: a transaction does not apply: {exc}") from exc
        _, app_hash = execution.finish()
        if app_hash != header.app_hash:
            raise BlockInvalid(f"block {height}: app hash mismatch (state diverged or block forged)")
        return execution

    def committing(self) -> AbstractContextManager[None]:
        """Hold every commit made inside and write them all in one synced batch when it ends.

        Reads (blocks, certificates, tx index, state) see the held commits at once. After a crash
        the store is at the height before the first held commit or at the last one: a crash never
        leaves part of a block, nor part of the range. If the body raises, the commits made before
        the error are still written (each was a whole, checked block).
        """
        return self.store.held()

    def _verified_precommits(self, certificate: CommitCertificate) -> frozenset[tuple[int, bytes]]:
        """Signatures of ``certificate`` this ledger verified when it stored the same block's certificate."""
        stored = self._stored_certificate
        if stored is None or (stored.height, stored.round, stored.block_hash) != (
                certificate.height, certificate.round, certificate.block_hash):
            return frozenset()
        return frozenset(stored.signatures)

    def commit(self, block: Block, certificate: CommitCertificate, execution: Execution, *,
               certificate_checked: bool = False) -> None:
        """Store block, certificate, tx index and state changes in one synced batch.

        Inside ``committing()`` the batch joins the one written when it ends.

        ``execution`` must be the result of ``build_block``/``check_block`` for this very block on
        the current state. The certificate's signatures are verified unless the caller already
        did (``certificate_checked``): a block is never stored without a valid commit.
        """
        height = block.height
        if height != self.height + 1 or execution.height != height or execution.state is not self.state:
            raise StorageError(f"commit of block {height} out of order (ledger at {self.height})")
        if block.header.previous_hash != self.last_block_hash:
            raise StorageError(f"block {height} does not extend the last committed block")
        block_hash = block.hash()
        if certificate.block_hash != block_hash or certificate.height != height:
            raise StorageError(f"certificate does not match block {height}")
        if not certificate_checked:
            verify_certificate(certificate, self.validators_at(height), self.params.chain_id,
                               height=height, block_hash=block_hash)
        writes, app_hash = execution.finish()
        if app_hash != block.header.app_hash or execution.time_ms != block.header.time_ms:
            raise StorageError(f"the execution given for block {height} is not this block's execution")
        batch: dict[bytes, bytes | None] = dict(writes)
        batch[block_key(height)] = block.encode()
        batch[cert_key(height)] = certificate.encode()
        batch[HASH_PREFIX + block_hash] = u64(height)
        for index, raw in enumerate(block.txs):
            batch[TX_INDEX_PREFIX + sha256(raw)] = struct.pack(">QI", height, index)
        batch.update(index_entries(block))
        if self._index_from_unrecorded:
            batch[BALLOT_INDEX_FROM_KEY] = u64(self.ballot_index_from)
        batch[HEIGHT_KEY] = u64(height)
        batch[TIME_KEY] = u64(block.header.time_ms)
        batch[APP_HASH_KEY] = app_hash
        self.store.write(batch, sync=True)
        self._index_from_unrecorded = False
        self.state.apply_changes(execution)
        self.last_block_hash = block_hash
        self._stored_certificate = certificate

    def apply_synced(self, block: Block, certificate: CommitCertificate, *, check_signatures: bool = False) -> None:
        """Apply a block fetched from a peer: its certificate must prove a quorum for it.

        Under a valid certificate, transaction signatures are trusted unless ``check_signatures``
        (``veche verify`` checks everything).
        """
        self.require_supported(self.height + 1)
        verify_certificate(certificate, self.validators_at(self.height + 1), self.params.chain_id,
                           height=self.height + 1, block_hash=block.hash())
        trust: SignatureCache = _never_checked if check_signatures else (lambda _h: True)
        execution = self.check_block(block, checked=trust)
        self.commit(block, certificate, execution, certificate_checked=True)


def decode_block_with_certificate(data: bytes) -> tuple[Block, CommitCertificate]:
    value = codec.decode(data, max_bytes=1 << 24)
    if not isinstance(value, list) or len(value) != 2:
        raise DecodeError("expected [block, certificate]")
    return Block.from_wire(value[0]), CommitCertificate.from_wire(value[1])
