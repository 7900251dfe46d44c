"""The per-campaign ballot index: where each campaign's ballots sit in the stored blocks.

A node keeps, beside each block, one index entry per ballot (``vote.cast``) it holds:

    V/<campaign_id>/<height u64><index u32>  ->  <offset u32><length u32>

``offset`` and ``length`` locate the ballot's bytes inside the block as stored (``B/<height>``, the
block's canonical encoding), so a campaign's ballots are read in commit order by walking its index
range and slicing the blocks it names — other campaigns' ballots and blocks are never touched. The
index is node-local, like the tx index: it is not state and not in the app hash; it is written in
the same synced batch as its block (``Ledger.commit``).

A store written before the index existed records, in ``M/ballot_index_from``, the first height its
index covers (0 for a chain indexed from genesis); campaigns created before that height are read by
the older block walk (``node/ballots.py``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

from chain import codec
from chain.block import Block

BALLOT_INDEX_PREFIX = b"V/"
BALLOT_INDEX_FROM_KEY = b"M/ballot_index_from"
VOTE_KIND_PREFIX = b"\x94\xa9vote.cast"   # an encoded envelope [kind, ...] whose kind is "vote.cast"
_POSITION = struct.Struct(">QI")
_SPAN = struct.Struct(">II")


def ballot_index_prefix(campaign_id: str) -> bytes:
    return BALLOT_INDEX_PREFIX + campaign_id.encode() + b"/"


def ballot_index_key(campaign_id: str, height: int, index: int) -> bytes:
    return ballot_index_prefix(campaign_id) + _POSITION.pack(height, index)


def read_index_key(key: bytes) -> tuple[int, int]:
    """(height, index) of an index key."""
    height, index = _POSITION.unpack(key[-_POSITION.size:])
    return int(height), int(index)


def encode_span(offset: int, length: int) -> bytes:
    return _SPAN.pack(offset, length)


def read_span(value: bytes) -> tuple[int, int]:
    offset, length = _SPAN.unpack(value)
    return int(offset), int(length)


def _str_at(raw: bytes, pos: int) -> tuple[int, int]:
    """(length, start) of the msgpack string whose header is at ``pos`` (fixstr or str8: ids are ≤ 64)."""
    lead = raw[pos]
    if 0xA0 <= lead <= 0xBF:
        return lead & 0x1F, pos + 1
    if lead == 0xD9:
        return raw[pos + 1], pos + 2
    raise ValueError("not a short string")


def vote_campaign(raw: bytes) -> str | None:
    """The campaign id of an encoded ``vote.cast`` transaction, or None for any other transaction.

    ``raw`` is a transaction of a checked block (strict canonical msgpack):
    ``[kind, chain_id, [campaign_id, …], signatures]``.
    """
    if not raw.startswith(VOTE_KIND_PREFIX):
        return None
    try:
        length, start = _str_at(raw, len(VOTE_KIND_PREFIX))   # chain id
        pos = start + length
        if not 0x90 <= raw[pos] <= 0x9F:                      # the body: a short array
            return None
        length, start = _str_at(raw, pos + 1)                 # campaign id
        return raw[start:start + length].decode()
    except (IndexError, ValueError, UnicodeDecodeError):
        return None


def _bin_header_bytes(size: int) -> int:
    return 2 if size < 256 else 3 if size < 65536 else 5


def _array_header_bytes(count: int) -> int:
    return 1 if count < 16 else 3 if count < 65536 else 5


def tx_offsets(block: Block) -> list[int]:
    """Where each transaction's bytes begin in ``block.encode()`` ([header, [tx, …], last_commit])."""
    position = 1 + len(codec.encode(block.header.to_wire())) + _array_header_bytes(len(block.txs))
    offsets = []
    for raw in block.txs:
        position += _bin_header_bytes(len(raw))
        offsets.append(position)
        position += len(raw)
    return offsets


def index_entries(block: Block) -> Iterator[tuple[bytes, bytes]]:
    """The index entries of ``block``'s ballots: (key, span)."""
    txs: Sequence[bytes] = block.txs
    offsets: list[int] | None = None
    for index, raw in enumerate(txs):
        campaign_id = vote_campaign(raw)
        if campaign_id is None:
            continue
        if offsets is None:
            offsets = tx_offsets(block)
        yield ballot_index_key(campaign_id, block.height, index), encode_span(offsets[index], len(raw))
