"""A campaign's stored ballots merged by content: each distinct ballot once, with how many cast it.

The Method of Equal Shares treats voters with the same ballot alike (chain/equal_shares.py merges
them before it counts), so what it needs is the distinct ballots and the number of voters behind
each. A large campaign's ballots repeat a lot — the 1,178,000 ballots of the big chain's ib-2035 are
7,585 distinct ones — so a reader that merges as it reads holds memory for the distinct ballots,
not for every ballot (docs/BENCHMARKS.md, "Equal shares on the big chain: memory").

A stored ballot (an ``S/b/`` value, chain/records.py) is ``[tx_hash, choices]`` or, in a scored
campaign, ``[tx_hash, choices, points]``. Its canonical encoding starts with the same three bytes
for every ballot of a campaign (an array of 2 or 3, then a 32-byte byte string); the bytes after the
hash are the ballot's content. Values with that start are counted by their content bytes, and each
distinct content is decoded once — with the hash bytes zeroed, by ``decode_scored_ballot``, so it
passes exactly the strict checks (canonical form, types, lengths) the whole value would. Any other
value is decoded on its own, as before. The result is the same multiset of ballots as decoding every
value one by one, so the count — and the published result hash — cannot differ.

``frames`` / ``BallotGroups.add_frames``: the same values in length-prefixed chunks of bounded size,
as a node streams a campaign's ballots to its equal-shares worker process (node/results.py) without
holding them itself.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import Union

from chain.errors import StorageError
from chain.records import decode_scored_ballot

SetBallot = tuple[str, ...]                     # the initiatives a set ballot names, as stored
ScoredBallot = tuple[tuple[str, int], ...]      # (initiative, points) pairs of a scored ballot
Ballot = Union[SetBallot, ScoredBallot]

HASH_BYTES = 32
SET_HEAD = b"\x92\xc4\x20"      # fixarray of 2, bin 8 of 32 bytes: [tx_hash, choices]
SCORED_HEAD = b"\x93\xc4\x20"   # fixarray of 3: [tx_hash, choices, points]
CONTENT_AT = len(SET_HEAD) + HASH_BYTES
FRAME = struct.Struct("<I")     # each value in a chunk is preceded by its length
CHUNK_BYTES = 64 * 1024         # a chunk ends at the first value that takes it to this size


class BallotGroups:
    """Stored ballots of one campaign, merged by content as they are added."""

    __slots__ = ("scored", "voters", "_head", "_by_content", "_others", "_names")

    def __init__(self, scored: bool) -> None:
        self.scored = scored
        self.voters = 0
        self._head = SCORED_HEAD if scored else SET_HEAD
        self._by_content: dict[bytes, int] = {}
        self._others: dict[Ballot, int] = {}
        self._names: dict[str, str] = {}   # one string object per initiative id

    def add(self, value: bytes) -> None:
        """One stored ballot value (``S/b/…``)."""
        self.voters += 1
        if value[:CONTENT_AT - HASH_BYTES] == self._head and len(value) > CONTENT_AT:
            content = value[CONTENT_AT:]
            self._by_content[content] = self._by_content.get(content, 0) + 1
        else:
            ballot = self._decode(value)
            self._others[ballot] = self._others.get(ballot, 0) + 1

    def add_frames(self, chunk: bytes) -> None:
        """The values of one chunk made by ``frames``; a truncated chunk is a StorageError."""
        head, by_content = self._head, self._by_content
        offset, end = 0, len(chunk)
        count = 0
        while offset < end:
            if offset + FRAME.size > end:
                raise StorageError("a chunk of stored ballots is truncated")
            (size,) = FRAME.unpack_from(chunk, offset)
            offset += FRAME.size
            stop = offset + size
            if stop > end:
                raise StorageError("a chunk of stored ballots is truncated")
            if size > CONTENT_AT and chunk[offset:offset + CONTENT_AT - HASH_BYTES] == head:
                content = chunk[offset + CONTENT_AT:stop]
                by_content[content] = by_content.get(content, 0) + 1
            else:
                ballot = self._decode(chunk[offset:stop])
                self._others[ballot] = self._others.get(ballot, 0) + 1
            count += 1
            offset = stop
        self.voters += count

    def ballots(self) -> dict[Ballot, int]:
        """Each distinct ballot with its number of voters (every content decoded strictly, once).

        Set ballots are tuples of initiative ids, scored ballots tuples of (id, points), in stored
        order; each id is one string object shared by every ballot naming it.
        """
        merged: dict[Ballot, int] = {}
        zero_hash = self._head + bytes(HASH_BYTES)
        for content, weight in self._by_content.items():
            ballot = self._decode(zero_hash + content)
            merged[ballot] = merged.get(ballot, 0) + weight
        for ballot, weight in self._others.items():
            merged[ballot] = merged.get(ballot, 0) + weight
        return merged

    @property
    def distinct(self) -> int:
        """Distinct stored contents so far (ballots that decode alike are merged by ``ballots``)."""
        return len(self._by_content) + len(self._others)

    def _decode(self, value: bytes) -> Ballot:
        _, choices, points = decode_scored_ballot(value)
        names = self._names
        if self.scored:
            return tuple((names.setdefault(choice, choice), point) for choice, point in zip(choices, points))
        return tuple(names.setdefault(choice, choice) for choice in choices)


def frames(values: Iterable[bytes], chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """``values`` as chunks of length-prefixed values, each at most ``chunk_bytes`` plus one value."""
    buffer = bytearray()
    pack = FRAME.pack
    for value in values:
        buffer += pack(len(value))
        buffer += value
        if len(buffer) >= chunk_bytes:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)
