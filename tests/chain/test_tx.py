"""Transaction bodies, the signed envelope, strict decoding and tamper resistance."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import codec
from chain.crypto import sha256
from chain.errors import DecodeError, SignatureError
from chain.tx import (
    BODY_TYPES, KINDS, MAX_TX_BYTES, MAX_VOTER_KEYS_PER_REGISTRATION, BallotSpec, CampaignClose, CampaignCreate,
    InitiativeReview, KeysRotate, ProgressReport, ProtocolUpgrade, RuleSpec, TokensIssued, Tx, ValidatorEntry,
    ValidatorsUpdate, VoteCast, VotersRegister, Wire,
    body_to_json, decode_tx, encode_tx, make_registration, make_vote, sign_tx, signing_bytes,
)
from tests.chain.helpers import CHAIN_ID, campaign_spec, initiative_spec, seeded_key

VOTER = seeded_key("voter-x")
GATEWAY = seeded_key("gateway")
COMMITTEE = [seeded_key("committee-0"), seeded_key("committee-1")]
NEW_VALIDATOR = seeded_key("validator-new")
NEW_GATEWAY = seeded_key("gateway-new")


def sample_bodies() -> dict[str, Wire]:
    return {
        "campaign.create": campaign_spec(GATEWAY.public_key, categories=("parks", "roads")),
        "initiative.submit": initiative_spec("a1", "d1"),
        "initiative.review": InitiativeReview("c1", "a1", False, "duplicates a1"),
        "voters.register": VotersRegister("c1", (VOTER.public_key, GATEWAY.public_key)),
        "vote.cast": VoteCast("c1", "d1", ("a1", "a2")),
        "campaign.close": CampaignClose("c1", "cancelled by the committee"),
        "progress.report": ProgressReport("c1", "a1", "works", 40, 1_000, "halfway", sha256(b"photo")),
        "tokens.issued": TokensIssued("c1", 7, 25),
        "validators.update": ValidatorsUpdate("validator-3's server is lost", (
            ValidatorEntry("validator-4", "committee", NEW_VALIDATOR.public_key, "https://node4.example.org"),),
            ("validator-3",)),
        "keys.rotate": KeysRotate("gateway", "gw", GATEWAY.public_key, NEW_GATEWAY.public_key, 0, "new contractor"),
        "protocol.upgrade": ProtocolUpgrade(2, 1000, "release 2.0"),
    }


def signed(kind: str, body: Wire | None = None) -> Tx:
    return sign_tx(kind, CHAIN_ID, body if body is not None else sample_bodies()[kind], COMMITTEE)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_round_trips_byte_for_byte(kind: str) -> None:
    tx = signed(kind)
    again = decode_tx(tx.raw)
    assert again == tx
    assert again.body == sample_bodies()[kind]
    assert again.hash == sha256(tx.raw)
    assert codec.encode(codec.decode(tx.raw)) == tx.raw
    assert tx.raw == encode_tx(kind, CHAIN_ID, tx.body, list(reversed(tx.signatures)))
    assert tx.signers == tuple(sorted(k.public_key for k in COMMITTEE))
    tx.verify_signatures()
    assert tx.signing_bytes() == b"veche/v1/" + kind.encode() + CHAIN_ID.encode() + codec.encode(tx.body.to_wire())


def test_envelope_layout_is_fixed() -> None:
    tx = make_vote(CHAIN_ID, VOTER, "c1", "d1", ["a2", "a1"])
    assert codec.decode(tx.raw) == ["vote.cast", CHAIN_ID, ["c1", "d1", ["a1", "a2"]],
                                    [[VOTER.public_key, tx.signatures[0][1]]]]
    assert signing_bytes("vote.cast", CHAIN_ID, tx.body) == (
        b"veche/v1/vote.cast" + CHAIN_ID.encode() + bytes.fromhex("93a26331a26431") + bytes.fromhex("92a26131a26132"))


def test_a_ballot_is_deterministic() -> None:
    first = make_vote(CHAIN_ID, VOTER, "c1", "d1", ["a2", "a1", "a2"])
    second = make_vote(CHAIN_ID, VOTER, "c1", "d1", ["a1", "a2"])
    assert first.raw == second.raw and first.hash == second.hash
    assert first.body.choices == ("a1", "a2")


def test_body_to_json() -> None:
    document = body_to_json(sample_bodies()["campaign.create"])
    assert document["ballot"] == {"type": "approval", "min_choices": 1, "max_choices": 2}
    assert document["gateway"] == GATEWAY.public_key.hex()
    assert document["districts"][0] == {"district_id": "d1", "name": "District one", "budget": 1_000_000}
    assert body_to_json(sample_bodies()["progress.report"])["evidence_hash"] == sha256(b"photo").hex()


# --- invalid bodies (each paired with the valid sample above) ----------------------------------------


def wire_with(kind: str, index: int, value: Any) -> list[Any]:
    wire = sample_bodies()[kind].to_wire()
    wire[index] = value
    return wire


INVALID_FIELDS: list[tuple[str, int, Any]] = [
    # campaign.create
    ("campaign.create", 0, "c/1"), ("campaign.create", 0, ""), ("campaign.create", 0, "x" * 65),
    ("campaign.create", 0, "кампания"), ("campaign.create", 1, " "), ("campaign.create", 1, "t" * 201),
    ("campaign.create", 2, "seniors"), ("campaign.create", 3, []),
    ("campaign.create", 3, [["d1", "D", 1], ["d1", "D", 2]]), ("campaign.create", 3, [["d1", "D", -1]]),
    ("campaign.create", 3, [["d1", "", 1]]), ("campaign.create", 4, ["choose-1", 1, 2]),
    ("campaign.create", 4, ["approval", 0, 2]), ("campaign.create", 4, ["approval", 3, 2]),
    ("campaign.create", 4, ["approval", 1, 65]), ("campaign.create", 4, ["ranked", 1, 1]),
    ("campaign.create", 5, ["greedy", "district", 2, 0, 0]), ("campaign.create", 5, ["top-n", "region", 0, 0, 0]),
    ("campaign.create", 5, ["greedy", "campaign", 0, 0, 0]), ("campaign.create", 5, ["lottery", "district", 0, 0, 0]),
    ("campaign.create", 6, 10_000_001), ("campaign.create", 6, -1), ("campaign.create", 6, True),
    ("campaign.create", 8, ["parks", ""]), ("campaign.create", 8, ["c" * 65]),
    ("campaign.create", 10, 1_700_000_000_000 - 1),  # submission_end < submission_start
    ("campaign.create", 11, 1_700_000_009_999),      # voting_start < submission_end
    ("campaign.create", 12, 1_700_000_010_000),      # voting_end == voting_start
    ("campaign.create", 13, b"\x01" * 31), ("campaign.create", 14, 2**63), ("campaign.create", 15, "voter"),
    # initiative.submit
    ("initiative.submit", 1, "a 1"), ("initiative.submit", 2, None), ("initiative.submit", 3, ""),
    ("initiative.submit", 3, "t" * 301), ("initiative.submit", 4, ""), ("initiative.submit", 5, 0),
    ("initiative.submit", 6, "s" * 4001), ("initiative.submit", 7, b"\x00" * 31), ("initiative.submit", 7, ""),
    # initiative.review
    ("initiative.review", 2, 1), ("initiative.review", 3, "   "), ("initiative.review", 3, "r" * 1001),
    # voters.register
    ("voters.register", 1, []), ("voters.register", 1, [b"\x01" * 32, b"\x01" * 32]),
    ("voters.register", 1, [b"\x01" * 33]), ("voters.register", 1, b"\x01" * 32),
    ("voters.register", 1, [i.to_bytes(32, "big") for i in range(MAX_VOTER_KEYS_PER_REGISTRATION + 1)]),
    # vote.cast
    ("vote.cast", 2, []), ("vote.cast", 2, ["a2", "a1"]), ("vote.cast", 2, ["a1", "a1"]),
    ("vote.cast", 2, ["a1", 5]), ("vote.cast", 2, [f"i{n:03d}" for n in range(65)]), ("vote.cast", 1, "d 1"),
    ("vote.cast", 2, "a1"),
    # campaign.close
    ("campaign.close", 1, ""), ("campaign.close", 1, "x" * 1001),
    # progress.report
    ("progress.report", 2, "planning"), ("progress.report", 3, 101), ("progress.report", 4, -5),
    ("progress.report", 5, "n" * 2001), ("progress.report", 6, b"\x00"),
    # validators.update
    ("validators.update", 0, " "), ("validators.update", 2, ["validator-3", "validator-3"]),
    ("validators.update", 2, ["v 3"]), ("validators.update", 1, [["v4", "", b"\x01" * 32, "https://a.org"]]),
    ("validators.update", 1, [["v4", "committee", b"\x01" * 31, "https://a.org"]]),
    ("validators.update", 1, [["v4", "committee", NEW_VALIDATOR.public_key, "ftp://a.org"]]),
    ("validators.update", 1, [["v4", "committee", NEW_VALIDATOR.public_key, "https://a.org/"]]),
    ("validators.update", 1, [["v4", "committee", NEW_VALIDATOR.public_key, "https://a.org?x=1"]]),
    ("validators.update", 1, [["v4", "district:d 1", NEW_VALIDATOR.public_key, "https://a.org"]]),
    ("validators.update", 1, [["v4", "committee", NEW_VALIDATOR.public_key, "https://a.org"],
                              ["v4", "committee", GATEWAY.public_key, "https://b.org"]]),
    ("validators.update", 1, [["v4", "committee", NEW_VALIDATOR.public_key, "https://a.org"],
                              ["v5", "committee", NEW_VALIDATOR.public_key, "https://b.org"]]),
    # keys.rotate
    ("keys.rotate", 0, "validator"), ("keys.rotate", 1, "g w"), ("keys.rotate", 3, GATEWAY.public_key),
    ("keys.rotate", 3, b"\x01" * 31), ("keys.rotate", 4, 2), ("keys.rotate", 5, ""),
    # protocol.upgrade
    ("protocol.upgrade", 0, 1), ("protocol.upgrade", 0, 0), ("protocol.upgrade", 1, 0), ("protocol.upgrade", 2, " "),
]


def test_validators_update_needs_a_change_and_committee_rotation_a_threshold() -> None:
    with pytest.raises(DecodeError, match="at least one"):
        ValidatorsUpdate.from_wire(["why", [], []], "validators.update")
    with pytest.raises(DecodeError, match="threshold"):
        KeysRotate.from_wire(["committee", "alice", GATEWAY.public_key, NEW_GATEWAY.public_key, 0, "why"], "keys.rotate")
    with pytest.raises(DecodeError, match="old or a new key"):
        KeysRotate.from_wire(["district", "d1", b"", b"", 0, "why"], "keys.rotate")
    threshold_only = KeysRotate.from_wire(["committee", "alice", b"", b"", 2, "why"], "keys.rotate")
    assert threshold_only.threshold == 2


@pytest.mark.parametrize("kind, index, value", INVALID_FIELDS)
def test_invalid_body_fields_are_decode_errors(kind: str, index: int, value: Any) -> None:
    valid = sample_bodies()[kind].to_wire()
    assert BODY_TYPES[kind].from_wire(valid, kind) == sample_bodies()[kind]
    with pytest.raises(DecodeError):
        BODY_TYPES[kind].from_wire(wire_with(kind, index, value), kind)


@pytest.mark.parametrize("kind", KINDS)
def test_missing_and_extra_fields(kind: str) -> None:
    wire = sample_bodies()[kind].to_wire()
    with pytest.raises(DecodeError):
        BODY_TYPES[kind].from_wire(wire[:-1], kind)
    with pytest.raises(DecodeError):
        BODY_TYPES[kind].from_wire(wire + [0], kind)
    with pytest.raises(DecodeError):
        BODY_TYPES[kind].from_wire(None, kind)


def test_choose_one_and_top_n_rules() -> None:
    BallotSpec.from_wire(["choose-1", 1, 1])
    RuleSpec.from_wire(["top-n", "district", 3, 0, 0])
    RuleSpec.from_wire(["greedy", "district", 0, 0, 0])
    with pytest.raises(DecodeError):
        RuleSpec.from_wire(["equal-shares", "district", 1, 0, 0])


# --- the envelope ----------------------------------------------------------------------------------


def envelope(**parts: Any) -> bytes:
    tx = make_vote(CHAIN_ID, VOTER, "c1", "d1", ["a1"])
    wire = codec.decode(tx.raw)
    names = {"kind": 0, "chain_id": 1, "body": 2, "signatures": 3}
    for name, value in parts.items():
        wire[names[name]] = value
    return codec.encode(wire)


SIG = b"\x01" * 64
KEY_A, KEY_B = b"\x01" * 32, b"\x02" * 32


@pytest.mark.parametrize("raw", [
    envelope(kind="vote.delete"), envelope(kind=7), envelope(chain_id=""), envelope(chain_id="a b"),
    envelope(chain_id=b"veche-test"), envelope(body=["c1", "d1"]), envelope(signatures=[]),
    envelope(signatures=[[KEY_A, SIG]] * 2), envelope(signatures=[[KEY_B, SIG], [KEY_A, SIG]]),
    envelope(signatures=[[KEY_A]]), envelope(signatures=[[KEY_A, SIG, SIG]]), envelope(signatures=[[KEY_A, SIG[:63]]]),
    envelope(signatures=[[KEY_A[:31], SIG]]), envelope(signatures=[[i.to_bytes(32, "big"), SIG] for i in range(17)]),
    envelope(signatures=[KEY_A, SIG]), envelope(signatures=None),
    codec.encode(["vote.cast", CHAIN_ID, ["c1", "d1", ["a1"]]]), codec.encode("vote.cast"), b"", b"\xc1",
    codec.encode(["vote.cast", CHAIN_ID, ["c1", "d1", ["a1"]], [[KEY_A, SIG]], None]),
])
def test_malformed_envelopes(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_tx(raw)


def test_two_sorted_signatures_decode() -> None:
    tx = decode_tx(envelope(signatures=[[KEY_A, SIG], [KEY_B, SIG]]))
    assert tx.signers == (KEY_A, KEY_B)
    with pytest.raises(SignatureError):
        tx.verify_signatures()


def test_non_canonical_envelope_and_size_limit() -> None:
    tx = make_vote(CHAIN_ID, VOTER, "c1", "d1", ["a1"])
    assert tx.raw[0] == 0x94
    with pytest.raises(DecodeError) as caught:
        decode_tx(b"\xdc\x00\x04" + tx.raw[1:])
    assert caught.value.code == "not_canonical"
    with pytest.raises(DecodeError) as caught:
        decode_tx(b"\x00" * (MAX_TX_BYTES + 1))
    assert caught.value.code == "too_large"
    with pytest.raises(DecodeError):
        decode_tx("text")  # type: ignore[arg-type]


def test_largest_registration_fits_in_a_transaction() -> None:
    keys = [i.to_bytes(32, "big") for i in range(MAX_VOTER_KEYS_PER_REGISTRATION)]
    tx = make_registration("c" * 64, GATEWAY, "x" * 64, keys)
    assert len(tx.raw) <= MAX_TX_BYTES


def test_sign_tx_refuses_a_body_of_another_kind() -> None:
    with pytest.raises(SignatureError):
        sign_tx("vote.cast", CHAIN_ID, sample_bodies()["campaign.close"], [VOTER])
    with pytest.raises(DecodeError):
        sign_tx("vote.cast", CHAIN_ID, VoteCast("c1", "d1", ("b", "a")), [VOTER])


# --- tamper resistance: any single changed byte is rejected -----------------------------------------


def assert_rejected(original: Tx, mutated: bytes) -> None:
    try:
        tx = decode_tx(mutated)
    except DecodeError:
        return
    with pytest.raises(SignatureError):
        tx.verify_signatures()
    assert tx.raw != original.raw


@pytest.mark.parametrize("kind", ["vote.cast", "voters.register", "initiative.review"])
def test_every_single_bit_flip_is_rejected(kind: str) -> None:
    original = make_vote(CHAIN_ID, VOTER, "c1", "d1", ["a1", "a2"]) if kind == "vote.cast" else signed(kind)
    raw = bytearray(original.raw)
    for position in range(len(raw)):
        for bit in range(8):
            raw[position] ^= 1 << bit
            assert_rejected(original, bytes(raw))
            raw[position] ^= 1 << bit


@given(st.sampled_from(KINDS), st.data())
@settings(max_examples=250, deadline=None)
def test_any_single_byte_replacement_is_rejected(kind: str, data: st.DataObject) -> None:
    original = SIGNED[kind]
    position = data.draw(st.integers(0, len(original.raw) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda v: v != original.raw[position]))
    mutated = bytearray(original.raw)
    mutated[position] = value
    assert_rejected(original, bytes(mutated))


SIGNED = {kind: signed(kind) for kind in KINDS}


def test_dropping_or_swapping_signatures_changes_hash_or_fails() -> None:
    tx = SIGNED["initiative.review"]
    (key_a, sig_a), (key_b, sig_b) = tx.signatures
    swapped = codec.encode([tx.kind, tx.chain_id, tx.body.to_wire(), [[key_b, sig_b], [key_a, sig_a]]])
    with pytest.raises(DecodeError):
        decode_tx(swapped)
    dropped = decode_tx(encode_tx(tx.kind, tx.chain_id, tx.body, [(key_a, sig_a)]))
    dropped.verify_signatures()          # still a valid signature ...
    assert dropped.hash != tx.hash       # ... under a new hash: the state machine's exact-k rule stops it


def test_validate_catches_bodies_built_in_code() -> None:
    with pytest.raises(DecodeError):
        VoteCast("c1", "d1", ("a2", "a1")).validate()
    with pytest.raises(DecodeError):
        replace(initiative_spec("a1", "d1"), cost=0).validate()
    campaign = sample_bodies()["campaign.create"]
    assert isinstance(campaign, CampaignCreate)
    with pytest.raises(DecodeError):
        replace(campaign, voting_end=campaign.voting_start).validate()


# --- structural fuzzing: any value in any place gives DecodeError, never another exception ------------

odd_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=70),
              st.binary(max_size=70), st.sampled_from(["c1", "d1", "a1", "approval", "top-n", "district", ""])),
    lambda inner: st.lists(inner, max_size=4), max_leaves=12)


def replace_somewhere(value: Any, data: st.DataObject) -> Any:
    """``value`` with one nested element (or the whole) replaced by an arbitrary value."""
    if isinstance(value, list) and value and data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(value) - 1))
        copy = list(value)
        copy[index] = replace_somewhere(value[index], data)
        return copy
    return data.draw(odd_values)


@given(st.sampled_from(KINDS), st.data())
@settings(max_examples=400, deadline=None)
def test_mutated_envelopes_raise_only_decode_error(kind: str, data: st.DataObject) -> None:
    wire = codec.decode(SIGNED[kind].raw)
    mutated = replace_somewhere(wire, data)
    raw = codec.encode(mutated)
    try:
        tx = decode_tx(raw)
    except DecodeError:
        return
    # Whatever still decodes must be a well-formed transaction that re-encodes to the same bytes.
    assert codec.encode([tx.kind, tx.chain_id, tx.body.to_wire(), [list(p) for p in tx.signatures]]) == raw


def test_the_test_vectors_printed_in_docs_protocol_md() -> None:
    """docs/PROTOCOL.md §13 quotes these bytes; an independent implementation checks itself with them."""
    from chain.block import STEP_PRECOMMIT, ZERO_HASH, make_header, vote_signing_bytes
    from chain.crypto import SigningKey
    from chain.merkle import inclusion_proof, merkle_root
    from chain.records import u64
    from chain.state import compute_app_hash

    key = SigningKey(bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"))
    tx = make_vote("veche-test", key, "c1", "d1", ["a2", "a1"])
    assert tx.signing_bytes().hex() == ("76656368652f76312f766f74652e6361737476656368652d7465737493a26331a2643192"
                                        "a26131a26132")
    assert tx.raw.hex() == (
        "94a9766f74652e63617374aa76656368652d7465737493a26331a2643192a26131a261329192c4203d4017c3e843895a92b70a"
        "a74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660cc440ebd9db1cfc8b92b3e086de80d069f728a792d9a3764299edc44119"
        "8899688e7f85a3cd75ac359fa298b58d52f576fcdbbbb513f378aeb70e6f0ea08b57793802")
    assert tx.hash.hex() == "45f58186c30b9e9113e0dbcb17ee0c5b7e4f8143761fd9b1ae2b44b7e14949ba"
    assert merkle_root([b"a", b"b", b"c"]).hex() == "36642e73c2540ab121e3a6bf9545b0a24982cd830eb13d3cd19de3ce6c021ec1"
    assert [p.hex() for p in inclusion_proof([b"a", b"b", b"c"], 2)] == [
        "b137985ff484fb600db93107c77b0365c80d78f5b429ded0fd97361d077999eb"]
    changes: dict[bytes, bytes | None] = {b"S/t/c1/a1": u64(1), b"S/k/c1/" + b"\x01" * 32: b""}
    assert compute_app_hash(b"\x00" * 32, 1, changes).hex() == (
        "6b0bfaeb31959260ef7f7dcf7feb7f6939f61cb1385d99ac3ce521ec3076716b")
    header = make_header(chain_id="veche-test", height=1, round_=0, time_ms=1_700_000_001_000,
                         previous_hash=ZERO_HASH, txs=[tx.raw], app_hash=b"\x11" * 32, proposer=1, last_commit=None)
    assert header.hash().hex() == "93e56ebf6d0d8ff54f043234279be38fed314f747cff598acafc675eace613a2"
    assert vote_signing_bytes("veche-test", STEP_PRECOMMIT, 1, 0, header.hash()).hex() == (
        "76656368652f76312f636f6e73656e7375732e707265636f6d6d697476656368652d74657374930100c420"
        "93e56ebf6d0d8ff54f043234279be38fed314f747cff598acafc675eace613a2")


def test_decode_errors_name_the_field_and_the_list_element() -> None:
    """What a client is told about a bad transaction names the field (and list element) at fault."""
    with pytest.raises(DecodeError, match=r": vote\.cast\.choices\[1\] must match"):
        VoteCast.from_wire(["c1", "d1", ["a1", "bad id"]], "vote.cast")
    with pytest.raises(DecodeError, match=r": vote\.cast\.district_id must match"):
        VoteCast.from_wire(["c1", "", ["a1"]], "vote.cast")
    with pytest.raises(DecodeError, match=r": voters\.register\.voter_keys\[2\] must be 32 bytes"):
        VotersRegister.from_wire(["c1", [b"\x01" * 32, b"\x02" * 32, b"\x03" * 31]], "voters.register")
    wire = sample_bodies()["campaign.create"].to_wire()
    wire[3] = [wire[3][0], ["d 2", "District two", 100]]
    with pytest.raises(DecodeError, match=r": campaign\.create\.districts\[1\]\.district_id must match"):
        CampaignCreate.from_wire(wire, "campaign.create")


def test_an_id_seen_valid_does_not_let_an_invalid_one_through() -> None:
    """Ids that matched once are remembered (every ballot repeats its campaign's); anything else is
    still checked each time."""
    for _ in range(2):
        assert VoteCast.from_wire(["c1", "d1", ["a1", "a2"]], "vote.cast") == VoteCast("c1", "d1", ("a1", "a2"))
        for bad in ("a1 ", "x" * 65, "", "а1", b"a1", 1):
            with pytest.raises(DecodeError):
                VoteCast.from_wire(["c1", "d1", ["a0", bad]], "vote.cast")


@pytest.mark.parametrize("chain_id", ["c", "c" * 31, "c" * 32, "c" * 64])
@pytest.mark.parametrize("signers", [1, 15, 16])
def test_the_signed_message_is_cut_from_every_envelope_width(chain_id: str, signers: int) -> None:
    """``decode_tx`` cuts the signed body out of the envelope: fixstr and str8 chain ids, a signature
    list with a one-byte header (≤ 15 pairs) and with a three-byte one (16)."""
    keys = [seeded_key(f"signer-{n}") for n in range(signers)]
    for kind in ("vote.cast", "campaign.close"):
        body = sample_bodies()[kind]
        tx = decode_tx(sign_tx(kind, chain_id, body, keys).raw)
        assert tx.message == signing_bytes(kind, chain_id, body)
        assert len(tx.signatures) == signers
        tx.verify_signatures()
