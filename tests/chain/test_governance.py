"""Governance in the state machine: validator set changes, key rotation, protocol upgrades.

Every rule has its valid/invalid pair; a rejected change leaves the state (and the set history)
exactly as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chain.block import Validator, ValidatorSet
from chain.crypto import SigningKey
from chain.errors import CertificateError, TxRejected, UpgradeRequired
from chain.governance import (
    MIN_VALIDATORS, SET_CHANGE_DELAY, ProtocolSchedule, Roster, SetChange, SetHistory, UpgradeRecord,
    check_power_moved, effective_height, power_moved,
)
from chain.ledger import Ledger
from chain.storage import MemoryStore
from chain.tx import KeysRotate, ProtocolUpgrade, Tx, ValidatorEntry, ValidatorsUpdate
from tests.chain.helpers import CHAIN_ID, VOTING_START, TestChain, initiative_spec, new_chain, reopen, seeded_key


def four() -> TestChain:
    chain = new_chain(validators=4, committee=3, threshold=2)
    chain.commit_block([])
    return chain


def entry(name: str, key: SigningKey, url: str | None = None) -> ValidatorEntry:
    return ValidatorEntry(name, "committee", key.public_key, url or f"https://{name}.example.org")


def update(chain: TestChain, add: Sequence[ValidatorEntry] = (), remove: Sequence[str] = (),
           keys: Sequence[SigningKey] | None = None) -> Tx:
    return chain.sign("validators.update", ValidatorsUpdate("server lost", tuple(add), tuple(remove)), keys)


def rejected_code(chain: TestChain, tx: Tx) -> str:
    built = chain.build([tx])
    assert not built.block.txs, "the transaction applied"
    assert len(built.rejected) == 1
    return built.rejected[0][1].code


def names(validators: ValidatorSet) -> list[str]:
    return [v.name for v in validators.validators]


# --- validators.update ------------------------------------------------------------------------------


def test_a_validator_replaced_is_in_force_two_blocks_after_the_commit() -> None:
    chain = four()
    new_key = seeded_key("validator-4")
    chain.extra_validator_keys.append(new_key)
    committed_at = chain.ledger.height + 1
    chain.commit_block([update(chain, [entry("v4", new_key)], ["v3"])])
    assert chain.ledger.height == committed_at
    change = chain.ledger.state.history.latest()
    assert (change.from_height, change.committed_height) == (committed_at + SET_CHANGE_DELAY, committed_at)
    assert change.txs[0][0] == "validators.update"
    assert names(chain.ledger.validators_at(committed_at)) == ["v0", "v1", "v2", "v3"]
    assert names(chain.ledger.validators_at(committed_at + 1)) == ["v0", "v1", "v2", "v3"]
    assert names(chain.ledger.validators_at(committed_at + 2)) == ["v0", "v1", "v2", "v4"]
    chain.commit_block([])                       # committed_at + 1: still the old set signs
    assert chain.ledger.validators_at(chain.ledger.height).public_key(3) == chain.validator_keys[3].public_key
    built = chain.build([])                      # committed_at + 2: the new set signs and proposes
    assert built.block.header.proposer == (committed_at + 2) % 4
    old_set = ValidatorSet(tuple(Validator(f"v{i}", k.public_key) for i, k in enumerate(chain.validator_keys)))
    from chain.block import STEP_PRECOMMIT, make_certificate, vote_signing_bytes
    message = vote_signing_bytes(CHAIN_ID, STEP_PRECOMMIT, built.block.height, 0, built.block.hash())
    stale = make_certificate(built.block.height, 0, built.block.hash(),
                             [(i, k.sign(message)) for i, k in enumerate(chain.validator_keys)])
    with pytest.raises(CertificateError):        # validator-3's signature no longer counts at index 3
        chain.ledger.commit(built.block, stale, built.execution)
    assert old_set.size == 4
    chain.commit(built)                           # certified by v0, v1, v2 and v4
    assert chain.ledger.height == committed_at + 2


def test_the_new_set_survives_a_restart() -> None:
    store = MemoryStore()
    chain = new_chain(store, validators=4, committee=3, threshold=2)
    chain.commit_block([])
    new_key = seeded_key("validator-4")
    chain.extra_validator_keys.append(new_key)
    chain.commit_block([update(chain, [entry("v4", new_key)], ["v3"])])
    again = reopen(chain, store)
    assert names(again.ledger.validators_at(again.ledger.height + 2)) == names(chain.ledger.validators_at(4)) == \
        ["v0", "v1", "v2", "v4"]
    assert again.ledger.state.history.latest() == chain.ledger.state.history.latest()
    assert again.ledger.app_hash == chain.ledger.app_hash


@pytest.mark.parametrize("signers, allowed", [((0, 1), True), ((0,), False), ((0, 1, 2), False)])
def test_validators_update_is_signed_by_exactly_k_committee_keys(signers: tuple[int, ...], allowed: bool) -> None:
    chain = four()
    before = chain.ledger.app_hash
    tx = update(chain, [entry("v4", seeded_key("validator-4"))], ["v3"],
                keys=[chain.committee_keys[i] for i in signers])
    if allowed:
        chain.commit_block([tx])
        assert len(chain.ledger.state.history) == 2
    else:
        assert rejected_code(chain, tx) == "permission_denied"
        assert len(chain.ledger.state.history) == 1 and chain.ledger.app_hash == before


def test_an_outsider_key_cannot_change_the_set() -> None:
    chain = four()
    tx = update(chain, [entry("v4", seeded_key("validator-4"))], ["v3"],
                keys=[chain.committee_keys[0], seeded_key("outsider")])
    assert rejected_code(chain, tx) == "permission_denied"


@pytest.mark.parametrize("add, remove, code", [
    ((), ("v2", "v3"), "too_few_validators"),
    ((), ("v3",), "too_few_validators"),
    (("a", "b"), ("v2", "v3"), "too_much_power"),     # half of the set replaced at once
    (("a", "b", "c"), (), "too_much_power"),          # 3 of 7 would be new
    ((), ("v9",), "unknown_validator"),
    (("v1",), (), "duplicate_name"),
])
def test_rejected_set_changes_change_nothing(add: tuple[str, ...], remove: tuple[str, ...], code: str) -> None:
    chain = four()
    before = (chain.ledger.app_hash, len(chain.ledger.state.history))
    tx = update(chain, [entry(name, seeded_key(f"new-{name}")) for name in add], remove)
    assert rejected_code(chain, tx) == code
    assert (chain.ledger.app_hash, len(chain.ledger.state.history)) == before


def test_one_third_of_the_power_may_move_at_once() -> None:
    chain = four()
    additions = [entry(f"n{i}", seeded_key(f"new-{i}")) for i in range(2)]
    chain.commit_block([update(chain, additions)])     # 2 of 6 new: exactly one third
    assert chain.ledger.state.history.latest().roster.validators.size == 6


@pytest.mark.parametrize("key_of", ["validator", "committee", "gateway", "operator"])
def test_a_key_of_another_role_or_validator_is_a_duplicate_key(key_of: str) -> None:
    chain = four()
    key = {"validator": chain.validator_keys[1], "committee": chain.committee_keys[0],
           "gateway": chain.gateway_key, "operator": chain.operator_keys["d1"]}[key_of]
    assert rejected_code(chain, update(chain, [entry("v4", key)], ["v3"])) == "duplicate_key"


def test_a_duplicate_url_is_refused() -> None:
    chain = four()
    chain.commit_block([update(chain, [entry("v4", seeded_key("validator-4"), "https://x.example.org")])])
    tx = update(chain, [entry("v5", seeded_key("validator-5"), "https://x.example.org")])
    assert rejected_code(chain, tx) == "duplicate_url"


def test_two_changes_in_one_block_compose_and_the_power_rule_sees_both() -> None:
    chain = four()
    first = update(chain, [entry("n1", seeded_key("n1"))])
    second = chain.sign("validators.update", ValidatorsUpdate("and another", (entry("n2", seeded_key("n2")),), ()))
    built = chain.commit_block([first, second])
    assert len(built.block.txs) == 2
    change = chain.ledger.state.history.latest()
    assert names(change.roster.validators) == ["v0", "v1", "v2", "v3", "n1", "n2"]
    assert [kind for kind, _ in change.txs] == ["validators.update", "validators.update"]
    third = chain.sign("validators.update", ValidatorsUpdate("one more", (entry("n3", seeded_key("n3")),), ()))
    fourth = chain.sign("validators.update", ValidatorsUpdate("too far", (entry("n4", seeded_key("n4")),), ()))
    built = chain.build([third, fourth])
    # n3 alone: 1 of 7 new against the set in force before (6 of them): fine. n3 and n4 in one block: 2
    # new against the 6 in force the block before, of 8 → fine too; but measured against the 4 of
    # genesis (still in force at the next height) both would be 4 of 8: the rule compares with the set
    # in force just before the new one comes into force, which is the 6-validator set.
    assert len(built.block.txs) == 2


def test_changes_in_consecutive_blocks_chain() -> None:
    chain = four()
    chain.commit_block([update(chain, [entry("n1", seeded_key("n1"))])])
    chain.commit_block([update(chain, [entry("n2", seeded_key("n2"))], ["v0"])])
    history = chain.ledger.state.history
    assert [c.from_height for c in history.changes()] == [4, 5]
    assert names(history.at(5).validators) == ["v1", "v2", "v3", "n1", "n2"]


# --- keys.rotate --------------------------------------------------------------------------------------


def rotate(chain: TestChain, role: str, subject: str, old: bytes, new: bytes, threshold: int = 0,
           keys: Sequence[SigningKey] | None = None) -> Tx:
    return chain.sign("keys.rotate", KeysRotate(role, subject, old, new, threshold, "rotation"), keys)


def test_gateway_key_rotation_mid_campaign_keeps_the_cap_and_the_counts() -> None:
    chain = new_chain(validators=4)
    chain.open_voting()
    early = chain.new_voters(3)
    chain.commit_block([chain.register(early)])
    chain.commit_block([chain.vote(v, "d1", ["a1"]) for v in early])
    new_gateway = seeded_key("gateway-contractor-2")
    chain.commit_block([rotate(chain, "gateway", "gw", chain.gateway_key.public_key, new_gateway.public_key)])
    revoked_at = chain.ledger.height + 2
    late = chain.new_voters(2)
    chain.commit_block([chain.register(late[:1])])        # the old key still signs until then
    old = chain.register(late[1:])
    assert rejected_code(chain, old) == "revoked_key"
    built = chain.build([old])
    assert f"revoked at height {revoked_at}" in built.rejected[0][1].message
    from chain.tx import make_registration
    chain.commit_block([make_registration(CHAIN_ID, new_gateway, "c1", [late[1].public_key])])
    chain.commit_block([chain.vote(v, "d1", ["a2"]) for v in late])
    campaign = chain.ledger.state.campaigns["c1"]
    assert (campaign.registered, campaign.total_ballots) == (5, 5)
    assert chain.ledger.state.votes("c1", "a1") == 3 and chain.ledger.state.votes("c1", "a2") == 2


def test_the_cap_carries_across_a_gateway_rotation() -> None:
    from tests.chain.helpers import campaign_spec
    chain = new_chain(validators=4, campaign=campaign_spec(seeded_key("gateway").public_key, registration_cap=2))
    chain.open_voting()
    chain.commit_block([chain.register(chain.new_voters(2))])
    new_gateway = seeded_key("gateway-contractor-2")
    chain.commit_block([rotate(chain, "gateway", "gw", chain.gateway_key.public_key, new_gateway.public_key)])
    chain.commit_block([])
    from chain.tx import make_registration
    tx = make_registration(CHAIN_ID, new_gateway, "c1", [chain.new_voters(1)[0].public_key])
    assert rejected_code(chain, tx) == "registration_cap"


def test_a_revoked_gateway_key_cannot_create_campaigns_either() -> None:
    from tests.chain.helpers import campaign_spec
    chain = new_chain(validators=4)
    new_gateway = seeded_key("gateway-contractor-2")
    chain.commit_block([rotate(chain, "gateway", "gw", chain.gateway_key.public_key, new_gateway.public_key)])
    chain.commit_block([])
    old = chain.sign("campaign.create", campaign_spec(chain.gateway_key.public_key, campaign_id="c2",
                                                        submission_start=chain.now, voting_end=chain.now + 10**6,
                                                        submission_end=chain.now + 10, voting_start=chain.now + 10))
    assert rejected_code(chain, old) == "unknown_gateway"


def test_committee_rotation_and_threshold_take_effect_together() -> None:
    chain = new_chain(validators=4, committee=3, threshold=2)
    chain.commit_block([])
    members = chain.ledger.roster_at(1).committee
    replaced_name, replaced_key = members[0]
    newcomer = seeded_key("committee-new")
    chain.commit_block([rotate(chain, "committee", replaced_name, replaced_key, newcomer.public_key, threshold=3)])
    chain.commit_block([])
    roster = chain.ledger.roster_at(chain.ledger.height + 1)
    assert roster.threshold == 3 and newcomer.public_key in roster.committee_keys
    assert replaced_key not in roster.committee_keys
    others = [k for k in chain.committee_keys if k.public_key != replaced_key]
    from chain.tx import CampaignClose
    old_k = chain.sign("campaign.close", CampaignClose("c1", "two old signatures"), others)
    assert rejected_code(chain, old_k) == "permission_denied"
    with_old = chain.sign("campaign.close", CampaignClose("c1", "revoked key"),
                          [chain.committee_keys[0], chain.committee_keys[1], chain.committee_keys[2]])
    assert rejected_code(chain, with_old) == "permission_denied"
    new_three = chain.sign("campaign.close", CampaignClose("c1", "new committee"), others + [newcomer])
    chain.commit_block([new_three])
    assert chain.ledger.state.campaigns["c1"].status == "closed"


@pytest.mark.parametrize("threshold, code", [(4, "bad_threshold")])
def test_a_threshold_above_the_committee_is_refused(threshold: int, code: str) -> None:
    chain = new_chain(validators=4, committee=3, threshold=2)
    assert rejected_code(chain, rotate(chain, "committee", "committee-0", b"", b"", threshold)) == code


def test_rotating_a_key_the_subject_does_not_hold_is_unknown_key() -> None:
    chain = new_chain(validators=4)
    tx = rotate(chain, "gateway", "gw", chain.other_gateway_key.public_key, seeded_key("g3").public_key)
    assert rejected_code(chain, tx) == "unknown_key"
    tx = rotate(chain, "gateway", "nope", chain.gateway_key.public_key, seeded_key("g3").public_key)
    assert rejected_code(chain, tx) == "unknown_key"
    tx = rotate(chain, "district", "d1", chain.operator_keys["d2"].public_key, seeded_key("o3").public_key)
    assert rejected_code(chain, tx) == "unknown_key"


def test_a_new_key_in_use_by_another_role_is_refused() -> None:
    chain = new_chain(validators=4)
    tx = rotate(chain, "gateway", "gw", chain.gateway_key.public_key, chain.validator_keys[0].public_key)
    assert rejected_code(chain, tx) == "duplicate_key"
    tx = rotate(chain, "district", "d1", chain.operator_keys["d1"].public_key, chain.gateway_key.public_key)
    assert rejected_code(chain, tx) == "duplicate_key"


def test_district_operator_rotation() -> None:
    chain = new_chain(validators=4)
    new_operator = seeded_key("operator-d1-new")
    old_operator = chain.operator_keys["d1"]
    chain.commit_block([rotate(chain, "district", "d1", old_operator.public_key, new_operator.public_key)])
    chain.commit_block([])
    old = chain.sign("initiative.submit", initiative_spec("x1", "d1"), [old_operator])
    assert rejected_code(chain, old) == "permission_denied"
    chain.commit_block([chain.sign("initiative.submit", initiative_spec("x1", "d1"), [new_operator])])
    assert chain.ledger.state.initiatives[("c1", "x1")].status == "submitted"


def test_an_operator_key_may_serve_another_district_too() -> None:
    chain = new_chain(validators=4)
    chain.commit_block([rotate(chain, "district", "d2", b"", chain.operator_keys["d1"].public_key)])
    assert chain.operator_keys["d1"].public_key in chain.ledger.state.history.latest().roster.operators_of("d2")


# --- protocol.upgrade --------------------------------------------------------------------------------


def upgrade(chain: TestChain, version: int, height: int) -> Tx:
    return chain.sign("protocol.upgrade", ProtocolUpgrade(version, height, "release 2"))


def test_an_upgrade_switches_the_app_hash_rule_at_exactly_its_height() -> None:
    chain = new_chain(validators=4)
    chain.commit_block([upgrade(chain, 2, 4)])
    assert chain.ledger.state.protocol.version_at(3) == 1 and chain.ledger.state.protocol.version_at(4) == 2
    from chain.state import compute_app_hash
    before = chain.ledger.app_hash
    chain.commit_block([])                                   # height 2: version 1
    assert chain.ledger.app_hash == compute_app_hash(before, 2, {}, 1)
    chain.commit_block([])
    before = chain.ledger.app_hash
    chain.commit_block([])                                   # height 4: version 2
    assert chain.ledger.app_hash == compute_app_hash(before, 4, {}, 2) != compute_app_hash(before, 4, {}, 1)


def test_a_ledger_without_support_stops_before_the_upgrade_height() -> None:
    store = MemoryStore()
    chain = new_chain(store, validators=4)
    chain.commit_block([upgrade(chain, 2, 3)])
    chain.commit_block([])                                   # height 2
    old = Ledger(store, chain.params, supported_protocol_version=1)
    assert old.height == 2
    with pytest.raises(UpgradeRequired) as info:
        old.build_block([], time_ms=old.last_time_ms + 10, round_=0, last_commit=chain.last_commit)
    assert (info.value.height, info.value.version, info.value.supported) == (3, 2, 1)
    assert "protocol version 2 is in force from height 3" in info.value.message
    built = chain.build([])
    with pytest.raises(UpgradeRequired):
        old.check_block(built.block)
    chain.commit(built)                                      # a supporting ledger crosses it


@pytest.mark.parametrize("version, height, code", [(2, 2, "too_early"), (1 + 1, 1, "too_early")])
def test_an_upgrade_needs_two_blocks_of_notice(version: int, height: int, code: str) -> None:
    chain = new_chain(validators=4)
    assert rejected_code(chain, upgrade(chain, version, height)) == code


def test_upgrades_go_up_in_version_and_height() -> None:
    chain = new_chain(validators=4)
    chain.commit_block([upgrade(chain, 3, 100)])
    assert rejected_code(chain, upgrade(chain, 3, 200)) == "stale_version"
    assert rejected_code(chain, upgrade(chain, 2, 200)) == "stale_version"
    assert rejected_code(chain, upgrade(chain, 4, 100)) == "out_of_order"
    chain.commit_block([upgrade(chain, 4, 101)])


def test_only_the_committee_schedules_upgrades() -> None:
    chain = new_chain(validators=4)
    tx = chain.sign("protocol.upgrade", ProtocolUpgrade(2, 100, "x"), [seeded_key("outsider")])
    assert rejected_code(chain, tx) == "permission_denied"


# --- pure functions -----------------------------------------------------------------------------------


def validator_set(*labels: str) -> ValidatorSet:
    return ValidatorSet(tuple(Validator(label, seeded_key(label).public_key) for label in labels))


def test_power_moved_counts_keys_not_names() -> None:
    before = validator_set("a", "b", "c", "d")
    after = validator_set("a", "b", "c", "e")
    assert power_moved(before, after) == (1, 1)
    check_power_moved(before, after)
    renamed = ValidatorSet(before.validators[:3] + (Validator("d2", before.validators[3].public_key, url="x"),))
    assert power_moved(before, renamed) == (0, 0)
    with pytest.raises(TxRejected, match="removes 2 of the 4"):
        check_power_moved(before, validator_set("a", "b", "e", "f"))


def test_history_answers_every_height() -> None:
    genesis = Roster(validator_set("a", "b", "c", "d"), (("m", b"\x01" * 32),), 1, (), ())
    second = Roster(validator_set("a", "b", "c", "e"), (("m", b"\x01" * 32),), 1, (), ())
    history = SetHistory(genesis, [SetChange(7, 5, second, (("validators.update", b"\x02" * 32),))])
    assert [history.at(h) for h in (0, 6, 7, 100)] == [genesis, genesis, second, second]
    assert effective_height(5) == 7 and MIN_VALIDATORS == 4
    record = history.latest()
    from chain.governance import roster_key
    assert SetChange.decode(roster_key(7), record.encode()) == record


def test_protocol_schedule() -> None:
    schedule = ProtocolSchedule([UpgradeRecord(10, 2, 3, b"\x00" * 32), UpgradeRecord(20, 3, 12, b"\x01" * 32)])
    assert [schedule.version_at(h) for h in (0, 9, 10, 19, 20)] == [1, 1, 2, 2, 3]
    next_upgrade = schedule.next_after(10)
    assert next_upgrade is not None and next_upgrade.version == 3
    assert schedule.next_after(20) is None


def test_voting_goes_on_across_a_set_change() -> None:
    chain = new_chain(validators=4)
    chain.open_voting()
    voters = chain.new_voters(4)
    chain.commit_block([chain.register(voters)])
    new_key = seeded_key("validator-4")
    chain.extra_validator_keys.append(new_key)
    chain.commit_block([chain.vote(voters[0], "d1", ["a1"]), update(chain, [entry("v4", new_key)], ["v3"])])
    for voter in voters[1:]:
        chain.commit_block([chain.vote(voter, "d1", ["a1"])])
    assert chain.ledger.state.campaigns["c1"].total_ballots == 4
    assert chain.now >= VOTING_START
    mirror = Ledger(MemoryStore(), chain.params)               # another node replays it
    for block, certificate in chain.blocks:
        mirror.apply_synced(block, certificate, check_signatures=True)
    assert mirror.app_hash == chain.ledger.app_hash
