"""``veche receipt verify``: a light-client check of a vote receipt, trusting only genesis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from chain import codec
from chain.block import BlockHeader, CommitCertificate
from chain.ledger import Ledger
from chain.merkle import inclusion_proof
from chain.receipt import build_receipt
from chain.storage import LevelStore, MemoryStore
from chain.tx import decode_tx
from node.cli_transparency import receipt_group
from tests.transparency.chainkit import ChainBuilder, genesis_document, make_keys
from tests.transparency.conftest import BuiltChain
from tests.transparency.fakenode import ThreadedTestnet
from tests.transparency.test_verify import serve_home


def receipt_from(ledger: Ledger, height: int, index: int) -> dict[str, Any]:
    block = ledger.block(height)
    certificate = ledger.certificate(height)
    assert block is not None and certificate is not None
    return build_receipt(ledger.params, block.txs[index], height, index, len(block.txs),
                         inclusion_proof(block.txs, index), block.header, certificate)


@pytest.fixture(scope="module")
def served(honest_chain: BuiltChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedTestnet]:
    with serve_home(honest_chain.copy(tmp_path_factory.mktemp("receipt") / "home"), honest_chain) as testnet:
        yield testnet


@pytest.fixture
def receipt(served: ThreadedTestnet, honest_chain: BuiltChain) -> dict[str, Any]:
    return receipt_from(served.network.ledger, honest_chain.vote_heights[1], 7)


def check(tmp_path: Path, document: Any, *args: str) -> Result:
    file = tmp_path / "receipt.json"
    file.write_text(json.dumps(document), encoding="utf-8")
    return CliRunner().invoke(receipt_group, ["verify", str(file), *args])


def test_valid_receipt_passes(served: ThreadedTestnet, receipt: dict[str, Any], honest_chain: BuiltChain,
                              tmp_path: Path) -> None:
    result = check(tmp_path, receipt, "--node", served.url(0))
    assert result.exit_code == 0, result.stderr
    assert f"genesis {honest_chain.genesis.hash.hex()} (fetched from {served.url(0)})" in result.stdout
    assert f"is transaction 7 of block {honest_chain.vote_heights[1]}" in result.stdout
    assert "3 validator signatures (quorum 3 of 4)" in result.stdout
    assert "receipt valid: ballot in campaign" in result.stdout


def test_a_scored_ballots_receipt_names_its_points(served: ThreadedTestnet, honest_chain: BuiltChain,
                                                  tmp_path: Path) -> None:
    ledger = served.network.ledger
    block = ledger.block(honest_chain.vote_heights[0])
    assert block is not None
    index = next(i for i, raw in enumerate(block.txs) if decode_tx(raw).body.campaign_id == "points")
    result = check(tmp_path, receipt_from(ledger, honest_chain.vote_heights[0], index), "--node", served.url(0))
    assert result.exit_code == 0, result.stderr
    assert "receipt valid: ballot in campaign points, district north, giving p" in result.stdout
    assert "points)" in result.stdout


def test_pinned_genesis(served: ThreadedTestnet, receipt: dict[str, Any], honest_chain: BuiltChain,
                        tmp_path: Path) -> None:
    pinned = honest_chain.home / "genesis.json"
    result = check(tmp_path, receipt, "--node", served.url(0), "--genesis", str(pinned))
    assert result.exit_code == 0, result.stderr
    assert f"(pinned by {pinned})" in result.stdout
    other = tmp_path / "other.json"
    other.write_text(json.dumps(genesis_document(make_keys(), chain_id="veche-test")), encoding="utf-8")
    result = check(tmp_path, receipt, "--node", served.url(0), "--genesis", str(other))
    assert result.exit_code == 1 and "receipt INVALID: receipt names a different genesis file" in result.stderr


def tamper(receipt: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    changed = dict(receipt)
    changed[key] = value
    return changed


def test_tampered_receipts_fail_with_the_reason(served: ThreadedTestnet, receipt: dict[str, Any],
                                                honest_chain: BuiltChain, tmp_path: Path) -> None:
    url = served.url(0)
    ledger = served.network.ledger
    other_tx = ledger.block(honest_chain.vote_heights[1]).txs[8].hex()  # type: ignore[union-attr]
    other_hash = decode_tx(bytes.fromhex(other_tx)).hash.hex()
    header = BlockHeader.from_wire(codec.decode(bytes.fromhex(receipt["header"])))
    certificate = CommitCertificate.decode(bytes.fromhex(receipt["certificate"]))
    weak = CommitCertificate(certificate.height, certificate.round, certificate.block_hash, certificate.signatures[:2])
    forged_header = BlockHeader(header.chain_id, header.height, header.round, header.time_ms, header.previous_hash,
                                header.tx_root, b"\x11" * 32, header.proposer, header.last_commit_hash)
    bad_proof = list(receipt["proof"])
    bad_proof[0] = "00" * 32
    cases = [
        (tamper(receipt, "tx", other_tx), "does not hash to its tx_hash"),
        (tamper(tamper(receipt, "tx", other_tx), "tx_hash", other_hash), "inclusion proof fails"),
        (tamper(receipt, "proof", bad_proof), "inclusion proof fails"),
        (tamper(receipt, "index", 6), "inclusion proof fails"),
        (tamper(receipt, "certificate", weak.encode().hex()), "has 2 signatures, quorum is 3"),
        (tamper(receipt, "header", forged_header.encode().hex()), "certificate at height"),
        (tamper(receipt, "chain_id", "another-chain"), "receipt is for chain 'another-chain'"),
        (tamper(receipt, "tx", "zz"), "not valid hex"),
        ({"version": 1}, "receipt is for chain None"),
    ]
    for document, reason in cases:
        result = check(tmp_path, document, "--node", url)
        assert result.exit_code == 1, (reason, result.stdout)
        assert "receipt INVALID" in result.stderr and reason in result.stderr, (reason, result.stderr)


def test_receipt_from_a_fork_is_refused_by_asking_the_node(served: ThreadedTestnet, honest_chain: BuiltChain,
                                                          tmp_path: Path) -> None:
    """Validators that signed two blocks at one height: the receipt checks, the node's block differs."""
    fork = ChainBuilder(MemoryStore(), honest_chain.genesis, honest_chain.keys)
    fork.add_block([fork.campaign("phantom")])
    receipt = receipt_from(fork.ledger, 1, 0)
    result = check(tmp_path, receipt, "--node", served.url(0))
    assert result.exit_code == 1
    assert "commit certificate: 3 validator signatures" in result.stdout
    assert "receipt INVALID: the node's block 1 is" in result.stderr


def test_unreadable_file_and_unreachable_node(receipt: dict[str, Any], tmp_path: Path) -> None:
    missing = CliRunner().invoke(receipt_group, ["verify", str(tmp_path / "none.json"), "--node", "http://127.0.0.1:1"])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    result = check(tmp_path, receipt, "--node", "http://127.0.0.1:1")
    assert result.exit_code == 3 and "node unreachable" in result.stderr
