"""The small scripted chain whose every byte docs/PROTOCOL.md §13.2 lists.

Keys come from fixed seeds (``seed(name) = sha256("veche test vector " + name)``) and Ed25519 is
deterministic, so every transaction, record, app hash and block hash is the same on every run and
in every implementation. ``python -m tests.chain.vectorchain`` prints the §13.2 text;
``tests/chain/test_protocol_vectors.py`` parses it out of docs/PROTOCOL.md and checks every line.

The chain: genesis with no data; height 1 creates ``c-open`` (stays open) and ``c-vote`` (one ballot
per campaign, top-n); height 2 submits ``o1`` to ``c-open`` by the district operator (never
reviewed), ``a1`` to ``c-vote`` by the committee (approved on submission) and ``a2`` by the district
operator, which the committee rejects by review; height 3 registers one voter of ``c-vote``, who
votes for ``a1``; height 4 closes ``c-vote`` (result written); height 5 reports progress on ``a1``. A
cumulative campaign ``c-points`` (created at 1, ``p1`` and ``p2`` submitted at 2) gets the same voter's
scored ballot at 3 (6 points to ``p2``, 4 to ``p1``: ``S/s`` keys, a 3-element ballot value).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chain.block import Block, make_certificate, vote_signing_bytes
from chain.crypto import SigningKey, sha256
from chain.ledger import Ledger
from chain.storage import MemoryStore
from chain.tx import (
    BallotSpec, CampaignClose, CampaignCreate, District, InitiativeReview, InitiativeSubmit, ProgressReport,
    RuleSpec, Tx, VoteCast, make_registration, make_vote, sign_tx,
)
from genesis.model import canonical_json, parse_genesis

CHAIN_ID = "veche-vectors"
T0 = 1_764_000_000_000
ROLES = ("validator", "committee", "operator", "gateway", "voter")


def seed(name: str) -> bytes:
    return sha256(b"veche test vector " + name.encode())


KEYS = {name: SigningKey(seed(name)) for name in ROLES}


def genesis_document() -> dict[str, Any]:
    return {
        "chain_id": CHAIN_ID,
        "genesis_time_ms": T0,
        "validators": [{"name": "validator-0", "public_key": KEYS["validator"].public_key.hex(),
                        "url": "http://127.0.0.1:26600"}],
        "committee": {"threshold": 1, "keys": [{"name": "committee-0",
                                                "public_key": KEYS["committee"].public_key.hex()}]},
        "district_operators": [{"district_id": "d1", "public_key": KEYS["operator"].public_key.hex()}],
        "gateways": [{"name": "gateway", "public_key": KEYS["gateway"].public_key.hex()}],
        "description": "Test vectors: docs/PROTOCOL.md §13.2 — «кириллица», \"quotes\", </tag> & U+2028:\u2028.",
    }


@dataclass
class Height:
    height: int
    time_ms: int
    txs: list[Tx]
    changes: list[tuple[bytes, bytes]] = field(default_factory=list)
    app_hash: bytes = b""
    block_hash: bytes = b""


def campaign_body(campaign_id: str, ballots_per_voter: str, ballot: BallotSpec = BallotSpec("choose-1", 1, 1),
                  rule: RuleSpec = RuleSpec("top-n", "district", 1, 0, 0)) -> CampaignCreate:
    return CampaignCreate(
        campaign_id, f"Campaign {campaign_id}", "adult", (District("d1", "District one", 5_000_000),),
        ballot, rule, 100, 10_000_000, ("parks",),
        T0, T0 + 3_000, T0 + 3_000, T0 + 1_000_000, KEYS["gateway"].public_key, 100, ballots_per_voter)


def initiative_body(campaign_id: str, initiative_id: str, cost: int) -> InitiativeSubmit:
    return InitiativeSubmit(campaign_id, initiative_id, "d1", f"Initiative {initiative_id}", "parks", cost, "", b"")


def scripted_txs() -> list[tuple[int, list[Tx]]]:
    committee, operator = [KEYS["committee"]], [KEYS["operator"]]
    voter = KEYS["voter"]
    return [
        (T0 + 1_000, [sign_tx("campaign.create", CHAIN_ID, campaign_body("c-open", "district"), committee),
                      sign_tx("campaign.create", CHAIN_ID, campaign_body("c-vote", "campaign"), committee),
                      sign_tx("campaign.create", CHAIN_ID, campaign_body(
                          "c-points", "district", BallotSpec("cumulative", 1, 2, min_sum_points=1, max_sum_points=10),
                          RuleSpec("greedy", "district", 0, 0, 0)), committee)]),
        (T0 + 2_000, [sign_tx("initiative.submit", CHAIN_ID, initiative_body("c-open", "o1", 1_000), operator),
                      sign_tx("initiative.submit", CHAIN_ID, initiative_body("c-vote", "a1", 2_000), committee),
                      sign_tx("initiative.submit", CHAIN_ID, initiative_body("c-vote", "a2", 3_000), operator),
                      sign_tx("initiative.review", CHAIN_ID,
                              InitiativeReview("c-vote", "a2", False, "over the district budget"), committee),
                      sign_tx("initiative.submit", CHAIN_ID, initiative_body("c-points", "p1", 4_000), committee),
                      sign_tx("initiative.submit", CHAIN_ID, initiative_body("c-points", "p2", 5_000), committee)]),
        (T0 + 4_000, [make_registration(CHAIN_ID, KEYS["gateway"], "c-vote", [voter.public_key]),
                      make_vote(CHAIN_ID, voter, "c-vote", "d1", ["a1"]),
                      make_registration(CHAIN_ID, KEYS["gateway"], "c-points", [voter.public_key]),
                      sign_tx("vote.cast", CHAIN_ID, VoteCast("c-points", "d1", ("p2", "p1"), (6, 4)), [voter])]),
        (T0 + 5_000, [sign_tx("campaign.close", CHAIN_ID, CampaignClose("c-vote", "the vote is over"), committee)]),
        (T0 + 6_000, [sign_tx("progress.report", CHAIN_ID,
                              ProgressReport("c-vote", "a1", "works", 50, 1_000, "half done", b""), committee)]),
    ]


def build() -> tuple[bytes, bytes, list[Height]]:
    """(genesis hash, app hash at height 0, heights) of the scripted chain."""
    genesis = parse_genesis(genesis_document())
    ledger = Ledger(MemoryStore(), genesis.params)
    app_hash_0 = ledger.state.app_hash
    heights: list[Height] = []
    last_commit = None
    for time_ms, txs in scripted_txs():
        built = ledger.build_block(txs, time_ms=time_ms, round_=0, last_commit=last_commit)
        assert not built.rejected, built.rejected
        changes, app_hash = built.execution.finish()
        block: Block = built.block
        message = vote_signing_bytes(CHAIN_ID, "precommit", block.height, 0, block.hash())
        certificate = make_certificate(block.height, 0, block.hash(), [(0, KEYS["validator"].sign(message))])
        ledger.commit(block, certificate, built.execution)
        last_commit = certificate
        heights.append(Height(block.height, time_ms, list(txs),
                              [(key, value) for key, value in sorted(changes.items()) if value is not None],
                              app_hash, block.hash()))
    return genesis.hash, app_hash_0, heights


def key_bytes(text: str) -> bytes:
    out = b""
    rest = text
    while "{" in rest:
        before, _, after = rest.partition("{")
        hex_part, _, rest = after.partition("}")
        out += before.encode("ascii") + bytes.fromhex(hex_part)
    return out + rest.encode("ascii")


def render() -> str:
    genesis_hash, app_hash_0, heights = build()
    lines = [f"seed {name} {seed(name).hex()} public_key {KEYS[name].public_key.hex()}" for name in ROLES]
    lines += [f"genesis_jcs {canonical_json(genesis_document()).hex()}", f"genesis_hash {genesis_hash.hex()}",
              f"app_hash 0 {app_hash_0.hex()}"]
    for entry in heights:
        lines.append(f"height {entry.height} time_ms {entry.time_ms}")
        lines += [f"tx {tx.hash.hex()} {tx.raw.hex()}" for tx in entry.txs]
        lines += [f"change {key_text(key)} {value.hex() or '-'}" for key, value in entry.changes]
        lines += [f"app_hash {entry.height} {entry.app_hash.hex()}", f"block_hash {entry.height} {entry.block_hash.hex()}"]
    return "\n".join(lines)


def key_text(key: bytes) -> str:
    """Printable form of a state key: ASCII as is, the 32-byte voter key and the u32 sequence in {hex}."""
    if key.startswith((b"S/k/", b"S/b/")):
        head = key[:4]
        campaign, _, rest = key[4:].partition(b"/")
        voter, tail = rest[:32], rest[32:]
        return (head + campaign + b"/").decode() + "{" + voter.hex() + "}" + tail.decode()
    if key.startswith(b"S/p/"):
        return key[:-4].decode() + "{" + key[-4:].hex() + "}"
    return key.decode()


def genesis_text() -> str:
    """The genesis document as docs/PROTOCOL.md §13.2 shows it (U+2028 escaped so that it stays visible)."""
    return json.dumps(genesis_document(), ensure_ascii=False, indent=1).replace("\u2028", "\\u2028")


if __name__ == "__main__":
    print(genesis_text())
    print(render())
