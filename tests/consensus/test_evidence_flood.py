"""Evidence amplification: a Byzantine validator signing many values for a slot, or many slots, costs
honest validators at most one recorded (stored, relayed) proof per slot and a bounded number per
validator; the rest is ignored before any signature is checked, and counted by reason."""

from __future__ import annotations

from chain.crypto import verify
from consensus import Engine, Evidence, EvidenceFound, Output, RejectedMessage
from consensus.evidence import (
    EVIDENCE_DUPLICATE, EVIDENCE_HEIGHT_WINDOW, EVIDENCE_OUTSIDE_WINDOW, EVIDENCE_VALIDATOR_CAP,
    KEEP_EVIDENCE_PER_VALIDATOR,
)
from consensus.messages import make_evidence
from tests.consensus.helpers import CHAIN_ID, KEYS, TIMEOUTS, ScriptedApp, prevote, validator_set

TAGS = [f"T{i}" for i in range(12)]


class CountingEngine:
    """A validator engine (index 3 of 4) whose signature checks are counted."""

    def __init__(self) -> None:
        self.checks = 0
        app = ScriptedApp()
        app.pending = True
        self.engine = Engine(CHAIN_ID, validator_set(4), 3, KEYS[3].sign, app, TIMEOUTS, verifier=self._verify)
        self.engine.start(0)

    def _verify(self, public_key: bytes, signature: bytes, message: bytes) -> None:
        self.checks += 1
        verify(public_key, signature, message)


def found(outputs: list[Output]) -> list[Evidence]:
    return [o.evidence for o in outputs if isinstance(o, EvidenceFound)]


def rejected(outputs: list[Output]) -> list[Output]:
    return [o for o in outputs if isinstance(o, RejectedMessage)]


def test_many_values_for_one_slot_give_one_proof_and_cost_no_further_signature_checks() -> None:
    node = CountingEngine()
    first = make_evidence(prevote(1, 0, TAGS[0], 0), prevote(1, 0, TAGS[1], 0))
    assert found(node.engine.receive(first, 0, sender=1)) == [first]
    checks = node.checks
    for index, tag in enumerate(TAGS[2:]):  # other pairs for the same slot, relayed by honest peers
        pair = make_evidence(prevote(1, 0, TAGS[0], 0), prevote(1, 0, tag, 0))
        outputs = node.engine.receive(pair, 1 + index, sender=1 + index % 2)
        assert found(outputs) == [] and rejected(outputs) == []
    assert node.checks == checks  # not one signature checked
    assert node.engine.evidence == [first]
    assert node.engine.evidence_ignored == {EVIDENCE_DUPLICATE: len(TAGS) - 2}


def test_a_third_value_sent_directly_is_not_verified_once_its_slot_is_recorded() -> None:
    node = CountingEngine()
    node.engine.receive(prevote(1, 0, TAGS[0], 0), 0, sender=0)
    assert found(node.engine.receive(prevote(1, 0, TAGS[1], 0), 1, sender=0))  # the equivocation: evidence
    checks = node.checks
    for index, tag in enumerate(TAGS[2:]):
        outputs = node.engine.receive(prevote(1, 0, tag, 0), 2 + index, sender=0)
        assert found(outputs) == [] and rejected(outputs) == []
    assert node.checks == checks
    assert len(node.engine.evidence) == 1


def test_a_flood_over_many_rounds_is_capped_per_validator_and_never_recorded_twice() -> None:
    node = CountingEngine()
    other = make_evidence(prevote(1, 0, "A", 1), prevote(1, 0, "B", 1))
    assert found(node.engine.receive(other, 0, sender=2)) == [other]
    flood = [make_evidence(prevote(1, round_, "A", 0), prevote(1, round_, "B", 0)) for round_ in range(4200)]
    recorded: list[Evidence] = []
    for index, item in enumerate(flood):
        outputs = node.engine.receive(item, 1 + index, sender=0)
        assert rejected(outputs) == []
        recorded += found(outputs)
    assert recorded == flood[:KEEP_EVIDENCE_PER_VALIDATOR]
    assert node.checks == 2 * (KEEP_EVIDENCE_PER_VALIDATOR + 1)
    # nothing was evicted: the first items, and the other validator's, are still known (not recorded again)
    again = node.engine.receive(flood[0], 10_000, sender=1) + node.engine.receive(other, 10_001, sender=1)
    assert found(again) == []
    # evidence against another validator is still recorded
    third = make_evidence(prevote(1, 0, "A", 2), prevote(1, 0, "B", 2))
    assert found(node.engine.receive(third, 10_002, sender=1)) == [third]
    assert node.engine.evidence_ignored[EVIDENCE_VALIDATOR_CAP] == len(flood) - KEEP_EVIDENCE_PER_VALIDATOR
    assert node.engine.evidence_ignored[EVIDENCE_DUPLICATE] == 2


def test_slots_leave_the_window_with_the_height() -> None:
    node = CountingEngine()
    for round_ in range(KEEP_EVIDENCE_PER_VALIDATOR):
        node.engine.receive(make_evidence(prevote(1, round_, "A", 0), prevote(1, round_, "B", 0)), round_, sender=1)
    late = make_evidence(prevote(1, 999, "A", 0), prevote(1, 999, "B", 0))
    assert found(node.engine.receive(late, 100, sender=1)) == []  # at the cap
    height = 2 + EVIDENCE_HEIGHT_WINDOW
    node.engine.skip_to(height, None)
    checks = node.checks
    assert found(node.engine.receive(late, 101, sender=1)) == []  # now too old: ignored unverified
    assert node.checks == checks and node.engine.evidence_ignored[EVIDENCE_OUTSIDE_WINDOW] == 1
    fresh = make_evidence(prevote(height, 0, "A", 0), prevote(height, 0, "B", 0))
    assert found(node.engine.receive(fresh, 102, sender=1)) == [fresh]  # the old slots expired
