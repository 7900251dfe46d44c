"""Vote receipts: what a voter keeps, and how anyone checks it like a light client.

A receipt (JSON, the file ``veche receipt verify`` takes and ``/receipt/{tx_hash}.json`` serves):
{
  "version": 1, "chain_id": "...", "genesis_hash": hex,
  "tx_hash": hex, "tx": hex (the encoded transaction), "height": int, "index": int,
  "tree_size": int, "proof": [hex, ...], "header": hex (encoded block header),
  "certificate": hex (encoded commit certificate of that block)
}
Checking it needs only the genesis file: the tx hashes to ``tx_hash``, is for this chain and its
signatures verify; its Merkle path leads to the header's ``tx_root``; the header's hash is the
certificate's block; the certificate carries a quorum of valid signatures of the validator set in
force at the receipt's height — the genesis set, or the set a light client reached by following
every set change from genesis (``chain/lightclient.py``). Because a block holds only transactions
that apply, a valid receipt proves the ballot was counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chain import codec
from chain.block import BlockHeader, CommitCertificate, ValidatorSet
from chain.crypto import sha256
from chain.errors import DecodeError, SignatureError, VecheError
from chain.lightclient import verify_header
from chain.merkle import verify_inclusion
from chain.params import ChainParams
from chain.tx import Tx, decode_tx

RECEIPT_VERSION = 1


class ReceiptError(VecheError):
    code = "bad_receipt"


@dataclass(frozen=True, slots=True)
class CheckedReceipt:
    tx: Tx
    header: BlockHeader
    certificate: CommitCertificate
    height: int
    index: int


def build_receipt(params: ChainParams, tx_raw: bytes, height: int, index: int, tree_size: int,
                  proof: Sequence[bytes], header: BlockHeader, certificate: CommitCertificate) -> dict[str, Any]:
    return receipt_document(params.chain_id, params.genesis_hash, tx_raw, height, index, tree_size, proof,
                            header.encode(), certificate.encode())


def receipt_document(chain_id: str, genesis_hash: bytes, tx_raw: bytes, height: int, index: int, tree_size: int,
                     proof: Sequence[bytes], header_raw: bytes, certificate_raw: bytes) -> dict[str, Any]:
    """The receipt file's JSON (the layout in the module text) from its parts as bytes."""
    return {
        "version": RECEIPT_VERSION,
        "chain_id": chain_id,
        "genesis_hash": genesis_hash.hex(),
        "tx_hash": sha256(tx_raw).hex(),
        "tx": tx_raw.hex(),
        "height": height,
        "index": index,
        "tree_size": tree_size,
        "proof": [p.hex() for p in proof],
        "header": header_raw.hex(),
        "certificate": certificate_raw.hex(),
    }


def _hex(document: dict[str, Any], key: str) -> bytes:
    value = document.get(key)
    if not isinstance(value, str):
        raise ReceiptError(f"receipt field {key!r} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise ReceiptError(f"receipt field {key!r} is not valid hex") from exc


def _int(document: dict[str, Any], key: str) -> int:
    value = document.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ReceiptError(f"receipt field {key!r} must be a non-negative integer")
    return value


def verify_receipt(document: Any, params: ChainParams,
                   validators_at: Callable[[int], ValidatorSet] | None = None) -> CheckedReceipt:
    """Raise ``ReceiptError`` unless the receipt proves its transaction committed on this chain.

    ``validators_at(height)``: the validator set in force at a height, as a light client verified it
    (``lightclient.follow_set_changes(...).at``); without it, the genesis set.
    """
    if not isinstance(document, dict):
        raise ReceiptError("a receipt is a JSON object")
    if document.get("version") != RECEIPT_VERSION:
        raise ReceiptError(f"unsupported receipt version {document.get('version')!r}")
    if document.get("chain_id") != params.chain_id:
        raise ReceiptError(f"receipt is for chain {document.get('chain_id')!r}, not {params.chain_id!r}")
    if _hex(document, "genesis_hash") != params.genesis_hash:
        raise ReceiptError("receipt names a different genesis file")
    tx_raw = _hex(document, "tx")
    tx_hash = _hex(document, "tx_hash")
    if sha256(tx_raw) != tx_hash:
        raise ReceiptError("the transaction in the receipt does not hash to its tx_hash")
    try:
        tx = decode_tx(tx_raw)
        header = BlockHeader.from_wire(codec.decode(_hex(document, "header")))
        certificate = CommitCertificate.decode(_hex(document, "certificate"))
    except DecodeError as exc:
        raise ReceiptError(f"receipt contains malformed data: {exc.message}") from exc
    height, index, size = _int(document, "height"), _int(document, "index"), _int(document, "tree_size")
    proof_raw = document.get("proof")
    if not isinstance(proof_raw, list) or len(proof_raw) > 64:
        raise ReceiptError("receipt proof must be a list of hex hashes")
    proof = [_hex({"p": p}, "p") for p in proof_raw]
    if any(len(p) != 32 for p in proof):
        raise ReceiptError("every proof element is a 32-byte hash")
    if header.height != height or header.chain_id != params.chain_id:
        raise ReceiptError("receipt header does not match its height or chain")
    if tx.chain_id != params.chain_id:
        raise ReceiptError(f"the transaction is for chain {tx.chain_id!r}")
    try:
        tx.verify_signatures()
    except SignatureError as exc:
        raise ReceiptError(f"the transaction's signature does not verify: {exc.message}") from exc
    try:
        verify_inclusion(tx_raw, index, size, proof, header.tx_root)
    except VecheError as exc:
        raise ReceiptError(f"inclusion proof fails: {exc.message}") from exc
    try:
        validators = params.validators if validators_at is None else validators_at(height)
        verify_header(params.chain_id, header, certificate, validators)
    except VecheError as exc:
        raise ReceiptError(f"commit certificate fails: {exc.message}") from exc
    return CheckedReceipt(tx, header, certificate, height, index)
