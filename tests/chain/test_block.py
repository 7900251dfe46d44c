"""Headers, blocks, commit certificates, signing bytes and quorum safety."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import codec
from chain.block import (
    MAX_BLOCK_BYTES, MAX_TXS_PER_BLOCK, STEP_PRECOMMIT, STEP_PREVOTE, ZERO_HASH, Block, BlockHeader,
    CommitCertificate, Validator, ValidatorSet, make_certificate, make_header, max_faulty,
    proposal_signing_bytes, quorum_size, skip_threshold, verify_certificate, vote_signing_bytes,
)
from chain.crypto import SigningKey, sha256
from chain.errors import BlockInvalid, CertificateError, DecodeError
from chain.merkle import merkle_root
from tests.chain.helpers import seeded_key

CHAIN = "veche-test"
HASH_A = sha256(b"block A")
HASH_B = sha256(b"block B")


def keys(n: int) -> list[SigningKey]:
    return [seeded_key(f"validator-{i}") for i in range(n)]


def validator_set(signers: list[SigningKey]) -> ValidatorSet:
    return ValidatorSet(tuple(Validator(f"v{i}", k.public_key) for i, k in enumerate(signers)))


def precommit(key: SigningKey, height: int, round_: int, block_hash: bytes, chain_id: str = CHAIN) -> bytes:
    return key.sign(vote_signing_bytes(chain_id, STEP_PRECOMMIT, height, round_, block_hash))


def header(**overrides: Any) -> BlockHeader:
    values: dict[str, Any] = dict(chain_id=CHAIN, height=2, round=0, time_ms=1_700_000_000_000,
                                  previous_hash=HASH_A, tx_root=merkle_root([]), app_hash=HASH_B, proposer=1,
                                  last_commit_hash=ZERO_HASH)
    values.update(overrides)
    return BlockHeader(**values)


# --- quorum arithmetic -------------------------------------------------------------------------


@pytest.mark.parametrize("n, quorum, faulty, skip", [
    (1, 1, 0, 1), (2, 2, 0, 1), (3, 3, 0, 2), (4, 3, 1, 2), (5, 4, 1, 2), (6, 5, 1, 3), (7, 5, 2, 3),
    (8, 6, 2, 3), (9, 7, 2, 4), (10, 7, 3, 4),
])
def test_quorum_sizes(n: int, quorum: int, faulty: int, skip: int) -> None:
    assert quorum_size(n) == quorum
    assert max_faulty(n) == faulty
    assert skip_threshold(n) == skip
    # Any two quorums overlap in more than f validators, so in at least one honest one.
    assert 2 * quorum - n > faulty


def test_validator_set_rules() -> None:
    signers = keys(4)
    validators = validator_set(signers)
    assert validators.size == 4 and validators.quorum == 3 and validators.skip == 2
    assert [validators.proposer_index(h, r) for h, r in [(1, 0), (1, 1), (4, 0), (5, 2)]] == [1, 2, 0, 3]
    assert validators.index_of(signers[2].public_key) == 2
    assert validators.index_of(b"\x00" * 32) is None
    with pytest.raises(CertificateError):
        validators.public_key(4)
    with pytest.raises(BlockInvalid):
        ValidatorSet(())
    with pytest.raises(BlockInvalid):
        ValidatorSet((Validator("a", signers[0].public_key), Validator("b", signers[0].public_key)))


# --- signing bytes (pinned: an independent verifier must produce exactly these) -----------------


def test_vote_and_proposal_signing_bytes() -> None:
    assert vote_signing_bytes("c", STEP_PRECOMMIT, 5, 1, b"\xaa" * 32) == (
        b"veche/v1/consensus.precommitc" + bytes.fromhex("9305" "01" "c420") + b"\xaa" * 32)
    assert vote_signing_bytes("c", STEP_PREVOTE, 300, 0, None) == (
        b"veche/v1/consensus.prevotec" + bytes.fromhex("93cd012c00c400"))
    assert proposal_signing_bytes("c", 1, 0, -1, b"\xbb" * 32) == (
        b"veche/v1/consensus.proposalc" + bytes.fromhex("940100ffc420") + b"\xbb" * 32)


# --- headers and blocks ------------------------------------------------------------------------


def test_header_round_trip_and_hash() -> None:
    original = header()
    assert BlockHeader.from_wire(codec.decode(original.encode())) == original
    assert original.hash() == sha256(original.encode())
    assert original.encode() == codec.encode([CHAIN, 2, 0, 1_700_000_000_000, HASH_A, merkle_root([]), HASH_B, 1,
                                              ZERO_HASH])


@pytest.mark.parametrize("index, value", [
    (0, ""), (0, "bad chain/id"), (0, 5), (1, 0), (1, -1), (1, True), (2, -1), (3, "now"), (4, b"\x00" * 31),
    (5, None), (6, b"\x00" * 33), (7, -3), (8, "x"), (1, 2**63),
])
def test_malformed_header_fields(index: int, value: Any) -> None:
    wire = header().to_wire()
    wire[index] = value
    with pytest.raises(DecodeError):
        BlockHeader.from_wire(wire)


@pytest.mark.parametrize("wire", [None, [], [1] * 8, [1] * 10, "header"])
def test_malformed_header_shapes(wire: Any) -> None:
    with pytest.raises(DecodeError):
        BlockHeader.from_wire(wire)


def make_block(txs: tuple[bytes, ...] = (b"tx-1", b"tx-2"), height: int = 2,
               last_commit: CommitCertificate | None = None) -> Block:
    signers = keys(4)
    if last_commit is None and height > 1:
        last_commit = make_certificate(height - 1, 0, HASH_A, [(i, precommit(k, height - 1, 0, HASH_A))
                                                              for i, k in enumerate(signers[:3])])
    head = make_header(chain_id=CHAIN, height=height, round_=0, time_ms=1_700_000_000_000,
                       previous_hash=HASH_A if height > 1 else ZERO_HASH, txs=txs, app_hash=HASH_B,
                       proposer=height % 4, last_commit=last_commit)
    return Block(head, txs, last_commit)


def test_block_round_trip_and_structure() -> None:
    block = make_block()
    block.check_structure()
    decoded = Block.decode(block.encode())
    assert decoded == block and decoded.hash() == block.hash() and decoded.height == 2
    make_block(height=1, last_commit=None).check_structure()


def test_block_structure_checks() -> None:
    block = make_block()
    with pytest.raises(BlockInvalid, match="tx root"):
        replace(block, txs=(b"tx-1",)).check_structure()
    with pytest.raises(BlockInvalid, match="last commit hash"):
        replace(block, header=replace(block.header, last_commit_hash=ZERO_HASH)).check_structure()
    with pytest.raises(BlockInvalid, match="missing"):
        replace(block, last_commit=None, header=replace(block.header, last_commit_hash=ZERO_HASH)).check_structure()
    first = make_block(height=1)
    with pytest.raises(BlockInvalid, match="block 1"):
        commit = block.last_commit
        assert commit is not None
        replace(first, last_commit=commit, header=replace(first.header, last_commit_hash=commit.hash())).check_structure()
    wrong_height = make_certificate(5, 0, HASH_A, [(0, b"\x00" * 64)])
    with pytest.raises(BlockInvalid, match="wrong height"):
        replace(block, last_commit=wrong_height,
                header=replace(block.header, last_commit_hash=wrong_height.hash())).check_structure()
    other_block = make_certificate(1, 0, HASH_B, [(0, b"\x00" * 64)])
    with pytest.raises(BlockInvalid, match="previous block"):
        replace(block, last_commit=other_block,
                header=replace(block.header, last_commit_hash=other_block.hash())).check_structure()


def test_block_limits() -> None:
    many = tuple(b"%d" % i for i in range(MAX_TXS_PER_BLOCK + 1))
    with pytest.raises(BlockInvalid, match="transactions"):
        make_block(txs=many).check_structure()
    big = tuple(bytes([i]) * 60_000 for i in range(MAX_BLOCK_BYTES // 60_000 + 1))
    with pytest.raises(BlockInvalid, match="larger"):
        make_block(txs=big).check_structure()
    with pytest.raises(DecodeError):
        Block.decode(codec.encode(make_block(txs=big).to_wire()))
    with pytest.raises(DecodeError):
        Block.from_wire([header().to_wire(), [b"x"] * (MAX_TXS_PER_BLOCK + 1), None])


@pytest.mark.parametrize("wire", [
    None, [], [1, 2], [1, [], None],
    "HEADER-[[b'x'], None, 1]",
])
def test_malformed_blocks(wire: Any) -> None:
    if wire == "HEADER-[[b'x'], None, 1]":
        wire = [header().to_wire(), ["not bytes"], None]
    with pytest.raises(DecodeError):
        Block.from_wire(wire)


def test_block_decode_rejects_non_canonical_bytes() -> None:
    block = make_block()
    data = block.encode()
    assert data[0] == 0x93
    with pytest.raises(DecodeError):
        Block.decode(b"\xdc\x00\x03" + data[1:])


# --- certificates ------------------------------------------------------------------------------


def certificate_for(signers: list[SigningKey], indices: list[int], height: int = 7, round_: int = 2,
                    block_hash: bytes = HASH_A) -> CommitCertificate:
    return make_certificate(height, round_, block_hash,
                            [(i, precommit(signers[i], height, round_, block_hash)) for i in indices])


def test_certificate_accepts_a_quorum() -> None:
    signers = keys(4)
    validators = validator_set(signers)
    certificate = certificate_for(signers, [3, 0, 1])
    assert [i for i, _ in certificate.signatures] == [0, 1, 3]
    verify_certificate(certificate, validators, CHAIN, height=7, block_hash=HASH_A)
    assert CommitCertificate.decode(certificate.encode()) == certificate


def test_certificate_rejections() -> None:
    signers = keys(4)
    validators = validator_set(signers)
    with pytest.raises(CertificateError, match="quorum"):
        verify_certificate(certificate_for(signers, [0, 1]), validators, CHAIN)
    with pytest.raises(CertificateError, match="height"):
        verify_certificate(certificate_for(signers, [0, 1, 2]), validators, CHAIN, height=8)
    with pytest.raises(CertificateError, match="another block"):
        verify_certificate(certificate_for(signers, [0, 1, 2]), validators, CHAIN, block_hash=HASH_B)
    with pytest.raises(CertificateError):
        verify_certificate(certificate_for(signers, [0, 1, 2]), validators, "other-chain")
    good = certificate_for(signers, [0, 1, 2])
    forged = replace(good, signatures=good.signatures[:2] + ((2, b"\x00" * 64),))
    with pytest.raises(CertificateError, match="does not verify"):
        verify_certificate(forged, validators, CHAIN)
    # A signature for another round or a prevote is not a precommit for this round.
    other_round = replace(good, round=3)
    with pytest.raises(CertificateError):
        verify_certificate(other_round, validators, CHAIN)
    prevotes = make_certificate(7, 2, HASH_A, [
        (i, signers[i].sign(vote_signing_bytes(CHAIN, STEP_PREVOTE, 7, 2, HASH_A))) for i in range(3)])
    with pytest.raises(CertificateError):
        verify_certificate(prevotes, validators, CHAIN)
    outsider = SigningKey.generate()
    with_outsider = make_certificate(7, 2, HASH_A, list(good.signatures) + [(4, precommit(outsider, 7, 2, HASH_A))])
    with pytest.raises(CertificateError, match="out of range"):
        verify_certificate(with_outsider, validators, CHAIN)
    duplicated = CommitCertificate(7, 2, HASH_A, good.signatures[:2] + (good.signatures[1],))
    with pytest.raises(CertificateError):
        verify_certificate(duplicated, validators, CHAIN)


@pytest.mark.parametrize("wire", [
    [0, 0, HASH_A, []], [1, -1, HASH_A, []], [1, 0, b"x", []], [1, 0, HASH_A, None],
    [1, 0, HASH_A, [[0, b"s" * 63]]], [1, 0, HASH_A, [[0]]], [1, 0, HASH_A, [[1, b"s" * 64], [0, b"s" * 64]]],
    [1, 0, HASH_A, [[1, b"s" * 64], [1, b"s" * 64]]], [1, 0, HASH_A, [[True, b"s" * 64]]],
    [1, 0, HASH_A, [[i, b"s" * 64] for i in range(1025)]], [1, 0, HASH_A], "certificate",
])
def test_malformed_certificates(wire: Any) -> None:
    with pytest.raises(DecodeError):
        CommitCertificate.from_wire(wire)


# --- fork safety: conflicting certificates ---------------------------------------------------------


def conflicting_certificates_exist(n: int, faulty: int, assignment: tuple[int, ...]) -> bool:
    """With ``faulty`` validators signing both A and B and each honest validator signing at most
    one of them (``assignment``: 0 = A, 1 = B, 2 = neither), do valid certificates exist for both?"""
    signers = SIGNERS[n]
    validators = validator_set(signers)
    a_indices = list(range(faulty)) + [faulty + i for i, side in enumerate(assignment) if side == 0]
    b_indices = list(range(faulty)) + [faulty + i for i, side in enumerate(assignment) if side == 1]
    results = []
    for indices, block_hash in ((a_indices, HASH_A), (b_indices, HASH_B)):
        signatures = PRECOMMITS[n][block_hash]
        certificate = make_certificate(9, 0, block_hash, [(i, signatures[i]) for i in indices])
        try:
            verify_certificate(certificate, validators, CHAIN, height=9, block_hash=block_hash)
            results.append(True)
        except CertificateError:
            results.append(False)
    return all(results)


SIGNERS = {n: keys(n) for n in range(4, 11)}
PRECOMMITS = {n: {h: [precommit(k, 9, 0, h) for k in SIGNERS[n]] for h in (HASH_A, HASH_B)} for n in SIGNERS}


@given(st.data())
@settings(max_examples=120, deadline=None)
def test_no_two_conflicting_certificates_with_f_faulty(data: st.DataObject) -> None:
    n = data.draw(st.integers(4, 10))
    faulty = max_faulty(n)
    assignment = tuple(data.draw(st.lists(st.integers(0, 2), min_size=n - faulty, max_size=n - faulty)))
    assert not conflicting_certificates_exist(n, faulty, assignment)


@pytest.mark.parametrize("n", range(4, 11))
def test_even_the_best_split_of_honest_validators_gives_no_fork(n: int) -> None:
    faulty = max_faulty(n)
    honest = n - faulty
    # The split that comes closest: honest validators divided as evenly as possible.
    for a_count in range(honest + 1):
        assignment = tuple([0] * a_count + [1] * (honest - a_count))
        assert not conflicting_certificates_exist(n, faulty, assignment)


@pytest.mark.parametrize("n", range(4, 11))
def test_one_faulty_validator_beyond_the_safety_bound_gives_a_fork(n: int) -> None:
    """The check above can fail: with 2q - n faulty validators (f + 1 when n = 3f + 1) some split
    of the honest ones does give two certificates, so the quorum rule is what prevents forks."""
    faulty = 2 * quorum_size(n) - n
    assert faulty > max_faulty(n)
    honest = n - faulty
    found = any(conflicting_certificates_exist(n, faulty, tuple(split))
                for split in itertools.product((0, 1), repeat=honest))
    assert found


def test_two_f_plus_one_would_not_be_a_safe_quorum_for_n_5() -> None:
    n, f = 5, max_faulty(5)
    assert 2 * (2 * f + 1) - n <= f       # the overlap of two 2f+1 quorums could be all faulty
    assert 2 * quorum_size(n) - n > f     # the overlap of two real quorums cannot


# --- structural fuzzing of blocks and certificates ----------------------------------------------------

odd_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=8),
              st.binary(max_size=70)),
    lambda inner: st.lists(inner, max_size=4), max_leaves=10)


def replace_somewhere(value: Any, data: st.DataObject) -> Any:
    if isinstance(value, list) and value and data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(value) - 1))
        copy = list(value)
        copy[index] = replace_somewhere(value[index], data)
        return copy
    return data.draw(odd_values)


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_mutated_blocks_and_certificates_raise_only_decode_error(data: st.DataObject) -> None:
    from chain.ledger import decode_block_with_certificate
    block = make_block()
    assert block.last_commit is not None
    wire = [block.to_wire(), block.last_commit.to_wire()]
    mutated = replace_somewhere(wire, data)
    raw = codec.encode(mutated)
    try:
        decoded_block, certificate = decode_block_with_certificate(raw)
    except DecodeError:
        return
    try:
        decoded_block.check_structure()
    except BlockInvalid:
        return
    assert codec.encode([decoded_block.to_wire(), certificate.to_wire()]) == raw
