"""RFC 6962 Merkle tree: roots against a reference, proofs for every leaf, and forged proofs."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.merkle import (
    EMPTY_ROOT, ProofError, inclusion_proof, leaf_hash, merkle_root, node_hash, root_from_proof, verify_inclusion,
)


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH from RFC 6962 §2.1, written independently of chain/merkle.py."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])).digest()


def reference_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) from RFC 6962 §2.1.1."""
    if len(leaves) <= 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < k:
        return reference_path(index, leaves[:k]) + [reference_root(leaves[k:])]
    return reference_path(index - k, leaves[k:]) + [reference_root(leaves[:k])]


def test_known_small_trees() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    a, b, c = b"a", b"b", b"c"
    assert merkle_root([a]) == hashlib.sha256(b"\x00a").digest()
    assert merkle_root([a, b]) == node_hash(leaf_hash(a), leaf_hash(b))
    assert merkle_root([a, b, c]) == node_hash(node_hash(leaf_hash(a), leaf_hash(b)), leaf_hash(c))
    assert inclusion_proof([a, b, c], 2) == [node_hash(leaf_hash(a), leaf_hash(b))]
    assert inclusion_proof([a, b, c], 0) == [leaf_hash(b), leaf_hash(c)]
    # A leaf and an inner node never hash alike (domain separation).
    assert leaf_hash(leaf_hash(a) + leaf_hash(b)) != node_hash(leaf_hash(a), leaf_hash(b))


@given(st.lists(st.binary(max_size=12), min_size=0, max_size=70))
@settings(max_examples=150, deadline=None)
def test_root_and_paths_match_the_rfc_definition(leaves: list[bytes]) -> None:
    assert merkle_root(leaves) == reference_root(leaves)
    for index in range(len(leaves)):
        assert inclusion_proof(leaves, index) == reference_path(index, leaves)


@given(st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=40, unique=True), st.data())
@settings(max_examples=120, deadline=None)
def test_every_leaf_verifies_and_nothing_else_does(leaves: list[bytes], data: st.DataObject) -> None:
    root = merkle_root(leaves)
    size = len(leaves)
    for index, leaf in enumerate(leaves):
        proof = inclusion_proof(leaves, index)
        verify_inclusion(leaf, index, size, proof, root)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(leaves, index)
    leaf = leaves[index]
    other_leaf = data.draw(st.binary(max_size=8).filter(lambda b: b != leaf))
    with pytest.raises(ProofError):
        verify_inclusion(other_leaf, index, size, proof, root)
    if size > 1:
        other_index = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
        with pytest.raises(ProofError):
            verify_inclusion(leaf, other_index, size, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, hashlib.sha256(root).digest())
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        tampered = list(proof)
        tampered[position] = hashlib.sha256(tampered[position]).digest()
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, tampered, root)
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, proof[:-1], root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof + [root], root)


@pytest.mark.parametrize("index, size", [(-1, 3), (3, 3), (0, 0)])
def test_out_of_range_indices(index: int, size: int) -> None:
    with pytest.raises(ProofError):
        root_from_proof(b"x", index, size, [])
    if size:
        with pytest.raises(ProofError):
            inclusion_proof([b"a", b"b", b"c"], index)


def test_proof_elements_must_be_hashes() -> None:
    leaves = [b"a", b"b"]
    with pytest.raises(ProofError):
        root_from_proof(b"a", 0, 2, [b"short"])
    assert root_from_proof(b"a", 0, 2, [leaf_hash(b"b")]) == merkle_root(leaves)
