"""Consensus across validator set changes: the set is an argument per height.

Engine units (quorum, proposer, signing and following follow the set of each height) and named
simulator scenarios (a proposer removed at the switch, partitions and crashes across it, two
switches in a row). The random scenarios of test_simulation.py change the set in about 40% of seeds.
"""

from __future__ import annotations

import pytest

from chain.block import Validator, ValidatorSet
from consensus import Commit, Engine, PeerAhead, Proposal, Vote
from tests.consensus.helpers import (
    CHAIN_ID, KEYS, TIMEOUTS, ScriptedApp, block_hash, block_bytes, feed, precommit, prevote, sent,
)
from consensus import make_proposal, make_vote
from tests.consensus.sim import Crash, Partition, SetSwitch, SimConfig, Simulation

OLD = ValidatorSet(tuple(Validator(f"v{i}", KEYS[i].public_key) for i in range(4)))
NEW = ValidatorSet(tuple(Validator(f"v{i}", KEYS[i].public_key) for i in (0, 1, 2, 4)))   # v3 → v4 at height 3
SWITCH = 3


def sets(height: int) -> ValidatorSet:
    return OLD if height < SWITCH else NEW


def engine_for(key_index: int, start_height: int = 1) -> tuple[Engine, ScriptedApp]:
    app = ScriptedApp()
    engine = Engine(CHAIN_ID, OLD, None, KEYS[key_index].sign, app, TIMEOUTS, start_height=start_height,
                    validator_sets=sets, my_key=KEYS[key_index].public_key)
    return engine, app


def decide(engine: Engine, height: int, members: ValidatorSet, now: int = 0) -> list[object]:
    """Feed a proposal of ``height`` and a quorum of precommits from ``members`` (indices in that set)."""
    index = (height) % members.size
    key = next(k for k in KEYS if k.public_key == members.public_key(index))
    tag = f"h{height}"
    outputs: list[object] = list(engine.receive(
        make_proposal(CHAIN_ID, height, 0, -1, block_hash(tag), block_bytes(tag), index, key.sign), now))
    for i in range(members.quorum):
        signer = next(k for k in KEYS if k.public_key == members.public_key(i))
        outputs += engine.receive(make_vote(CHAIN_ID, "precommit", height, 0, block_hash(tag), i, signer.sign), now)
    return outputs


def test_a_new_validator_follows_until_its_height_then_signs() -> None:
    engine, _ = engine_for(4)
    assert engine.my_index is None
    for height in (1, 2):
        outputs = decide(engine, height, OLD)
        assert any(isinstance(o, Commit) for o in outputs)
        assert not [m for m in sent(outputs) if isinstance(m, Vote)], "signed before it was a validator"
    engine.tick(10)
    assert engine.height == SWITCH and engine.my_index == 3 and engine.validators == NEW
    index = SWITCH % 4                                  # proposer of height 3 round 0 in the new set is v4
    assert NEW.public_key(index) == KEYS[4].public_key
    app = engine._app
    assert isinstance(app, ScriptedApp)
    app.pending = True
    outputs = engine.tick(100)
    outputs += engine.tick(200)
    proposals = [m for m in sent(outputs) if isinstance(m, Proposal)]
    assert proposals and proposals[0].proposer_index == 3 and proposals[0].height == SWITCH


def test_a_removed_validator_stops_signing_at_the_switch() -> None:
    engine, _ = engine_for(3)
    assert engine.my_index == 3
    for height in (1, 2):
        decide(engine, height, OLD)
    engine.tick(10)
    assert engine.height == SWITCH and engine.my_index is None
    outputs = engine.receive(make_proposal(CHAIN_ID, SWITCH, 0, -1, block_hash("x"), block_bytes("x"), 3,
                                           KEYS[4].sign), 20)
    assert not sent(outputs, Vote)
    outputs = decide(engine, SWITCH, NEW, 30)           # it still follows and commits
    assert any(isinstance(o, Commit) for o in outputs)


def test_quorum_and_signers_follow_the_set_of_the_height() -> None:
    engine, _ = engine_for(0, start_height=SWITCH)
    outputs = engine.receive(make_proposal(CHAIN_ID, SWITCH, 0, -1, block_hash("b"), block_bytes("b"), 3,
                                           KEYS[4].sign), 0)
    assert [m for m in sent(outputs, Vote) if m.step == "prevote"]
    # validator index 3 is v4 now: v3's signature under that index is not a validator's signature
    outputs = engine.receive(make_vote(CHAIN_ID, "prevote", SWITCH, 0, block_hash("b"), 3, KEYS[3].sign), 1)
    assert engine.rejected.get("bad_signature") == 1
    feed(engine, [prevote(SWITCH, 0, "b", 1), make_vote(CHAIN_ID, "prevote", SWITCH, 0, block_hash("b"), 3,
                                                        KEYS[4].sign)], 2)
    assert engine.locked_round == 0


def test_messages_for_the_next_height_are_checked_against_its_set() -> None:
    engine, _ = engine_for(0, start_height=SWITCH - 1)
    # height 3 (next): index 3 is v4; buffered, replayed at height 3
    outputs = feed(engine, [make_vote(CHAIN_ID, "prevote", SWITCH, 0, None, 3, KEYS[4].sign)])
    assert engine.rejected == {}
    outputs = feed(engine, [make_vote(CHAIN_ID, "precommit", SWITCH, 0, None, 3, KEYS[3].sign)])
    assert engine.rejected.get("bad_signature") == 1
    assert not [o for o in outputs if isinstance(o, Commit)]


def test_validators_ahead_after_a_switch_are_noticed() -> None:
    """A node still at height 1 sees the new set's validators far ahead; indices of the new set may
    not verify against the set it knows, but the authenticated links that brought them count."""
    engine, _ = engine_for(0)
    outputs = []
    for i, key_index in enumerate((1, 2)):
        # messages of height 9 signed in the new set; delivered over the links of v1 and v2 (indices 1, 2)
        outputs += engine.receive(make_vote(CHAIN_ID, "prevote", 9, 0, None, i + 1, KEYS[key_index].sign), 0,
                                  sender=i + 1)
    outputs += engine.tick(0)
    assert [o for o in outputs if isinstance(o, PeerAhead)]
    assert engine.rejected == {}, "nothing is blamed for a set this node cannot know yet"


def test_an_index_outside_the_start_set_is_refused() -> None:
    from consensus import LocalProtocolError
    with pytest.raises(LocalProtocolError):
        Engine(CHAIN_ID, OLD, 4, KEYS[4].sign, ScriptedApp(), TIMEOUTS)
    with pytest.raises(LocalProtocolError):
        Engine(CHAIN_ID, OLD, 1, KEYS[1].sign, ScriptedApp(), TIMEOUTS, my_key=KEYS[2].public_key)


# --- named simulator scenarios ------------------------------------------------------------------------


def simulate(config: SimConfig) -> Simulation:
    simulation = Simulation(config)
    result = simulation.run()
    assert result.violations == [], result.violations
    return simulation


def signers_at(simulation: Simulation, node: int, height: int) -> set[bytes]:
    _, _, certificate = simulation.nodes[node].chain[height - 1]
    validators = simulation.set_at(height)
    return {validators.public_key(index) for index, _ in certificate.signatures}


@pytest.mark.parametrize("n", [4, 7])
def test_the_proposer_of_the_switch_height_is_removed_at_the_switch(n: int) -> None:
    removed = 5 % n                                      # proposer of height 5, round 0 in the old set
    config = SimConfig(n=n, seed=41, spares=1, set_changes=(SetSwitch(5, removed, n),), target_height=9)
    simulation = simulate(config)
    new_key = simulation.nodes[n].key.public_key
    old_key = simulation.nodes[removed].key.public_key
    assert old_key in signers_at(simulation, 0, 4) or len(signers_at(simulation, 0, 4)) < n
    for height in range(5, 10):
        signers = signers_at(simulation, 0, height)
        assert old_key not in signers
    assert any(new_key in signers_at(simulation, 0, h) for h in range(5, 10))
    assert len(simulation.nodes[removed].chain) >= 9 and len(simulation.nodes[n].chain) >= 9


def test_a_partition_across_the_switch_heals() -> None:
    partition = Partition(300, 2500, (frozenset({0, 4}), frozenset({1, 2, 3})))
    simulate(SimConfig(n=4, seed=5, spares=1, set_changes=(SetSwitch(4, 3, 4),), partitions=(partition,),
                       target_height=10, stabilise_ms=2600))


def test_the_new_validator_crashes_and_wipes_across_the_switch() -> None:
    simulate(SimConfig(n=4, seed=6, spares=1, set_changes=(SetSwitch(3, 1, 4),),
                       crashes=(Crash(4, 600, 700, wipe=True),), target_height=10, stabilise_ms=1400))


def test_two_switches_in_a_row_with_a_byzantine_validator() -> None:
    switches = (SetSwitch(3, 0, 4), SetSwitch(4, 1, 5))
    simulation = simulate(SimConfig(n=4, seed=8, spares=2, byzantine={2: "double_vote"}, set_changes=switches,
                                    target_height=9))
    assert simulation.set_at(4).size == 4
    assert {v.name for v in simulation.set_at(4).validators} == {"node2", "node3", "node4", "node5"}


def test_a_wiped_old_validator_catches_up_across_a_switch_it_never_saw() -> None:
    simulate(SimConfig(n=4, seed=12, spares=1, set_changes=(SetSwitch(2, 3, 4),),
                       crashes=(Crash(1, 200, 1500, wipe=True),), target_height=10, stabilise_ms=1800))
