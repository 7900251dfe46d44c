"""Shared builders for ledger tests: a tiny chain with validators, a committee, district operators,
a gateway and one campaign, plus helpers to sign, vote and commit blocks.

Keys are derived from labels (``seeded_key("voter-1")``), so every run builds the same chain.
Other packages' tests may import this module.

Default schedule (milliseconds after ``T0``, the genesis time):
  submission [T0, T0 + 10_000)  →  voting [T0 + 10_000, T0 + 100_000)
Default campaign ``c1``: districts ``d1`` and ``d2``; approval ballots 1..2; top-n rule, district
scope, 2 winners per district; ``ballots_per_voter="district"``; gateway ``gw``; cap 1000 voters.
Genesis initiatives (committee-approved): ``a1``, ``a2``, ``a3`` in d1 and ``b1``, ``b2`` in d2.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chain.block import (
    STEP_PRECOMMIT, Block, CommitCertificate, Validator, ValidatorSet, make_certificate, vote_signing_bytes,
)
from chain.crypto import SigningKey
from chain.ledger import BuiltBlock, Ledger
from chain.params import ChainParams
from chain.storage import KeyValueStore, MemoryStore
from chain.tx import (
    BallotSpec, CampaignClose, CampaignCreate, District, InitiativeReview, InitiativeSubmit, ProgressReport,
    RuleSpec, Tx, Wire, make_registration, make_vote, sign_tx,
)

CHAIN_ID = "veche-test"
T0 = 1_700_000_000_000
SUBMISSION_END = T0 + 10_000
VOTING_START = T0 + 10_000
VOTING_END = T0 + 100_000
GENESIS_HASH = hashlib.sha256(b"veche-test-genesis").digest()


def seeded_key(label: str) -> SigningKey:
    """A deterministic Ed25519 key for ``label``."""
    return SigningKey(hashlib.sha256(b"veche-test-key/" + label.encode()).digest())


def campaign_spec(gateway: bytes, **overrides: Any) -> CampaignCreate:
    """The default campaign ``c1``; any field can be overridden by name."""
    values: dict[str, Any] = dict(
        campaign_id="c1", title="Budget 2027", track="adult",
        districts=(District("d1", "District one", 1_000_000), District("d2", "District two", 1_000_000)),
        ballot=BallotSpec("approval", 1, 2), rule=RuleSpec("top-n", "district", 2, 0, 0),
        min_cost=1, max_cost=10_000_000, categories=(),
        submission_start=T0, submission_end=SUBMISSION_END, voting_start=VOTING_START, voting_end=VOTING_END,
        gateway=gateway, registration_cap=1000, ballots_per_voter="district",
    )
    values.update(overrides)
    spec = CampaignCreate(**values)
    spec.validate()
    return spec


def initiative_spec(initiative_id: str, district_id: str, *, campaign_id: str = "c1", cost: int = 100_000,
                    category: str = "parks", title: str | None = None) -> InitiativeSubmit:
    return InitiativeSubmit(campaign_id, initiative_id, district_id, title or f"Initiative {initiative_id}",
                            category, cost, "summary", b"")


DEFAULT_INITIATIVES: tuple[tuple[str, str, int], ...] = (
    ("a1", "d1", 100_000), ("a2", "d1", 200_000), ("a3", "d1", 300_000),
    ("b1", "d2", 100_000), ("b2", "d2", 250_000),
)


@dataclass
class TestChain:
    """A ledger plus every key that can sign on it."""

    params: ChainParams
    ledger: Ledger
    validator_keys: list[SigningKey]
    committee_keys: list[SigningKey]
    operator_keys: dict[str, SigningKey]
    gateway_key: SigningKey
    other_gateway_key: SigningKey
    last_commit: CommitCertificate | None = None
    voter_count: int = 0
    blocks: list[tuple[Block, CommitCertificate]] = field(default_factory=list)
    # validator keys added later (validators.update): ``certify`` signs with whichever set is in force
    extra_validator_keys: list[SigningKey] = field(default_factory=list)

    __test__ = False  # not a pytest test class

    @property
    def committee(self) -> list[SigningKey]:
        """Exactly ``threshold`` committee keys: what a committee transaction carries."""
        return self.committee_keys[: self.params.committee_threshold]

    @property
    def now(self) -> int:
        return self.ledger.last_time_ms

    def sign(self, kind: str, body: Wire, keys: Sequence[SigningKey] | None = None) -> Tx:
        return sign_tx(kind, CHAIN_ID, body, list(self.committee if keys is None else keys))

    def new_voters(self, count: int) -> list[SigningKey]:
        voters = [seeded_key(f"voter-{self.voter_count + i}") for i in range(count)]
        self.voter_count += count
        return voters

    def register(self, voters: Sequence[SigningKey], campaign_id: str = "c1") -> Tx:
        return make_registration(CHAIN_ID, self.gateway_key, campaign_id, [v.public_key for v in voters])

    def vote(self, voter: SigningKey, district_id: str, choices: Sequence[str], campaign_id: str = "c1") -> Tx:
        return make_vote(CHAIN_ID, voter, campaign_id, district_id, choices)

    def certify(self, block: Block, round_: int | None = None, signers: Sequence[int] | None = None) -> CommitCertificate:
        """A commit certificate signed by ``signers`` (default: every validator in force at the block's height)."""
        round_ = block.header.round if round_ is None else round_
        validators = self.ledger.validators_at(block.height)
        keys = {key.public_key: key for key in self.validator_keys + self.extra_validator_keys}
        indices = range(validators.size) if signers is None else signers
        message = vote_signing_bytes(CHAIN_ID, STEP_PRECOMMIT, block.height, round_, block.hash())
        return make_certificate(block.height, round_, block.hash(),
                                [(i, keys[validators.public_key(i)].sign(message)) for i in indices])

    def build(self, txs: Sequence[Tx], time_ms: int | None = None, round_: int = 0) -> BuiltBlock:
        when = self.now + 1000 if time_ms is None else time_ms
        return self.ledger.build_block(txs, time_ms=when, round_=round_, last_commit=self.last_commit)

    def commit(self, built: BuiltBlock) -> CommitCertificate:
        certificate = self.certify(built.block)
        self.ledger.commit(built.block, certificate, built.execution)
        self.last_commit = certificate
        self.blocks.append((built.block, certificate))
        return certificate

    def commit_block(self, txs: Sequence[Tx], time_ms: int | None = None, *, allow_rejects: bool = False) -> BuiltBlock:
        """Build a block from ``txs`` and commit it; by default every tx must apply."""
        built = self.build(txs, time_ms)
        if built.rejected and not allow_rejects:
            raise AssertionError(f"transactions rejected: {[(e.code, e.message) for _, e in built.rejected]}")
        self.commit(built)
        return built

    def open_voting(self) -> None:
        """Commit an empty block inside the voting window (if the chain is still before it)."""
        if self.now < VOTING_START:
            self.commit_block([], VOTING_START)


def make_params(*, validators: int = 1, committee: int = 1, threshold: int = 1,
                initial: Sequence[tuple[str, Any]] | None = None, with_campaign: bool = True,
                campaign: CampaignCreate | None = None,
                initiatives: Sequence[tuple[str, str, int]] = DEFAULT_INITIATIVES,
                chain_id: str = CHAIN_ID, genesis_hash: bytes = GENESIS_HASH) -> tuple[ChainParams, dict[str, Any]]:
    validator_keys = [seeded_key(f"validator-{i}") for i in range(validators)]
    committee_keys = sorted((seeded_key(f"committee-{i}") for i in range(committee)), key=lambda k: k.public_key)
    operator_keys = {d: seeded_key(f"operator-{d}") for d in ("d1", "d2", "d3")}
    gateway_key, other_gateway_key = seeded_key("gateway"), seeded_key("gateway-2")
    bodies: list[tuple[str, Any]] = []
    if initial is not None:
        bodies.extend(initial)
    elif with_campaign:
        spec = campaign if campaign is not None else campaign_spec(gateway_key.public_key)
        bodies.append(("campaign.create", spec))
        for initiative_id, district_id, cost in initiatives:
            bodies.append(("initiative.submit", initiative_spec(initiative_id, district_id, cost=cost,
                                                                campaign_id=spec.campaign_id)))
    params = ChainParams(
        chain_id=chain_id, genesis_time_ms=T0,
        validators=ValidatorSet(tuple(Validator(f"v{i}", k.public_key) for i, k in enumerate(validator_keys))),
        committee_keys=frozenset(k.public_key for k in committee_keys), committee_threshold=threshold,
        district_operators=tuple((d, k.public_key) for d, k in operator_keys.items()),
        gateways=(("gw", gateway_key.public_key), ("gw2", other_gateway_key.public_key)),
        genesis_hash=genesis_hash, initial_bodies=tuple(bodies),
    )
    keys = dict(validators=validator_keys, committee=committee_keys, operators=operator_keys,
                gateway=gateway_key, other_gateway=other_gateway_key)
    return params, keys


def new_chain(store: KeyValueStore | None = None, **options: Any) -> TestChain:
    """A ledger at height 0 holding the default campaign (see ``make_params`` for options)."""
    params, keys = make_params(**options)
    ledger = Ledger(store if store is not None else MemoryStore(), params)
    chain = TestChain(params, ledger, keys["validators"], keys["committee"], keys["operators"], keys["gateway"],
                      keys["other_gateway"])
    if ledger.height:  # a store that already holds blocks: carry on from its last one
        chain.last_commit = ledger.certificate(ledger.height)
    return chain


def reopen(chain: TestChain, store: KeyValueStore) -> TestChain:
    """The same chain on a new ``Ledger`` over ``store`` (after a restart)."""
    ledger = Ledger(store, chain.params)
    return replace(chain, ledger=ledger, last_commit=ledger.certificate(ledger.height) if ledger.height else None)


# --- deterministic scenario (used by test_determinism.py in a subprocess) ----------------------


def scenario_summary(voters: int = 120) -> dict[str, Any]:
    """Apply a fixed scenario with many ids (hash-order sensitive if anything iterated a set or
    dict by hash) and return the final app hash, result hashes and tallies."""
    gateway = seeded_key("gateway").public_key
    districts = tuple(District(f"district-{n}", f"District {n}", 500_000 + n) for n in (7, 3, 11, 1, 5))
    specs = [
        campaign_spec(gateway, campaign_id="zeta", districts=districts, ballot=BallotSpec("approval", 1, 3),
                      rule=RuleSpec("greedy", "district", 0, 1, 0)),
        campaign_spec(gateway, campaign_id="alpha", districts=districts, ballot=BallotSpec("choose-1", 1, 1),
                      rule=RuleSpec("top-n", "campaign", 3, 0, 0), ballots_per_voter="campaign",
                      voting_end=VOTING_END + 5_000),
        campaign_spec(gateway, campaign_id="mu", districts=districts, ballot=BallotSpec("approval", 1, 2),
                      rule=RuleSpec("greedy-no-skip", "campaign", 0, 0, 1_000_000)),
    ]
    initial: list[tuple[str, Any]] = [("campaign.create", spec) for spec in specs]
    ids: dict[str, dict[str, list[str]]] = {}
    for spec in specs:
        ids[spec.campaign_id] = {}
        for d_index, district in enumerate(districts):
            names = [f"{district.district_id}-init-{x}" for x in ("q", "b", "x", "a", "m")]
            ids[spec.campaign_id][district.district_id] = names
            for k, name in enumerate(names):
                initial.append(("initiative.submit", initiative_spec(
                    name, district.district_id, campaign_id=spec.campaign_id, cost=90_000 + 10_000 * ((k + d_index) % 4))))
    chain = new_chain(initial=initial)
    chain.open_voting()
    voter_keys = chain.new_voters(voters)
    txs: list[Tx] = [chain.register(voter_keys, campaign_id=spec.campaign_id) for spec in specs]
    chain.commit_block(txs)
    for start in range(0, voters, 40):
        batch: list[Tx] = []
        for offset, voter in enumerate(voter_keys[start:start + 40]):
            n = start + offset
            for spec in specs:
                district_id = districts[(n * 7 + len(spec.campaign_id)) % len(districts)].district_id
                names = ids[spec.campaign_id][district_id]
                count = 1 if spec.ballot.max_choices == 1 else 1 + n % spec.ballot.max_choices
                choices = sorted({names[(n * (j + 3)) % len(names)] for j in range(count)})
                choices = choices[: spec.ballot.max_choices]
                batch.append(chain.vote(voter, district_id, choices, campaign_id=spec.campaign_id))
        chain.commit_block(batch)
    chain.commit_block([], VOTING_END + 10_000)  # closes every campaign automatically
    state = chain.ledger.state
    return {
        "height": chain.ledger.height,
        "app_hash": chain.ledger.app_hash.hex(),
        "results": {cid: [list(w), h.hex()] for cid, (w, h) in sorted(state.results.items())},
        "tallies": {f"{c}/{i}": n for (c, i), n in sorted(state.tallies.items())},
    }


def main(argv: Sequence[str]) -> int:
    if argv[1:] == ["scenario"]:
        print(json.dumps(scenario_summary(), sort_keys=True))
        return 0
    print("usage: python -m tests.chain.helpers scenario", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
