"""A light client's walk across validator set changes, trusting only the genesis file (pure).

To accept a header at height ``h`` a light client needs the validator set in force at ``h``. It
starts from the genesis set and follows every ``validators.update``: for each block ``C`` that
committed set changes it is given a **change proof** — the header of ``C``, its commit
certificate, and every ``validators.update`` transaction of ``C`` with its Merkle inclusion proof.
It checks the certificate against the set it already trusts for height ``C``, the inclusion of
each transaction in ``C``'s tx root, and applies the changes in block order with the state
machine's own rule (``governance.updated_validators``): the result is the set in force from
``C + 2``. Change proofs come in ascending height order.

Trust rule (docs/PROTOCOL.md §15.4): sequential, no skipping — every change is verified under the
set that was in force when it was committed. The client cannot see a change that the serving node
leaves out; it would then check later certificates against an older set, which only a quorum of
that *former* set could satisfy by signing a block they were no longer entitled to (the
long-range attack CometBFT bounds with a trusting period). ``veche receipt verify`` therefore also
compares the header with the node's block at that height; run it against your own observer to
close the gap.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from chain import codec
from chain.block import BlockHeader, CommitCertificate, ValidatorSet, verify_certificate
from chain.errors import CertificateError, DecodeError, SignatureError, TxRejected, VecheError
from chain.governance import effective_height, updated_validators
from chain.merkle import verify_inclusion
from chain.tx import ValidatorsUpdate, decode_tx

MAX_CHANGE_PROOFS = 10_000
MAX_TXS_PER_PROOF = 64
MAX_PATH = 64


class LightClientError(VecheError):
    code = "bad_set_change"


@dataclass(frozen=True, slots=True)
class IncludedTx:
    tx: bytes
    index: int
    tree_size: int
    path: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ChangeProof:
    """Block ``header.height`` committed the ``validators.update`` transactions ``txs`` (all of them, in order)."""

    header: BlockHeader
    certificate: CommitCertificate
    txs: tuple[IncludedTx, ...]

    @property
    def height(self) -> int:
        return self.header.height


class ValidatorSchedule:
    """Validator sets by the height they come into force, as far as the light client verified them."""

    def __init__(self, genesis: ValidatorSet) -> None:
        self._starts = [0]
        self._sets = [genesis]

    def add(self, from_height: int, validators: ValidatorSet) -> None:
        if from_height <= self._starts[-1]:
            raise LightClientError(f"set change at height {from_height} after one at {self._starts[-1]}")
        self._starts.append(from_height)
        self._sets.append(validators)

    def at(self, height: int) -> ValidatorSet:
        return self._sets[bisect.bisect_right(self._starts, height) - 1]

    def latest(self) -> ValidatorSet:
        return self._sets[-1]

    @property
    def changes(self) -> int:
        return len(self._sets) - 1


def verify_header(chain_id: str, header: BlockHeader, certificate: CommitCertificate,
                  validators: ValidatorSet) -> None:
    """Raise ``CertificateError`` unless ``certificate`` holds a quorum of ``validators``' precommits for
    exactly ``header`` (its height and hash) on ``chain_id``: the check of every certified header a
    light client accepts — a set change's block here, a receipt's block (``chain/receipt.py``), a
    block the gateway fetched. ``validators``: the set in force at ``header.height``."""
    if header.chain_id != chain_id:
        raise CertificateError(f"the header at height {header.height} is for chain {header.chain_id!r}")
    verify_certificate(certificate, validators, chain_id, height=header.height, block_hash=header.hash())


def follow_set_changes(chain_id: str, genesis: ValidatorSet, proofs: Iterable[ChangeProof]) -> ValidatorSchedule:
    """Verify ``proofs`` in order from the genesis set; raise ``LightClientError`` at the first that fails."""
    schedule = ValidatorSchedule(genesis)
    last = 0
    for proof in proofs:
        height = proof.height
        if height <= last:
            raise LightClientError(f"set change proofs must go up in height ({height} after {last})")
        if proof.header.chain_id != chain_id:
            raise LightClientError(f"set change proof at height {height} is for chain {proof.header.chain_id!r}")
        try:
            verify_header(chain_id, proof.header, proof.certificate, schedule.at(height))
        except VecheError as exc:
            raise LightClientError(f"set change at height {height}: commit certificate fails: {exc.message}") from exc
        if not proof.txs:
            raise LightClientError(f"set change proof at height {height} carries no transaction")
        validators = schedule.latest()
        previous_index = -1
        for item in proof.txs:
            if item.index <= previous_index:
                raise LightClientError(f"set change at height {height}: transactions out of block order")
            previous_index = item.index
            validators = ValidatorSet(_apply(chain_id, height, proof.header, item, validators))
        schedule.add(effective_height(height), validators)
        last = height
    return schedule


def _apply(chain_id: str, height: int, header: BlockHeader, item: IncludedTx,
           validators: ValidatorSet) -> tuple[Any, ...]:
    try:
        verify_inclusion(item.tx, item.index, item.tree_size, item.path, header.tx_root)
        tx = decode_tx(item.tx)
    except VecheError as exc:
        raise LightClientError(f"set change at height {height}: transaction {item.index}: {exc.message}") from exc
    if tx.chain_id != chain_id or tx.kind != "validators.update" or not isinstance(tx.body, ValidatorsUpdate):
        raise LightClientError(f"set change at height {height}: transaction {item.index} is not a validators.update "
                               "of this chain")
    try:
        tx.verify_signatures()
        return updated_validators(validators, tx.body)
    except (SignatureError, TxRejected) as exc:
        raise LightClientError(f"set change at height {height}: transaction {item.index}: {exc.message}") from exc


# --- JSON (GET /api/v1/validators/changes) ----------------------------------------------------------


def proofs_from_json(document: Any) -> list[ChangeProof]:
    """Parse ``{"changes": [{"height", "header", "certificate", "txs": [{"tx", "index", "tree_size",
    "proof"}]}]}`` strictly; raises ``LightClientError``."""
    if not isinstance(document, dict) or not isinstance(document.get("changes"), list):
        raise LightClientError("set changes must be a JSON object with a 'changes' list")
    items = document["changes"]
    if len(items) > MAX_CHANGE_PROOFS:
        raise LightClientError(f"more than {MAX_CHANGE_PROOFS} set changes")
    proofs = []
    for number, item in enumerate(items):
        where = f"changes[{number}]"
        if not isinstance(item, dict):
            raise LightClientError(f"{where} must be an object")
        try:
            header = BlockHeader.from_wire(codec.decode(_hex(item, "header", where)))
            certificate = CommitCertificate.decode(_hex(item, "certificate", where))
        except DecodeError as exc:
            raise LightClientError(f"{where}: {exc.message}") from exc
        if _int(item, "height", where) != header.height:
            raise LightClientError(f"{where}: height does not match its header")
        txs = item.get("txs")
        if not isinstance(txs, list) or len(txs) > MAX_TXS_PER_PROOF:
            raise LightClientError(f"{where}.txs must be a list of at most {MAX_TXS_PER_PROOF}")
        proofs.append(ChangeProof(header, certificate, tuple(_included(tx, f"{where}.txs") for tx in txs)))
    return proofs


def proof_to_json(proof: ChangeProof) -> dict[str, Any]:
    return {"height": proof.height, "effective_height": effective_height(proof.height),
            "header": proof.header.encode().hex(), "certificate": proof.certificate.encode().hex(),
            "txs": [{"tx": item.tx.hex(), "index": item.index, "tree_size": item.tree_size,
                     "proof": [step.hex() for step in item.path]} for item in proof.txs]}


def _included(value: Any, where: str) -> IncludedTx:
    if not isinstance(value, dict):
        raise LightClientError(f"{where} entries must be objects")
    path = value.get("proof")
    if not isinstance(path, list) or len(path) > MAX_PATH:
        raise LightClientError(f"{where}.proof must be a list of at most {MAX_PATH} hashes")
    steps = tuple(_hex({"p": step}, "p", where) for step in path)
    if any(len(step) != 32 for step in steps):
        raise LightClientError(f"{where}.proof holds 32-byte hashes")
    return IncludedTx(_hex(value, "tx", where), _int(value, "index", where), _int(value, "tree_size", where), steps)


def _hex(document: dict[str, Any], key: str, where: str) -> bytes:
    value = document.get(key)
    if not isinstance(value, str) or len(value) % 2:
        raise LightClientError(f"{where}.{key} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise LightClientError(f"{where}.{key} is not hex") from exc


def _int(document: dict[str, Any], key: str, where: str) -> int:
    value = document.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise LightClientError(f"{where}.{key} must be a non-negative integer")
    return value


def change_proofs(blocks: Sequence[tuple[BlockHeader, CommitCertificate, Sequence[IncludedTx]]]) -> list[ChangeProof]:
    """Build proofs from (header, certificate, included txs) triples (for nodes and tests)."""
    return [ChangeProof(header, certificate, tuple(txs)) for header, certificate, txs in blocks]
