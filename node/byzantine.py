"""TEST-ONLY Byzantine validator behaviours, for the fault proving ground (``scripts/chaos``).

Off unless the environment variable ``VECHE_BYZANTINE`` names behaviours (comma-separated); an
operator never sets it. With it set, a validator node logs a CRITICAL line at start and wraps the
consensus driver's broadcast (``broadcast_hook``) so that what its honest engine signs is abused
on the way out:

  equivocate-proposals  as proposer, also sign a second, different valid block (same height,
                        round and pol_round, block time + 1 ms, no transactions)
  equivocate-votes      for every prevote and precommit, also sign a conflicting one (nil for a
                        block, a made-up block hash for nil)
  withhold-prevotes     never send its prevotes            (peers see a silent validator)
  withhold-precommits   never send its precommits
  split                 with equivocation: half of the peers get only the honest message, the
                        other half only the twin (without it both reach every peer, in opposite
                        orders: each side counts a different one first, and every peer holds
                        the two signed messages that prove the equivocation)
  garbage               about twice a second, push junk into every peer link: undecodable bytes,
                        votes with bad signatures (its own index and an honest validator's),
                        a proposal although not the proposer, a validly signed vote a million
                        heights ahead, and undecodable transactions

The twin of a message is remembered per (height, round, step), so re-sends stay consistent.
The engine's own signing state is untouched: the node itself still believes it is honest.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import replace

from chain.block import Block
from chain.crypto import SigningKey
from chain.errors import VecheError
from consensus.engine import Engine
from consensus.errors import MalformedMessage
from consensus.messages import (
    STEP_PRECOMMIT,
    STEP_PREVOTE,
    Message,
    Proposal,
    Vote,
    decode_message,
    encode_message,
    make_proposal,
    make_vote,
)
from node.chain_app import ChainApp
from node.p2p import PeerNetwork

log = logging.getLogger("veche.node.byzantine")

ENV_VAR = "VECHE_BYZANTINE"
BEHAVIOURS = frozenset({"equivocate-proposals", "equivocate-votes", "withhold-prevotes", "withhold-precommits",
                        "split", "garbage"})
GARBAGE_EVERY_S = 0.5
MAX_TWINS = 4096


def parse_behaviours(text: str) -> frozenset[str]:
    chosen = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(chosen - BEHAVIOURS)
    if unknown:
        raise ValueError(f"{ENV_VAR}: unknown behaviours {', '.join(unknown)} (known: {', '.join(sorted(BEHAVIOURS))})")
    return chosen


class ByzantineBroadcast:
    """Stands in for ``PeerNetwork.broadcast`` on a validator that misbehaves on purpose."""

    def __init__(self, behaviours: frozenset[str], chain_id: str, key: SigningKey, engine: Engine,
                 app: ChainApp, peers: PeerNetwork, *, seed: int | None = None) -> None:
        self.behaviours = behaviours
        self.chain_id = chain_id
        self.key = key
        self.engine = engine
        self.app = app
        self.peers = peers
        self.rng = random.Random(seed)
        self.twins: dict[tuple[int, int, str], bytes | None] = {}
        self.counts: dict[str, int] = {}
        self._garbage_at = 0.0

    @property
    def my_index(self) -> int:
        """Our index in the set of the engine's height (-1 while not a validator there)."""
        index = self.engine.my_index
        return -1 if index is None else index

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def __call__(self, data: bytes) -> None:
        try:
            message = decode_message(data)
        except MalformedMessage:
            self.peers.broadcast(data)
            return
        if "garbage" in self.behaviours:
            self._maybe_garbage(message)
        if isinstance(message, Vote) and f"withhold-{message.step}s" in self.behaviours:
            self._count(f"withheld-{message.step}")
            return
        twin = self._twin(message)
        if twin is None:
            self.peers.broadcast(data)
            return
        split = "split" in self.behaviours
        for position, link in enumerate(self.peers.links):
            first, second = (data, twin) if position % 2 == 0 else (twin, data)
            link.push_message(first)
            if not split:
                link.push_message(second)
        self._count(f"equivocated-{message.step}")

    # --- equivocation ------------------------------------------------------------------------------

    def _twin(self, message: Message) -> bytes | None:
        if message.signer != self.my_index:
            return None
        wanted = ("equivocate-proposals" if isinstance(message, Proposal) else "equivocate-votes")
        if wanted not in self.behaviours:
            return None
        slot = (message.height, message.round, message.step)
        if slot in self.twins:
            return self.twins[slot]
        twin = self._make_twin(message)
        if len(self.twins) >= MAX_TWINS:
            self.twins.pop(next(iter(self.twins)))
        self.twins[slot] = twin
        return twin

    def _make_twin(self, message: Message) -> bytes | None:
        if isinstance(message, Vote):
            if message.block_hash is None:
                other: bytes | None = hashlib.sha256(b"veche-byzantine/%d/%d" % (message.height, message.round)).digest()
            else:
                other = None
            twin_vote = make_vote(self.chain_id, message.step, message.height, message.round, other, self.my_index,
                                  self.key.sign)
            return encode_message(twin_vote)
        try:
            original = Block.decode(message.block)
            ledger = self.app.ledger
            if ledger.height + 1 != message.height:
                return None
            built = ledger.build_block([], time_ms=original.header.time_ms + 1, round_=message.round,
                                       last_commit=self.engine.last_commit)
        except VecheError as exc:
            log.warning("byzantine: could not build a twin block at height %d: %s", message.height, exc.message)
            return None
        block = built.block
        if block.hash() == message.block_hash:
            return None
        twin = make_proposal(self.chain_id, message.height, message.round, message.pol_round, block.hash(),
                             block.encode(), self.my_index, self.key.sign)
        return encode_message(twin)

    # --- garbage -------------------------------------------------------------------------------------

    def _maybe_garbage(self, message: Message) -> None:
        now = time.monotonic()
        if now - self._garbage_at < GARBAGE_EVERY_S:
            return
        self._garbage_at = now
        height, round_ = message.height, message.round
        bad_signature = bytes(self.rng.getrandbits(8) for _ in range(64))
        others = [i for i in range(self.engine.validators.size) if i != self.my_index]
        impostor = self.rng.choice(others) if others else self.my_index
        junk_messages = [
            bytes(self.rng.getrandbits(8) for _ in range(self.rng.randrange(1, 200))),
            encode_message(Vote(self.chain_id, STEP_PREVOTE, height, round_, None, self.my_index, bad_signature)),
            encode_message(Vote(self.chain_id, STEP_PRECOMMIT, height, round_, None, impostor, bad_signature)),
            encode_message(make_vote(self.chain_id, STEP_PREVOTE, height + 1_000_000, 0, None, self.my_index,
                                     self.key.sign)),
        ]
        if self.engine.validators.proposer_index(height, round_ + 7) != self.my_index:
            fake = Proposal(self.chain_id, height, round_ + 7, -1, hashlib.sha256(b"junk").digest(), b"\x90",
                            self.my_index, b"")
            junk_messages.append(encode_message(replace(fake, signature=self.key.sign(fake.signing_bytes()))))
        junk_txs = [bytes(self.rng.getrandbits(8) for _ in range(self.rng.randrange(1, 300))) for _ in range(3)]
        for link in self.peers.links:
            for junk in junk_messages:
                link.push_message(junk)
            link.push_txs(junk_txs)
        self._count("garbage")


def broadcast_hook(chain_id: str, key: SigningKey, engine: Engine, app: ChainApp,
                   peers: PeerNetwork) -> Callable[[bytes], None]:
    """``peers.broadcast`` — or, only when ``VECHE_BYZANTINE`` is set, a misbehaving stand-in."""
    spec = os.environ.get(ENV_VAR, "").strip()
    if not spec:
        return peers.broadcast
    behaviours = parse_behaviours(spec)
    log.critical("BYZANTINE TEST MODE (%s=%s): this validator will misbehave on purpose; never use this outside "
                 "tests", ENV_VAR, ",".join(sorted(behaviours)))
    return ByzantineBroadcast(behaviours, chain_id, key, engine, app, peers)
