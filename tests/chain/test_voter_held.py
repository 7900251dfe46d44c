"""Voter-held keys with blind certification tokens: campaign.create's certification key, tokens.issued,
and ballots that carry their token (docs/PROTOCOL.md §16). Valid/invalid pairs for every rule; a
refused transaction changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chain import codec
from chain.blind import blind, emsa_pss_encode, finalize, token_message
from chain.crypto import RsaPrivateNumbers, SigningKey, rsa_private_numbers
from chain.errors import DecodeError, SignatureError
from chain.ledger import BuiltBlock
from chain.records import Campaign, campaign_key, certified_key_key
from chain.tx import (
    BallotSpec, CampaignCreate, District, KeysRotate, TokensIssued, Tx, VoteCast, decode_tx, make_tokens_issued, make_vote,
    sign_tx, vote_body,
)
from tests.chain.helpers import CHAIN_ID, TestChain, campaign_spec, initiative_spec, new_chain, seeded_key

DATA = Path(__file__).parent / "data"


def load_key(name: str = "cert_key_3072.json") -> RsaPrivateNumbers:
    document = json.loads((DATA / name).read_text())
    return rsa_private_numbers(int(document["p"], 16), int(document["q"], 16))


CERT = load_key()
RFC_VECTOR = json.loads((DATA / "rfc9474_vectors.json").read_text())["vectors"][2]
OTHER_CERT = rsa_private_numbers(int(RFC_VECTOR["p"], 16), int(RFC_VECTOR["q"], 16))


def issue(key: RsaPrivateNumbers, campaign_id: str, voter: SigningKey, chain_id: str = CHAIN_ID) -> bytes:
    """A token as a citizen's device gets it: blind, the gateway's raw RSA, finalize."""
    message = token_message(chain_id, campaign_id, voter.public_key)
    blinded = blind(key.modulus, message)
    answer = pow(int.from_bytes(blinded.blinded_msg, "big"), key.d, key.n).to_bytes(len(key.modulus), "big")
    return finalize(key.modulus, message, answer, blinded.inverse)


def certified_chain(cap: int = 1000, ballots_per_voter: str = "district") -> TestChain:
    gateway = seeded_key("gateway").public_key
    initial: list[tuple[str, Any]] = [("campaign.create", campaign_spec(gateway, certification_key=CERT.modulus, registration_cap=cap,
                                                 ballots_per_voter=ballots_per_voter)),
               ("campaign.create", campaign_spec(gateway, campaign_id="c2", certification_key=CERT.modulus)),
               ("campaign.create", campaign_spec(gateway, campaign_id="plain"))]
    for campaign_id in ("c1", "c2", "plain"):
        for initiative_id, district_id in (("a1", "d1"), ("a2", "d1"), ("b1", "d2")):
            initial.append(("initiative.submit", initiative_spec(initiative_id, district_id, campaign_id=campaign_id)))
    chain = new_chain(initial=initial)
    chain.open_voting()
    return chain


def tokens(chain: TestChain, count: int, campaign_id: str = "c1", batch: int = 0) -> Tx:
    return make_tokens_issued(CHAIN_ID, chain.gateway_key, campaign_id, batch, count)


def held_vote(voter: SigningKey, token: bytes, campaign_id: str = "c1", district_id: str = "d1",
              choices: tuple[str, ...] = ("a1",), token_campaign_id: str | None = None) -> Tx:
    return make_vote(CHAIN_ID, voter, campaign_id, district_id, choices, token=token,
                     token_campaign_id=token_campaign_id)


def refused(chain: TestChain, tx: Tx) -> str:
    """Build a block holding only ``tx``: it must be left out, with nothing written."""
    built: BuiltBlock = chain.build([tx])
    assert not built.block.txs
    assert built.execution.finish()[0] == {}
    [(_, error)] = built.rejected
    return error.code


def campaign(chain: TestChain, campaign_id: str = "c1") -> Campaign:
    return chain.ledger.state.campaigns[campaign_id]


# --- wire forms ------------------------------------------------------------------------------------

def test_a_campaign_names_its_certification_key_only_when_it_has_one() -> None:
    gateway = seeded_key("gateway").public_key
    plain = campaign_spec(gateway)
    certified = campaign_spec(gateway, certification_key=CERT.modulus)
    assert len(plain.to_wire()) == 16 and len(certified.to_wire()) == 17
    assert certified.to_wire()[16] == CERT.modulus and certified.voter_held and not plain.voter_held
    for spec in (plain, certified):
        assert CampaignCreate.from_wire(codec.decode(codec.encode(spec.to_wire()))) == spec


@pytest.mark.parametrize("key", [b"", b"\x01" * 384, CERT.modulus[:-1] + b"\x00", CERT.modulus[1:], 0])
def test_a_certification_key_is_an_odd_3072_to_4096_bit_modulus(key: object) -> None:
    wire = campaign_spec(seeded_key("gateway").public_key).to_wire() + [key]
    with pytest.raises(DecodeError, match="certification_key"):
        CampaignCreate.from_wire(wire)


def test_ballot_forms_of_voter_held_keys() -> None:
    token = b"\x80" * 384
    body = VoteCast("c1", "d1", ("a1",), (), "c1", token)
    assert body.to_wire() == ["c1", "d1", ["a1"], [], ["c1", token]] and body.mode == "voter-held"
    scored = VoteCast("c1", "d1", ("a2", "a1"), (7, 3), "c1", token)
    assert scored.to_wire() == ["c1", "d1", ["a2", "a1"], [7, 3], ["c1", token]]
    for vote in (body, scored):
        assert VoteCast.from_wire(vote.to_wire()) == vote
    assert VoteCast("c1", "d1", ("a1",)).mode == "gateway-held"
    for wire in (["c1", "d1", ["a1"], [], ["c1", token[:383]]], ["c1", "d1", ["a1"], [], ["c1"]],
                 ["c1", "d1", ["a1"], [], ["c/1", token]], ["c1", "d1", ["a1"], [0], ["c1", token]],
                 ["c1", "d1", ["a2", "a1"], [], ["c1", token]], ["c1", "d1", ["a1"], None, ["c1", token]]):
        with pytest.raises(DecodeError):
            VoteCast.from_wire(wire)


def test_tokens_issued_counts_1_to_65536() -> None:
    assert TokensIssued.from_wire(["c1", 3, 65_536]) == TokensIssued("c1", 3, 65_536)
    for wire in (["c1", 3, 0], ["c1", 3, 65_537], ["c1", -1, 2], ["c1", 3]):
        with pytest.raises(DecodeError):
            TokensIssued.from_wire(wire)


def test_campaign_records_keep_9_fields_without_a_certification_key() -> None:
    chain = certified_chain()
    plain, certified = campaign(chain, "plain"), campaign(chain, "c1")
    assert plain.encode()[0] == 0x99 and certified.encode()[0] == 0x9c
    for record in (plain, certified):
        assert Campaign.decode(record.encode()) == record
        assert codec.encode(codec.decode(record.encode())) == record.encode()


# --- the state machine -----------------------------------------------------------------------------

def test_a_voter_held_ballot_counts_once_the_gateway_counted_its_token() -> None:
    chain = certified_chain()
    voter = SigningKey.generate()
    token = issue(CERT, "c1", voter)
    assert refused(chain, held_vote(voter, token)) == "tokens_exhausted"
    chain.commit_block([tokens(chain, 1)])
    chain.commit_block([held_vote(voter, token)])
    record = campaign(chain)
    assert (record.tokens_issued, record.certified_voters, record.voter_held_ballots) == (1, 1, 1)
    assert (record.total_ballots, record.gateway_held_ballots, record.registered) == (1, 0, 0)
    assert chain.ledger.state.votes("c1", "a1") == 1
    assert chain.ledger.state.store.get(certified_key_key("c1", voter.public_key)) == b""
    assert Campaign.decode(chain.ledger.state.store.get(campaign_key("c1")) or b"") == record


def test_one_key_votes_once_per_district_and_counts_one_certified_voter() -> None:
    chain = certified_chain()
    voter, second = SigningKey.generate(), SigningKey.generate()
    token = issue(CERT, "c1", voter)
    chain.commit_block([tokens(chain, 1)])
    chain.commit_block([held_vote(voter, token, district_id="d1"), held_vote(voter, token, district_id="d2",
                                                                               choices=("b1",))])
    record = campaign(chain)
    assert (record.certified_voters, record.voter_held_ballots, record.total_ballots) == (1, 2, 2)
    assert refused(chain, held_vote(second, issue(CERT, "c1", second))) == "tokens_exhausted"


def test_a_reused_token_is_refused() -> None:
    chain = certified_chain()
    voter = SigningKey.generate()
    token = issue(CERT, "c1", voter)
    chain.commit_block([tokens(chain, 2)])
    chain.commit_block([held_vote(voter, token)])
    assert refused(chain, held_vote(voter, token, choices=("a2",))) == "token_used"
    again = certified_chain(ballots_per_voter="campaign")
    again.commit_block([tokens(again, 2)])
    again.commit_block([held_vote(voter, token)])
    assert refused(again, held_vote(voter, token, district_id="d2", choices=("b1",))) == "token_used"
    # the very same ballot again is a replay of its bytes
    assert refused(chain, held_vote(voter, token)) == "replay"


def test_a_token_for_another_campaign_is_refused() -> None:
    chain = certified_chain()
    voter = SigningKey.generate()
    token_c2 = issue(CERT, "c2", voter)       # the same gateway key certifies c2
    chain.commit_block([tokens(chain, 5), tokens(chain, 5, "c2")])
    assert refused(chain, held_vote(voter, token_c2, token_campaign_id="c2")) == "token_wrong_campaign"
    assert refused(chain, held_vote(voter, token_c2)) == "bad_token"      # relabelled: does not verify for c1
    chain.commit_block([held_vote(voter, token_c2, campaign_id="c2")])    # where it belongs it counts


def test_a_forged_token_is_refused() -> None:
    chain = certified_chain()
    voter = SigningKey.generate()
    token = issue(CERT, "c1", voter)
    chain.commit_block([tokens(chain, 5)])
    flipped = bytes([token[0] ^ 1]) + token[1:]
    others = issue(OTHER_CERT, "c1", voter)           # another RSA key's signature (512 bytes)
    someone_elses = issue(CERT, "c1", SigningKey.generate())   # a real token of another voter key
    for forged in (flipped, b"\x42" * 384, others, someone_elses, issue(CERT, "c1", voter, chain_id="veche-other")):
        assert refused(chain, held_vote(voter, forged)) == "bad_token"
    chain.commit_block([held_vote(voter, token)])     # the real token counts


def test_tokens_of_a_campaign_without_certification_key() -> None:
    chain = certified_chain()
    voter = SigningKey.generate()
    assert refused(chain, held_vote(voter, issue(CERT, "plain", voter), campaign_id="plain")) == "no_certification"
    assert refused(chain, tokens(chain, 1, "plain")) == "no_certification"


def test_tokens_issued_is_the_campaign_gateways_and_held_against_the_cap() -> None:
    chain = certified_chain(cap=10)
    assert refused(chain, make_tokens_issued(CHAIN_ID, chain.other_gateway_key, "c1", 0, 1)) == "permission_denied"
    assert refused(chain, sign_tx("tokens.issued", CHAIN_ID, TokensIssued("c1", 0, 1), chain.committee)) == \
        "permission_denied"
    assert refused(chain, tokens(chain, 11)) == "registration_cap"
    voters = chain.new_voters(4)
    chain.commit_block([chain.register(voters), tokens(chain, 6)])
    assert (campaign(chain).registered, campaign(chain).tokens_issued) == (4, 6)
    assert refused(chain, tokens(chain, 1, batch=1)) == "registration_cap"
    assert refused(chain, chain.register(chain.new_voters(1))) == "registration_cap"
    assert refused(chain, tokens(chain, 6)) == "replay"     # the same record again


def test_gateway_held_ballots_are_unchanged_beside_voter_held_ones() -> None:
    chain = certified_chain()
    voters = chain.new_voters(2)
    held = SigningKey.generate()
    chain.commit_block([chain.register(voters), tokens(chain, 1)])
    chain.commit_block([chain.vote(voters[0], "d1", ["a1"]), held_vote(held, issue(CERT, "c1", held))])
    record = campaign(chain)
    assert (record.total_ballots, record.gateway_held_ballots, record.voter_held_ballots) == (2, 1, 1)
    assert refused(chain, chain.vote(voters[0], "d1", ["a2"])) == "double_vote"
    unregistered = SigningKey.generate()
    assert refused(chain, make_vote(CHAIN_ID, unregistered, "c1", "d1", ["a1"])) == "not_registered"


def test_a_gateway_key_rotation_leaves_the_certification_key_and_its_tokens_alone() -> None:
    """keys.rotate replaces the gateway's Ed25519 key (issue 14): tokens.issued is then signed like a
    registration, by the key in force (the revoked one gets ``revoked_key``), while tokens stay RSA
    signatures of the campaign's own certification key — one certified before the rotation still votes."""
    chain = certified_chain()
    before = SigningKey.generate()
    chain.commit_block([tokens(chain, 1)])
    early_token = issue(CERT, "c1", before)
    new_gateway = seeded_key("gateway-contractor-2")
    chain.commit_block([chain.sign("keys.rotate", KeysRotate("gateway", "gw", chain.gateway_key.public_key,
                                                             new_gateway.public_key, 0, "new contractor"))])
    chain.commit_block([])                                   # in force two blocks after its commit
    assert refused(chain, tokens(chain, 1, batch=1)) == "revoked_key"
    assert campaign(chain).tokens_issued == 1
    chain.commit_block([make_tokens_issued(CHAIN_ID, new_gateway, "c1", 1, 1)])
    after = SigningKey.generate()
    chain.commit_block([held_vote(before, early_token), held_vote(after, issue(CERT, "c1", after))])
    record = campaign(chain)
    assert record.spec.certification_key == CERT.modulus
    assert (record.tokens_issued, record.certified_voters, record.voter_held_ballots) == (2, 2, 2)
    third = SigningKey.generate()
    assert refused(chain, held_vote(third, issue(CERT, "c1", third))) == "tokens_exhausted"


def typed_chain() -> TestChain:
    """Certified campaigns of the three ballot types of PROTOCOL §14, two initiatives each in d1."""
    gateway = seeded_key("gateway").public_key
    ballots = {"knap": BallotSpec("knapsack", 1, 2, max_sum_cost=250_000),
               "cumul": BallotSpec("cumulative", 1, 2, min_sum_points=1, max_sum_points=10, max_points=6),
               "rank": BallotSpec("ordinal", 1, 2, rank_points=(3, 2))}
    initial: list[tuple[str, Any]] = []
    for campaign_id, ballot in ballots.items():
        initial.append(("campaign.create", campaign_spec(gateway, campaign_id=campaign_id, ballot=ballot,
                                                         certification_key=CERT.modulus)))
        initial += [("initiative.submit", initiative_spec(i, "d1", campaign_id=campaign_id, cost=cost))
                    for i, cost in (("a1", 100_000), ("a2", 200_000))]
    chain = new_chain(initial=initial)
    chain.open_voting()
    chain.commit_block([tokens(chain, 2, campaign_id) for campaign_id in ballots])
    return chain


@pytest.mark.parametrize("campaign_id, choices, points, code", [
    ("knap", ("a1", "a2"), None, "cost_cap"),                # 300,000 > 250,000
    ("knap", ("a1",), (1,), "bad_ballot"),                   # a set ballot carries no points
    ("cumul", ("a1", "a2"), (6, 5), "points_total"),         # 11 > 10
    ("cumul", ("a1",), (7,), "points_max"),                  # 7 > 6 for one initiative
    ("cumul", ("a1",), None, "bad_ballot"),                  # a scored ballot gives points
    ("rank", ("a1", "a2"), (3, 3), "rank_points"),           # rank 2 is worth 2
    ("rank", ("a2", "a1"), (2, 1), "rank_points"),
])
def test_a_voter_held_ballot_over_its_limits_is_refused_and_its_token_still_counts(
        campaign_id: str, choices: tuple[str, ...], points: tuple[int, ...] | None, code: str) -> None:
    """The gateway never sees a voter-held ballot: the state machine checks its type's limits as for
    any ballot, and a refused one spends nothing — the key and its token then cast a valid ballot."""
    chain = typed_chain()
    voter = SigningKey.generate()
    token = issue(CERT, campaign_id, voter)
    over = make_vote(CHAIN_ID, voter, campaign_id, "d1", choices, points, token=token)
    assert refused(chain, over) == code
    assert chain.ledger.state.store.get(certified_key_key(campaign_id, voter.public_key)) is None
    assert (campaign(chain, campaign_id).certified_voters, campaign(chain, campaign_id).total_ballots) == (0, 0)
    fits = {"knap": (("a2",), None), "cumul": (("a1", "a2"), (6, 4)), "rank": (("a2", "a1"), (3, 2))}[campaign_id]
    chain.commit_block([make_vote(CHAIN_ID, voter, campaign_id, "d1", fits[0], fits[1], token=token)])
    record = campaign(chain, campaign_id)
    assert (record.certified_voters, record.voter_held_ballots, record.total_ballots) == (1, 1, 1)
    if fits[1] is not None:
        assert [chain.ledger.state.points(campaign_id, choice) for choice in fits[0]] == list(fits[1])


def test_a_voter_held_scored_ballot_has_one_encoding() -> None:
    """Scored pairs in canonical order (PROTOCOL §14.2) inside the 5-element body of §16.3."""
    token = b"\x80" * 384
    body = vote_body("rank", "d1", ["a1", "a2"], [2, 3], token=token)
    assert body.to_wire() == ["rank", "d1", ["a2", "a1"], [3, 2], ["rank", token]]
    with pytest.raises(DecodeError):
        VoteCast.from_wire(["rank", "d1", ["a1", "a2"], [2, 3], ["rank", token]])


def test_checked_credentials_skip_the_token_check_that_the_caller_did() -> None:
    """``Tx.verify_credentials`` checks signature and token; True lets the state machine skip both."""
    voter = SigningKey.generate()
    token = issue(CERT, "c1", voter)
    good = decode_tx(held_vote(voter, token).raw)
    known = {"c1": CERT.modulus}
    assert good.verify_credentials(lambda campaign_id: known.get(campaign_id)) is True
    assert good.verify_credentials(lambda campaign_id: None) is False   # campaign unknown here: left to the state
    relabelled = decode_tx(held_vote(voter, token, campaign_id="c2", token_campaign_id="c1").raw)
    assert relabelled.verify_credentials(lambda campaign_id: CERT.modulus) is False
    with pytest.raises(SignatureError) as caught:
        decode_tx(held_vote(voter, b"\x42" * 384).raw).verify_credentials(lambda campaign_id: known.get(campaign_id))
    assert caught.value.code == "bad_token"
    plain = decode_tx(make_vote(CHAIN_ID, voter, "c1", "d1", ["a1"]).raw)
    assert plain.verify_credentials(lambda campaign_id: None) is True


def test_the_voter_held_vectors_printed_in_docs_protocol_md() -> None:
    """docs/PROTOCOL.md §16.6 quotes these bytes (RFC 9474's 4096-bit test key, RFC 8032's test key 2), a
    scored ballot too."""
    voter = SigningKey(bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"))
    message = token_message("veche-test", "c1", voter.public_key)
    assert message.hex() == (
        "76656368652f76312f766f7465722d746f6b656e93aa76656368652d74657374a26331c4203d4017c3e843895a92b70a"
        "a74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
    salt = bytes(range(48))
    encoded = emsa_pss_encode(message, OTHER_CERT.n.bit_length() - 1, salt)
    token = pow(int.from_bytes(encoded, "big"), OTHER_CERT.d, OTHER_CERT.n).to_bytes(512, "big")
    vectors = json.loads((DATA / "voter_held_vectors.json").read_text())
    assert token.hex() == vectors["token"]
    vote = make_vote("veche-test", voter, "c1", "d1", ["a1", "a2"], token=token)
    assert vote.raw.hex() == vectors["tx"]
    assert vote.hash.hex() == vectors["tx_hash"]
    scored = make_vote("veche-test", voter, "c1", "d1", ["a1", "a2"], [3, 7], token=token)
    assert scored.raw.hex() == vectors["scored_tx"] and scored.hash.hex() == vectors["scored_tx_hash"]
    assert scored.body.to_wire()[2:4] == [["a2", "a1"], [7, 3]]
    issued = make_tokens_issued("veche-test", voter, "c1", 7, 25)
    assert issued.raw.hex() == vectors["tokens_issued_tx"]
    spec = campaign_spec(seeded_key("gateway").public_key, districts=(District("d1", "District one", 1),),
                         certification_key=OTHER_CERT.modulus)
    assert codec.encode(spec.to_wire())[-515:].hex() == "c50200" + RFC_VECTOR["n"]
    printed = "".join((Path(__file__).parents[2] / "docs" / "PROTOCOL.md").read_text().split())
    for value in (message.hex(), token.hex(), vote.hash.hex(), issued.raw.hex(), issued.hash.hex(),
                  vote.raw.hex().replace(token.hex(), "‖token‖"), scored.hash.hex(),
                  scored.raw.hex().replace(token.hex(), "‖token‖")):
        assert value in printed
