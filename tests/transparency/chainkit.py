"""Build real chains directly (no network): genesis, keys, blocks with valid commit certificates.

Used by the transparency tests, the in-process fake node and ``scripts/bench_verify.py``. Every
block goes through ``Ledger.build_block`` and ``Ledger.commit`` exactly as a validator's would,
and its certificate carries precommit signatures of a quorum of the genesis validators.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.block import Block, CommitCertificate, ValidatorSet, make_certificate, vote_signing_bytes
from chain.crypto import SigningKey, read_key_file, write_key_file
from chain.ledger import Ledger
from chain.storage import KeyValueStore, LevelStore
from chain.tx import (
    BallotSpec, CampaignClose, CampaignCreate, District, InitiativeSubmit, RuleSpec, Tx,
    make_registration, make_vote, sign_tx,
)
from genesis.model import Genesis, load_genesis, parse_genesis

GENESIS_TIME_MS = 1_764_000_000_000


@dataclass
class Keys:
    validators: list[SigningKey]
    committee: SigningKey
    gateway: SigningKey
    operators: dict[str, SigningKey] = field(default_factory=dict)


def read_testnet_keys(directory: Path, validator_names: Sequence[str]) -> Keys:
    """The keys of a testnet written by ``veche testnet init DIR``: validators, committee-0, the gateway."""
    return Keys([read_key_file(directory / name / "node-key.json") for name in validator_names],
                read_key_file(directory / "keys" / "committee-0.json"),
                read_key_file(directory / "gateway" / "gateway-key.json"))


def make_keys(validators: int = 4, districts: Sequence[str] = ("north", "south")) -> Keys:
    return Keys([SigningKey.generate() for _ in range(validators)], SigningKey.generate(),
                SigningKey.generate(), {d: SigningKey.generate() for d in districts})


def genesis_document(keys: Keys, *, chain_id: str = "veche-test", genesis_time_ms: int = GENESIS_TIME_MS,
                     base_port: int = 26600) -> dict[str, Any]:
    return {
        "chain_id": chain_id,
        "genesis_time_ms": genesis_time_ms,
        "validators": [{"name": f"validator-{i}", "operator": "committee", "public_key": k.public_key.hex(),
                        "url": f"http://127.0.0.1:{base_port + i}"} for i, k in enumerate(keys.validators)],
        "committee": {"threshold": 1, "keys": [{"name": "committee-0", "public_key": keys.committee.public_key.hex()}]},
        "district_operators": [{"district_id": d, "name": d, "public_key": k.public_key.hex()}
                               for d, k in keys.operators.items()],
        "gateways": [{"name": "gateway", "public_key": keys.gateway.public_key.hex(),
                      "url": f"http://127.0.0.1:{base_port + len(keys.validators) + 1}"}],
    }


def certify(genesis: Genesis, keys: Keys, block: Block, signers: Sequence[int] | None = None,
            validators: ValidatorSet | None = None) -> CommitCertificate:
    """A commit certificate for ``block`` signed by ``signers`` (default: the first quorum) of ``validators``
    (default: the genesis set; after a validators.update, the set in force at the block's height — every
    key of it must be among ``keys.validators``)."""
    validators = genesis.params.validators if validators is None else validators
    by_key = {key.public_key: key for key in keys.validators}
    chosen = list(range(validators.quorum)) if signers is None else list(signers)
    message = vote_signing_bytes(genesis.chain_id, "precommit", block.height, block.header.round, block.hash())
    return make_certificate(block.height, block.header.round, block.hash(),
                            [(i, by_key[validators.public_key(i)].sign(message)) for i in chosen])


class ChainBuilder:
    """Drives a ``Ledger`` as a (single, honest) proposer plus a quorum of signers would."""

    def __init__(self, store: KeyValueStore, genesis: Genesis, keys: Keys) -> None:
        self.genesis = genesis
        self.keys = keys
        self.ledger = Ledger(store, genesis.params)
        self.last_certificate: CommitCertificate | None = None
        if self.ledger.height > 0:
            self.last_certificate = self.ledger.certificate(self.ledger.height)

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    def add_block(self, txs: Sequence[Tx], *, time_ms: int | None = None, strict: bool = True,
                  checked: Callable[[bytes], bool] | None = None) -> Block:
        when = time_ms if time_ms is not None else self.ledger.last_time_ms + 1000
        built = self.ledger.build_block(list(txs), time_ms=when, round_=0, last_commit=self.last_certificate,
                                        checked=checked or (lambda tx_hash: False))
        if strict and built.rejected:
            tx, error = built.rejected[0]
            raise AssertionError(f"{len(built.rejected)} txs rejected, first {tx.kind}: {error}")
        certificate = certify(self.genesis, self.keys, built.block,
                              validators=self.ledger.validators_at(built.block.height))
        self.ledger.commit(built.block, certificate, built.execution)
        self.last_certificate = certificate
        return built.block

    # --- transaction helpers -------------------------------------------------------------------

    def committee_tx(self, kind: str, body: Any) -> Tx:
        return sign_tx(kind, self.chain_id, body, [self.keys.committee])

    def campaign(self, campaign_id: str, *, districts: Sequence[tuple[str, int]] = (("north", 10_000_00), ("south", 10_000_00)),
                 ballot: BallotSpec = BallotSpec("choose-1", 1, 1),
                 rule: RuleSpec = RuleSpec("greedy", "district", 0, 0, 0),
                 voting_start: int | None = None, voting_end: int | None = None,
                 ballots_per_voter: str = "district") -> Tx:
        now = self.ledger.last_time_ms
        start = voting_start if voting_start is not None else now + 10_000
        end = voting_end if voting_end is not None else start + 10**9
        body = CampaignCreate(
            campaign_id, f"Campaign {campaign_id}", "adult",
            tuple(District(d, d.title(), budget) for d, budget in districts), ballot, rule,
            1, 10**12, (), now, start, start, end, self.keys.gateway.public_key, 10**7, ballots_per_voter)
        return self.committee_tx("campaign.create", body)

    def initiative(self, campaign_id: str, initiative_id: str, district_id: str, cost: int) -> Tx:
        body = InitiativeSubmit(campaign_id, initiative_id, district_id, f"Initiative {initiative_id}",
                                "parks", cost, "", b"")
        return self.committee_tx("initiative.submit", body)

    def close(self, campaign_id: str, reason: str = "done") -> Tx:
        return self.committee_tx("campaign.close", CampaignClose(campaign_id, reason))

    def registration(self, campaign_id: str, voter_keys: Sequence[SigningKey]) -> Tx:
        return self.registration_of(campaign_id, [k.public_key for k in voter_keys])

    def registration_of(self, campaign_id: str, public_keys: Sequence[bytes]) -> Tx:
        return make_registration(self.chain_id, self.keys.gateway, campaign_id, public_keys)

    def vote(self, voter: SigningKey, campaign_id: str, district_id: str, choices: Sequence[str]) -> Tx:
        return make_vote(self.chain_id, voter, campaign_id, district_id, choices)


@contextmanager
def testnet_chain_builder(directory: Path, validator_names: Sequence[str], data_dir: Path) -> Iterator[ChainBuilder]:
    """A ``ChainBuilder`` over LevelDB at ``data_dir`` with the genesis and keys of the testnet at ``directory``.

    The store is closed when the block ends (the benchmarks build a node's chain offline this way).
    """
    genesis = load_genesis(directory / "genesis.json")
    store = LevelStore(data_dir)
    try:
        yield ChainBuilder(store, genesis, read_testnet_keys(directory, validator_names))
    finally:
        store.close()


def build_genesis(keys: Keys, **kwargs: Any) -> Genesis:
    return parse_genesis(genesis_document(keys, **kwargs))


def write_genesis_file(path: Path, keys: Keys, **kwargs: Any) -> Genesis:
    document = genesis_document(keys, **kwargs)
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return parse_genesis(document)


def write_key(path: Path, key: SigningKey) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_key_file(path, key, overwrite=True)
    return path
