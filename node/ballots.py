"""A campaign's ballots in commit order, a page at a time: ``GET /api/v1/campaigns/{id}/ballots``.

Ballots live in the blocks (``B/<height>``) and, keyed by voter, in the state (``S/b/...``, no
height). Commit order is block order. A page walks the campaign's **ballot index** from the cursor
(``V/<campaign>/<height><index>`` → where the ballot sits in its block, chain/ballot_index.py): it
reads only the blocks that hold this campaign's ballots and slices out only those ballots, so its
cost follows the campaign's own ballots, not the chain's length or the other campaigns voting at
the same time. A store written before the index existed has no entries for campaigns created
before its ``ballot_index_from`` height; their pages walk the stored blocks from the cursor (the
older way: a campaign has ballots only between its creation and its close, every other
transaction is skipped by a byte-prefix check, see ``vote_prefix``).

A page is bounded by ``limit`` ballots and by how much it reads (``MAX_BLOCKS_PER_PAGE`` blocks,
``MAX_BYTES_PER_PAGE`` bytes of blocks), so a page may hold fewer than ``limit`` ballots (on the
block walk, even none over a long stretch without this campaign's ballots) and still carry a
``next`` cursor.
``next`` is null once the walk reached the end: the close, or the node's height for an open
campaign (ask again later with the last ballot's cursor to follow it).

The cursor is ``<height>:<index>``: the page starts strictly after transaction ``index`` of block
``height``. Clients should treat it as opaque and pass back what ``next`` says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgpack

from chain import codec
from chain.ballot_index import ballot_index_key, ballot_index_prefix, read_index_key, read_span
from chain.block import Block
from chain.errors import StoreCorrupt
from chain.ledger import Ledger
from chain.numbers import parse_decimal
from chain.records import STATUS_CLOSED, Campaign
from chain.crypto import sha256
from chain.tx import GATEWAY_HELD, VOTER_HELD
from node.errors import BadRequest

DEFAULT_LIMIT = 500
MAX_LIMIT = 2000
MAX_BLOCKS_PER_PAGE = 2000
MAX_BYTES_PER_PAGE = 8 * 1024 * 1024
MAX_INDEX = 999_999_999  # a cursor index "after every transaction of this block" (blocks hold ≤ 20,000)
CURSOR_PATTERN = re.compile(r"([0-9]{1,18}):([0-9]{1,9})")  # ASCII digits only (\d takes any script)


@dataclass(frozen=True, slots=True)
class Position:
    """Just after transaction ``index`` of block ``height`` (index -1: before the block's first)."""

    height: int
    index: int

    def cursor(self) -> str:
        return f"{self.height}:{self.index}"


@dataclass(frozen=True, slots=True)
class BallotPage:
    ballots: list[dict[str, Any]]
    end_height: int
    next: Position | None

    def to_json(self, campaign_id: str) -> dict[str, Any]:
        return {"campaign": campaign_id, "height": self.end_height, "ballots": self.ballots,
                "next": None if self.next is None else self.next.cursor()}


def vote_prefix(chain_id: str, campaign_id: str, scored: bool = False) -> tuple[bytes, bytes]:
    """How every encoded ballot of ``campaign_id`` begins (canonical msgpack, so exactly these bytes).

    ``[kind, chain_id, [campaign_id, district_id, choices], signatures]``: the array header, the
    kind, the chain id, the body's 3-element header and the campaign id. A scored ballot
    (cumulative, ordinal) has a 4-element body ``[campaign_id, district_id, choices, points]``; the
    ballot of a voter-held key a 5-element one (``[…, points, [token_campaign_id, token]]``).
    """
    body_header = b"\x94" if scored else b"\x93"
    head = b"\x94" + codec.encode("vote.cast") + codec.encode(chain_id)
    return head + body_header + codec.encode(campaign_id), head + b"\x95" + codec.encode(campaign_id)


def parse_cursor(value: str | None) -> Position | None:
    if value is None:
        return None
    match = CURSOR_PATTERN.fullmatch(value)
    if match is None:
        raise BadRequest(f"after must be a cursor from a previous page's next (<height>:<index>), "
                         f"got {value[:40]!r}", "bad_cursor")
    return Position(int(match.group(1)), int(match.group(2)))


def parse_limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    limit = parse_decimal(value, 9)
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}, got {value[:32]!r}", "bad_limit")
    return limit


def end_height(ledger: Ledger, campaign: Campaign) -> int:
    """The last block that can hold a ballot of ``campaign`` on this node now."""
    if campaign.status == STATUS_CLOSED:
        return min(campaign.closed_height, ledger.height)
    return ledger.height


def ballot_json(raw: bytes, height: int, index: int) -> dict[str, Any]:
    """A committed ballot as JSON. Its block was checked when it was stored (every transaction
    decoded strictly and applied), so a plain unpack is enough here: a full ``decode_tx`` would
    be most of this route's cost."""
    _, _, body, signatures = msgpack.unpackb(raw, raw=False)
    ballot = {"voter_key": signatures[0][0].hex(), "district_id": body[1], "choices": body[2],
              "height": height, "index": index, "tx_hash": sha256(raw).hex(),
              "mode": VOTER_HELD if len(body) == 5 else GATEWAY_HELD}
    if len(body) >= 4 and body[3]:
        ballot["points"] = body[3]
    return ballot


def read_ballots(ledger: Ledger, campaign: Campaign, after: Position | None, limit: int) -> BallotPage:
    """Up to ``limit`` ballots of ``campaign`` committed after ``after`` (from its creation if None)."""
    if campaign.created_height >= ledger.ballot_index_from:
        return read_indexed(ledger, campaign, after, limit)
    return walk_blocks(ledger, campaign, after, limit)


def read_indexed(ledger: Ledger, campaign: Campaign, after: Position | None, limit: int) -> BallotPage:
    """The page from the campaign's ballot index: only the blocks holding its ballots are read."""
    campaign_id = campaign.campaign_id
    prefixes = vote_prefix(ledger.params.chain_id, campaign_id, campaign.spec.ballot.scored)
    last = end_height(ledger, campaign)
    prefix = ballot_index_prefix(campaign_id)
    start = None if after is None else ballot_index_key(campaign_id, after.height, min(after.index + 1, 2**32 - 1))
    ballots: list[dict[str, Any]] = []
    height_read = -1
    raw_block = b""
    blocks_read = 0
    bytes_read = 0
    previous: Position | None = None
    for key, value in ledger.store.iterate(prefix, start=start):
        height, index = read_index_key(key)
        if height > last:
            break
        if height != height_read:
            if previous is not None and (blocks_read >= MAX_BLOCKS_PER_PAGE or bytes_read >= MAX_BYTES_PER_PAGE):
                return BallotPage(ballots, last, previous)
            stored = ledger.raw_block(height)
            if stored is None:
                raise LookupError(f"block {height} is missing from this node's store")
            raw_block, height_read = stored, height
            blocks_read += 1
            bytes_read += len(raw_block)
        offset, length = read_span(value)
        tx_raw = raw_block[offset:offset + length]
        if len(tx_raw) != length or not tx_raw.startswith(prefixes):
            raise StoreCorrupt(f"the ballot index of campaign {campaign_id} points at block {height} "
                               f"transaction {index}, which is not one of its ballots")
        ballots.append(ballot_json(tx_raw, height, index))
        previous = Position(height, index)
        if len(ballots) >= limit:
            return BallotPage(ballots, last, previous)
    return BallotPage(ballots, last, None)


def walk_blocks(ledger: Ledger, campaign: Campaign, after: Position | None, limit: int) -> BallotPage:
    """The page by walking the stored blocks (campaigns created before the store had its index)."""
    campaign_id = campaign.campaign_id
    prefixes = vote_prefix(ledger.params.chain_id, campaign_id, campaign.spec.ballot.scored)
    last = end_height(ledger, campaign)
    start = Position(max(campaign.created_height, 1), -1)
    position = after if after is not None and (after.height, after.index) > (start.height, start.index) else start
    ballots: list[dict[str, Any]] = []
    height = position.height + 1 if position.index >= MAX_INDEX else position.height
    blocks_read = 0
    bytes_read = 0
    while height <= last:
        if blocks_read >= MAX_BLOCKS_PER_PAGE or bytes_read >= MAX_BYTES_PER_PAGE:
            return BallotPage(ballots, last, Position(height - 1, MAX_INDEX))
        raw = ledger.raw_block(height)
        if raw is None:  # the node is at `last`; a missing block is a damaged store
            raise LookupError(f"block {height} is missing from this node's store")
        blocks_read += 1
        bytes_read += len(raw)
        first = position.index + 1 if height == position.height else 0
        txs = Block.decode(raw).txs
        for index in range(first, len(txs)):
            tx_raw = txs[index]
            if not tx_raw.startswith(prefixes):
                continue
            ballots.append(ballot_json(tx_raw, height, index))
            if len(ballots) >= limit:
                return BallotPage(ballots, last, Position(height, index))
        height += 1
    return BallotPage(ballots, last, None)

