"""A stored block is re-checked against the header chain before it is served (docs/NODE.md §12)."""

from __future__ import annotations

import pytest

from chain import codec
from chain.errors import StoreCorrupt
from chain.ledger import HASH_PREFIX, block_key, cert_key
from chain.storage import MemoryStore
from tests.transparency.chainkit import ChainBuilder, build_genesis, make_keys


def chain_of(blocks: int) -> tuple[ChainBuilder, MemoryStore]:
    keys = make_keys()
    store = MemoryStore()
    builder = ChainBuilder(store, build_genesis(keys), keys)
    for _ in range(blocks):
        builder.add_block([])
    return builder, store


def test_a_good_block_is_served_as_stored() -> None:
    builder, _ = chain_of(3)
    ledger = builder.ledger
    for height in (1, 2, 3):
        assert ledger.vouched_block_with_certificate(height) == ledger.raw_block_with_certificate(height)
    assert ledger.vouched_block_with_certificate(4) is None


@pytest.mark.parametrize("tamper", ["header", "certificate", "hash_index", "last_commit", "garbage"])
def test_a_block_that_does_not_match_is_never_served(tamper: str) -> None:
    builder, store = chain_of(3)
    ledger = builder.ledger
    raw = codec.decode(store.get(block_key(2)) or b"")
    if tamper == "header":
        raw[0][3] += 1  # time_ms: the block no longer hashes to what the certificate names
        store.write({block_key(2): codec.encode(raw)})
    elif tamper == "certificate":
        cert = codec.decode(store.get(cert_key(2)) or b"")
        cert[2] = b"\x07" * 32
        store.write({cert_key(2): codec.encode(cert)})
    elif tamper == "hash_index":
        block_hash = codec.decode(store.get(cert_key(2)) or b"")[2]
        store.write({HASH_PREFIX + block_hash: None})
    elif tamper == "last_commit":
        raw[2][1] += 1  # the carried certificate of block 1 no longer hashes to last_commit_hash
        store.write({block_key(2): codec.encode(raw)})
    else:
        store.write({block_key(2): b"\xc1garbage"})
    with pytest.raises(StoreCorrupt):
        ledger.vouched_block_with_certificate(2)
    assert ledger.vouched_block_with_certificate(1) is not None


def test_the_top_block_must_be_the_ledger_s_last_block() -> None:
    builder, _ = chain_of(2)
    ledger = builder.ledger
    ledger.last_block_hash = b"\x01" * 32
    with pytest.raises(StoreCorrupt, match="top of the chain"):
        ledger.vouched_block_with_certificate(2)
