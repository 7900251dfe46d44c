"""``veche verify``: passes on an honest chain, names the first bad height on damaged copies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import plyvel
import pytest
from click.testing import CliRunner, Result

from chain import codec
from chain.block import Block
from chain.crypto import SigningKey
from chain.ledger import block_key
from chain.records import tally_key, u64
from chain.storage import LevelStore
from chain.tx import VoteCast, decode_tx, encode_tx, signing_bytes
from node.cli_transparency import verify_command
from tests.transparency.chainkit import ChainBuilder
from tests.transparency.conftest import BuiltChain
from tests.node.netkit import free_base_port
from tests.transparency.fakenode import FakeNetwork, FakeNode, FakeTestnet, ThreadedTestnet


def run_verify(*args: str) -> tuple[Result, dict[str, Any]]:
    result = CliRunner().invoke(verify_command, [*args, "--json"])
    assert result.stdout.strip(), result.stderr
    return result, json.loads(result.stdout)


def test_honest_chain_verifies_from_home(honest_chain: BuiltChain) -> None:
    result, report = run_verify("--home", str(honest_chain.home))
    assert result.exit_code == 0, report
    assert set(report) == {"ok", "chain_id", "height", "blocks", "txs", "votes", "first_bad_height", "error",
                           "campaigns", "seconds", "votes_per_second", "resumed_from"}
    assert report["ok"] is True and report["error"] is None and report["first_bad_height"] is None
    assert report["resumed_from"] == 0
    assert report["height"] == report["blocks"] == honest_chain.height
    assert report["votes"] == honest_chain.votes
    parks, roads = report["campaigns"]["parks"], report["campaigns"]["roads"]
    assert parks["status"] == roads["status"] == "closed"
    assert parks["total_ballots"] == roads["total_ballots"] == 700
    # 700 voters: 234 chose trees (south), 233 swings and 233 benches (north); both north ones fit the budget.
    assert sorted(parks["winners"]) == ["benches", "swings", "trees"]
    assert parks["matches"] is True and parks["published_result_hash"] == parks["result_hash"]
    # equal shares: 525 voters approve {r1, r2}, 175 approve {r3}; budget 900 buys r2 then r3... computed here:
    assert roads["winners"] and roads["published_result_hash"] is None and roads["matches"] is None
    points = report["campaigns"]["points"]
    assert points["status"] == "closed" and points["total_ballots"] == 700 and points["winners"]
    assert report["votes_per_second"] > 0 and report["seconds"] > 0


def test_human_output_names_result(honest_chain: BuiltChain, tmp_path: Path) -> None:
    """Also the variant without a signature pool and with the replayed state on disk."""
    result = CliRunner().invoke(verify_command, ["--home", str(honest_chain.home), "--workers", "0",
                                                 "--scratch", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert "OK: every block, certificate, signature, state transition and tally checks" in result.stdout
    assert "campaign parks: closed, 700 ballots" in result.stdout


def flip_byte(home: Path, height: int) -> None:
    """Flip the lowest bit of the middle byte of a stored block (inside one of its ballots)."""
    db = plyvel.DB(str(home / "data"))
    try:
        raw = bytearray(db.get(block_key(height)))
        raw[len(raw) // 2] ^= 0x01
        db.put(block_key(height), bytes(raw))
    finally:
        db.close()


def delete_block(home: Path, height: int) -> None:
    db = plyvel.DB(str(home / "data"))
    try:
        db.delete(block_key(height))
    finally:
        db.close()


def forged_vote(chain: BuiltChain, voter: SigningKey, choices: list[str]) -> bytes:
    """A ballot of ``voter`` whose signature is a real signature of the voter over other bytes."""
    body = VoteCast("parks", "north", tuple(choices))
    wrong = voter.sign(signing_bytes("vote.cast", chain.genesis.chain_id, VoteCast("parks", "south", ("trees",))))
    return encode_tx("vote.cast", chain.genesis.chain_id, body, [(voter.public_key, wrong)])


def insert_tx(home: Path, height: int, raw_tx: bytes) -> None:
    """Append a transaction to a stored block, re-encoded, as an attacker with disk access would."""
    db = plyvel.DB(str(home / "data"))
    try:
        block = Block.decode(db.get(block_key(height)))
        forged = Block(block.header, block.txs + (raw_tx,), block.last_commit)
        db.put(block_key(height), forged.encode())
    finally:
        db.close()


def test_flipped_byte_names_its_height(honest_chain: BuiltChain, tmp_path: Path) -> None:
    target = honest_chain.vote_heights[2]
    copy = honest_chain.copy(tmp_path / "copy")
    flip_byte(copy, target)
    result, report = run_verify("--home", str(copy))
    assert result.exit_code == 1
    assert report["ok"] is False and report["first_bad_height"] == target
    assert report["height"] == target - 1
    assert report["error"].startswith(f"block {target}")


def test_removed_block_names_its_height(honest_chain: BuiltChain, tmp_path: Path) -> None:
    target = honest_chain.vote_heights[1]
    copy = honest_chain.copy(tmp_path / "copy")
    delete_block(copy, target)
    result, report = run_verify("--home", str(copy))
    assert result.exit_code == 1
    assert report["first_bad_height"] == target and f"block {target} is missing" in report["error"]


def test_vote_inserted_into_a_stored_block_is_caught(honest_chain: BuiltChain, tmp_path: Path) -> None:
    target = honest_chain.vote_heights[0]
    copy = honest_chain.copy(tmp_path / "copy")
    insert_tx(copy, target, forged_vote(honest_chain, SigningKey.generate(), ["swings"]))
    result, report = run_verify("--home", str(copy))
    assert result.exit_code == 1
    assert report["first_bad_height"] == target
    assert report["error"] == f"block {target}: tx root does not match its transactions"


def test_tampered_tally_in_stored_state_is_caught(honest_chain: BuiltChain, tmp_path: Path) -> None:
    copy = honest_chain.copy(tmp_path / "copy")
    db = plyvel.DB(str(copy / "data"))
    db.put(tally_key("parks", "swings"), u64(10_000))
    db.close()
    result, report = run_verify("--home", str(copy))
    assert result.exit_code == 1
    assert "stored state differs from the replay at key S/t/parks/swings" in report["error"]
    assert report["first_bad_height"] is None


def test_tampered_points_in_stored_state_are_caught(honest_chain: BuiltChain, tmp_path: Path) -> None:
    from chain.records import score_key

    copy = honest_chain.copy(tmp_path / "copy")
    db = plyvel.DB(str(copy / "data"))
    assert db.get(score_key("points", "p2")) is not None
    db.put(score_key("points", "p2"), u64(10_000))
    db.close()
    result, report = run_verify("--home", str(copy))
    assert result.exit_code == 1
    assert "stored state differs from the replay at key S/s/points/p2" in report["error"]


def build_byzantine_chain(home: Path) -> tuple[BuiltChain, int]:
    """A chain where a quorum certified a block holding a ballot with a wrong signature."""
    from tests.transparency.conftest import build_chain

    chain = build_chain(home)
    store = LevelStore(home / "data")
    builder = ChainBuilder(store, chain.genesis, chain.keys)
    late_voter = SigningKey.generate()
    builder.add_block([builder.campaign("late", voting_start=builder.ledger.last_time_ms + 5_000),
                       builder.initiative("late", "x", "north", 5)])
    builder.add_block([builder.registration("late", [late_voter])], time_ms=builder.ledger.last_time_ms + 20_000)
    body = VoteCast("late", "north", ("x",))
    wrong = late_voter.sign(b"some other message")
    forged = decode_tx(encode_tx("vote.cast", chain.genesis.chain_id, body, [(late_voter.public_key, wrong)]))
    bad_height = builder.add_block([forged], checked=lambda tx_hash: True).height
    builder.add_block([builder.close("late")])   # the chain goes on after the forged block
    store.close()
    return chain, bad_height


@pytest.fixture(scope="module")
def byzantine_chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuiltChain, int]:
    return build_byzantine_chain(tmp_path_factory.mktemp("byzantine") / "home")


def test_certified_forged_signature_is_caught(byzantine_chain: tuple[BuiltChain, int]) -> None:
    chain, bad_height = byzantine_chain
    result, report = run_verify("--home", str(chain.home))
    assert result.exit_code == 1
    assert report["first_bad_height"] == bad_height
    assert "signature" in report["error"]


# --- the same over the public API -------------------------------------------------------------------


def serve_home(home: Path, chain: BuiltChain) -> ThreadedTestnet:
    store = LevelStore(home / "data")
    network = FakeNetwork(chain.genesis, chain.keys.validators, store)
    base = free_base_port(2)
    return ThreadedTestnet(FakeTestnet(network, [FakeNode("observer-0", "observer", base),
                                                 FakeNode("observer-1", "observer", base + 1)], produce=False))


@pytest.fixture
def served_honest(honest_chain: BuiltChain, tmp_path: Path) -> Iterator[ThreadedTestnet]:
    with serve_home(honest_chain.copy(tmp_path / "served"), honest_chain) as served:
        yield served


def test_honest_chain_verifies_over_the_api(served_honest: ThreadedTestnet, honest_chain: BuiltChain,
                                            tmp_path: Path) -> None:
    genesis_file = honest_chain.home / "genesis.json"
    result, report = run_verify("--node", "http://127.0.0.1:1", "--node", served_honest.url(1),
                                "--genesis", str(genesis_file))
    assert result.exit_code == 0, report
    assert report["votes"] == honest_chain.votes and report["height"] == honest_chain.height
    # over the API the equal-shares result is published by the node too, and matches
    assert report["campaigns"]["roads"]["matches"] is True
    assert report["campaigns"]["parks"]["matches"] is True
    assert report["campaigns"]["points"]["matches"] is True   # equal shares over cumulative ballots


def test_pinned_genesis_must_match(served_honest: ThreadedTestnet, tmp_path: Path) -> None:
    from tests.transparency.chainkit import genesis_document, make_keys

    other = tmp_path / "other-genesis.json"
    other.write_text(json.dumps(genesis_document(make_keys())), encoding="utf-8")
    result = CliRunner().invoke(verify_command, ["--node", served_honest.url(0), "--genesis", str(other)])
    assert result.exit_code == 2 and "is not the pinned genesis" in result.stderr


@pytest.mark.parametrize("damage", ["flip", "remove", "insert"])
def test_damaged_copy_over_the_api_names_the_height(honest_chain: BuiltChain, tmp_path: Path, damage: str) -> None:
    copy = honest_chain.copy(tmp_path / "copy")
    target = honest_chain.vote_heights[1]
    if damage == "flip":
        flip_byte(copy, target)
    elif damage == "remove":
        delete_block(copy, target)
    else:
        insert_tx(copy, target, forged_vote(honest_chain, honest_chain.voters[5], ["benches"]))
    with serve_home(copy, honest_chain) as served:
        result, report = run_verify("--node", served.url(0))
    assert result.exit_code == 1, report
    assert report["first_bad_height"] == target


def test_forged_signature_over_the_api(byzantine_chain: tuple[BuiltChain, int], tmp_path: Path) -> None:
    chain, bad_height = byzantine_chain
    with serve_home(chain.copy(tmp_path / "copy"), chain) as served:
        result, report = run_verify("--node", served.url(0))
    assert result.exit_code == 1
    assert report["first_bad_height"] == bad_height and "signature" in report["error"]


def test_usage_errors(honest_chain: BuiltChain, tmp_path: Path) -> None:
    result = CliRunner().invoke(verify_command, [])
    assert result.exit_code == 2 and "exactly one of --node URL or --home DIR" in result.stderr
    result = CliRunner().invoke(verify_command, ["--home", str(tmp_path)])
    assert result.exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "genesis.json").write_text((honest_chain.home / "genesis.json").read_text())
    result = CliRunner().invoke(verify_command, ["--home", str(empty)])
    assert result.exit_code == 2 and "holds no LevelDB database" in result.stderr


def test_locked_database_explains_what_to_do(honest_chain: BuiltChain, tmp_path: Path) -> None:
    copy = honest_chain.copy(tmp_path / "copy")
    holder = LevelStore(copy / "data")   # a running node holds the LevelDB lock
    try:
        result = CliRunner().invoke(verify_command, ["--home", str(copy)])
    finally:
        holder.close()
    assert result.exit_code == 2
    assert "stop the node first" in result.stderr
