"""Reading a campaign's stored ballots for equal shares: merged by content as they are read, streamed
in bounded chunks, and always the same multiset of ballots as decoding every stored value."""

from __future__ import annotations

import hashlib
import random
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest

from chain import codec
from chain.ballot_groups import FRAME, Ballot, BallotGroups, frames
from chain.errors import StorageError
from chain.records import ballot_key, decode_ballot, decode_scored_ballot, encode_ballot
from chain.results import read_ballot_groups
from chain.storage import LevelStore
from chain.tx import BallotSpec
from tests.chain.helpers import campaign_spec, new_chain, seeded_key

IDS = [f"krasnoarmeysky-district-{n:02d}" for n in range(40)]


def tx_hash(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(4, "big")).digest()


def set_value(i: int, choices: tuple[str, ...]) -> bytes:
    return encode_ballot(tx_hash(i), choices)


def one_by_one(values: list[bytes], scored: bool) -> Counter[Ballot]:
    """What decoding each stored value on its own gives (the definition the groups must match)."""
    if scored:
        return Counter(tuple(zip(*decode_scored_ballot(v)[1:])) for v in values)
    return Counter(decode_ballot(v)[1] for v in values)


def grouped(values: list[bytes], scored: bool) -> BallotGroups:
    groups = BallotGroups(scored)
    for value in values:
        groups.add(value)
    return groups


def test_set_ballots_are_merged_by_content_and_decoded_once_each() -> None:
    values = [set_value(i, (IDS[i % 3], IDS[3 + i % 2])) for i in range(1_000)]
    groups = grouped(values, scored=False)
    assert groups.voters == 1_000 and groups.distinct == 6
    assert Counter(groups.ballots()) == one_by_one(values, scored=False)
    names = {id(name) for ballot in groups.ballots() for name in ballot}
    assert len(names) == 5  # one string object per initiative id


def test_scored_ballots_keep_their_points_and_order() -> None:
    values = [encode_ballot(tx_hash(i), (IDS[i % 4], IDS[5]), (1 + i % 3, 2)) for i in range(600)]
    values.append(encode_ballot(tx_hash(999), (IDS[5], IDS[0]), (2, 1)))  # same pairs, other order: another ballot
    groups = grouped(values, scored=True)
    ballots = groups.ballots()
    assert Counter(ballots) == one_by_one(values, scored=True)
    assert ballots[((IDS[5], 2), (IDS[0], 1))] == 1 and ballots[((IDS[0], 1), (IDS[5], 2))] == 50


def test_values_of_another_shape_are_decoded_as_before() -> None:
    """A hash that is not 32 bytes, a points array in a set campaign, no points in a scored one:
    each is decoded on its own, with the result a one-by-one decode gives."""
    short_hash = codec.encode([b"\x01" * 20, [IDS[0]]])
    with_points = encode_ballot(tx_hash(1), (IDS[0],), (3,))
    plain = set_value(2, (IDS[0],))
    set_groups = grouped([short_hash, with_points, plain], scored=False)
    assert set_groups.ballots() == {(IDS[0],): 3}
    scored_groups = grouped([plain, with_points], scored=True)
    assert scored_groups.ballots() == {(): 1, ((IDS[0], 3),): 1}


@pytest.mark.parametrize("value", [
    set_value(1, (IDS[0],)) + b"\x00",                                     # trailing byte
    b"\x92\xc4\x20" + tx_hash(1) + b"\x91\xd9\x02ab",                      # str8 for a 2-byte string: not canonical
    b"\x92\xc4\x20" + tx_hash(1) + b"\x91\x05",                            # a choice that is no string
    b"\x92\xc4\x20" + tx_hash(1),                                          # no choices at all
])
def test_a_corrupt_stored_ballot_is_a_storage_error_as_when_decoded_alone(value: bytes) -> None:
    with pytest.raises(StorageError):
        decode_ballot(value)
    with pytest.raises(StorageError):
        grouped([set_value(0, (IDS[0],)), value], scored=False).ballots()


def test_frames_are_bounded_and_carry_every_value_in_order() -> None:
    rng = random.Random(7)
    values = [set_value(i, tuple(rng.sample(IDS, rng.randint(1, 3)))) for i in range(5_000)]
    chunks = list(frames(values, chunk_bytes=4096))
    largest_value = max(len(v) for v in values) + FRAME.size
    assert len(chunks) > 10 and all(len(chunk) < 4096 + largest_value for chunk in chunks)
    streamed = BallotGroups(scored=False)
    for chunk in chunks:
        streamed.add_frames(chunk)
    assert streamed.voters == len(values)
    assert streamed.ballots() == grouped(values, scored=False).ballots()
    with pytest.raises(StorageError, match="truncated"):
        BallotGroups(scored=False).add_frames(chunks[0][:-1])
    with pytest.raises(StorageError, match="truncated"):
        BallotGroups(scored=False).add_frames(chunks[0] + b"\x01\x00")


def test_reading_a_campaigns_ballots_holds_the_distinct_ballots_not_every_ballot(tmp_path: Path) -> None:
    """A node's worker and ``veche verify`` read a campaign's ballots to count equal shares: a
    million ballots must not mean a million ballots in memory. The reader's peak stays the same for
    5,000 and for 40,000 ballots of the same 40 contents (before: a tuple per ballot, ≈ 100 bytes
    each, 4 MB for the 40,000)."""
    campaign = new_chain(campaign=campaign_spec(seeded_key("gateway").public_key,
                                                ballot=BallotSpec("approval", 1, 3))).ledger.state.campaigns["c1"]
    peaks: dict[int, int] = {}
    for count in (5_000, 40_000):
        store = LevelStore(tmp_path / f"db-{count}")
        try:
            store.write({ballot_key("c1", i.to_bytes(32, "big"), "d1"):
                         set_value(i, (IDS[i % 40], IDS[(i * 7 + 1) % 40], IDS[(i * 13 + 2) % 40]))
                         for i in range(count)})
            tracemalloc.start()
            try:
                ballots = read_ballot_groups(store, campaign).ballots()
                _, peaks[count] = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        finally:
            store.close()
        assert sum(ballots.values()) == count and len(ballots) == 40
        assert ballots[(IDS[1], IDS[8], IDS[15])] == count // 40
    assert peaks[40_000] < 1024 * 1024, peaks  # a constant ≈ 0.3 MB (the decoder's own buffers)
    assert peaks[40_000] < peaks[5_000] + 16 * 1024, peaks

