"""A deterministic simulated network for the consensus engine (indy-plenum ``SimNetwork`` style).

One seeded ``random.Random`` drives everything: message delays (so reordering), drops, duplicates,
partitions that heal, node crashes with restart from the persisted signing state (optionally with
the data directory wiped), skewed node clocks, block sync on ``PeerAhead`` and on the node's status
poll, and Byzantine validators. Time is a fake millisecond clock; nothing sleeps. ``Simulation.run()`` returns the
invariant violations it found (empty list = the run is correct).

Validator set changes (``SimConfig.set_changes``): spare nodes run from the start as followers; a
``SetSwitch(height, remove, add)`` takes node ``remove`` out of the set and puts node ``add`` at its
end from ``height`` on (as a ``validators.update`` committed at ``height - 2`` would). A node's
engine learns a height's set only as far as its own chain tells it (committed height + 2), like a
real node. Validator indices are positions in the set of a message's height, not node numbers.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chain.block import CommitCertificate, Validator, ValidatorSet, verify_certificate
from chain.crypto import SigningKey, sha256, verify
from chain.errors import SignatureError
from consensus import (
    Broadcast,
    Commit,
    Engine,
    EvidenceFound,
    Message,
    Output,
    PeerAhead,
    PersistSigningState,
    Proposal,
    RejectedMessage,
    Send,
    SigningState,
    TimeoutConfig,
    Vote,
    decode_message,
    encode_evidence,
    encode_message,
    make_proposal,
    make_vote,
)
from consensus.messages import message_slot
from tests.consensus.toy_app import BAD_TX_PREFIX, ToyApp, ToyBlock, encode_block

CHAIN_ID = "veche-sim"
SIM_TIMEOUTS = TimeoutConfig(propose_ms=300, propose_delta_ms=150, prevote_ms=150, prevote_delta_ms=150,
                             precommit_ms=150, precommit_delta_ms=150, rebroadcast_ms=600, idle_poll_ms=100,
                             recheck_ms=50, catchup_grace_ms=400)

BYZANTINE_BEHAVIOURS = ("equivocate", "double_vote", "silent", "invalid_block", "garbage", "fork")
EQUIVOCATING = ("equivocate", "double_vote", "fork", "split")
"""``split`` (not drawn by the random scenarios): both of the above, but every peer gets only one of
the two signed versions — no peer sees an equivocation unless honest validators pass it on."""


@dataclass(frozen=True, slots=True)
class Partition:
    start_ms: int
    end_ms: int
    groups: tuple[frozenset[int], ...]

    def separates(self, a: int, b: int, now: int) -> bool:
        if not self.start_ms <= now < self.end_ms:
            return False
        return not any(a in group and b in group for group in self.groups)


@dataclass(frozen=True, slots=True)
class Crash:
    node: int
    at_ms: int
    down_ms: int
    wipe: bool = False


@dataclass(frozen=True, slots=True)
class SetSwitch:
    """From block ``height`` on, node ``remove`` leaves the validator set and node ``add`` joins at its end."""

    height: int
    remove: int
    add: int


@dataclass
class SimConfig:
    n: int = 4
    seed: int = 0
    byzantine: dict[int, str] = field(default_factory=dict)
    min_delay_ms: int = 2
    max_delay_ms: int = 40
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    partitions: tuple[Partition, ...] = ()
    crashes: tuple[Crash, ...] = ()
    crash_node: int | None = None
    crash_after_outputs: tuple[int, ...] = ()
    """Crash ``crash_node`` just before it handles its k-th output (k counted over the whole run)."""
    crash_down_ms: int = 200
    max_skew_ms: int = 0
    precision_ms: int = 500
    heartbeat_ms: int = 400
    batch_ms: int = 5
    tx_mean_interval_ms: int = 120
    tx_until_ms: int = 10**9
    target_height: int = 5
    stabilise_ms: int = 0
    """Drops, duplicates, partitions and crashes all end before this time."""
    liveness_bound_ms: int = 30_000
    timeouts: TimeoutConfig = SIM_TIMEOUTS
    status_poll_ms: int = 2000
    """Each validator asks its peers' status this often and block-syncs when one is more than one
    height ahead — the node's safety net beside ``PeerAhead`` (node/sync.py: every 2 s, lag tolerance
    1), which covers fewer than ⌊n/3⌋+1 validators ahead. 0: off. Its timing and its choice of peer
    come from a random generator of their own, so a poll that finds nothing to do changes nothing."""
    spares: int = 0
    """Nodes n .. n + spares - 1: followers at first, validators once a ``SetSwitch`` adds them."""
    set_changes: tuple[SetSwitch, ...] = ()

    @property
    def nodes(self) -> int:
        return self.n + self.spares


@dataclass
class SimNode:
    index: int
    key: SigningKey
    behaviour: str | None
    skew_ms: int
    app: ToyApp
    engine: Engine | None = None
    persisted: bytes | None = None
    chain: list[tuple[bytes, bytes, CommitCertificate]] = field(default_factory=list)
    wake_at: int | None = None
    outputs_handled: int = 0
    sync_pending: bool = False
    crashed_ever: bool = False
    evidence_slots: set[tuple[int, int, int, str]] = field(default_factory=set)
    rejected: Counter[str] = field(default_factory=Counter)
    alternatives: dict[tuple[int, int], bytes] = field(default_factory=dict)
    twins: dict[tuple[int, int, int, str], Message] = field(default_factory=dict)

    @property
    def honest(self) -> bool:
        return self.behaviour is None


@dataclass
class SimResult:
    violations: list[str]
    heights: list[int]
    finished_ms: int
    messages: int
    rejected: Counter[str]
    evidence: int
    max_round: int
    stats: Counter[str]


class Simulation:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.poll_rng = random.Random(f"status-poll-{config.seed}")
        self.now = 0
        self._queue: list[tuple[int, int, str, tuple[Any, ...]]] = []
        self._seq = 0
        self.messages = 0
        self.violations: list[str] = []
        self.commits: dict[int, dict[int, bytes]] = {}
        self.signed: dict[tuple[int, int, int, str], bytes] = {}
        self.variants: dict[tuple[int, tuple[int, int, int, str]], set[bytes]] = {}
        self.all_txs: list[bytes] = []
        self.max_round = 0
        self.stats: Counter[str] = Counter()
        self._verified: dict[tuple[bytes, bytes, bytes], bool] = {}
        keys = [SigningKey(self.rng.randbytes(32)) for _ in range(config.n)]
        keys += [SigningKey(random.Random(f"spare-{config.seed}-{i}").randbytes(32)) for i in range(config.spares)]
        self._public = {k.public_key: k for k in keys}
        self._node_of_key = {k.public_key: i for i, k in enumerate(keys)}
        self._schedule: list[tuple[int, ValidatorSet]] = []
        members = list(range(config.n))
        self._schedule.append((0, self._set_of(members, keys)))
        for switch in sorted(config.set_changes, key=lambda s: s.height):
            members = [m for m in members if m != switch.remove] + [switch.add]
            self._schedule.append((switch.height, self._set_of(members, keys)))
        self.validators = self._schedule[0][1]
        self.nodes = [
            SimNode(index=i, key=keys[i], behaviour=config.byzantine.get(i),
                    skew_ms=self.rng.randint(-config.max_skew_ms, config.max_skew_ms) if i < config.n else 0,
                    app=self._new_app())
            for i in range(config.nodes)
        ]

    # --- validator sets ---------------------------------------------------------------------------

    @staticmethod
    def _set_of(members: list[int], keys: list[SigningKey]) -> ValidatorSet:
        return ValidatorSet(tuple(Validator(f"node{m}", keys[m].public_key) for m in members))

    def set_at(self, height: int) -> ValidatorSet:
        """The validator set in force at ``height`` (the truth every chain agrees on)."""
        found = self._schedule[0][1]
        for start, validators in self._schedule:
            if start <= height:
                found = validators
        return found

    def _known_set(self, node: SimNode, height: int) -> ValidatorSet:
        """What ``node`` can know: its chain fixes the sets up to its committed height + 2."""
        return self.set_at(min(height, len(node.chain) + 2))

    def index_of(self, node: SimNode, height: int) -> int | None:
        return self.set_at(height).index_of(node.key.public_key)

    def node_at(self, height: int, validator_index: int) -> SimNode | None:
        validators = self.set_at(height)
        if not 0 <= validator_index < validators.size:
            return None
        return self.nodes[self._node_of_key[validators.public_key(validator_index)]]

    def _link_index(self, receiver: SimNode, sender: SimNode) -> int | None:
        """The sender as the receiver's engine knows the link: its index at the receiver's height."""
        engine = receiver.engine
        return None if engine is None else self._known_set(receiver, engine.height).index_of(sender.key.public_key)

    # --- setup ----------------------------------------------------------------------------------

    def _new_app(self) -> ToyApp:
        return ToyApp(precision_ms=self.config.precision_ms, rng=random.Random(self.rng.random()))

    def _verify(self, public_key: bytes, signature: bytes, message: bytes) -> None:
        """Real Ed25519, memoised across the simulated nodes (each real node checks every message itself)."""
        key = (public_key, signature, message)
        valid = self._verified.get(key)
        if valid is None:
            try:
                verify(public_key, signature, message, cache_key=True)
                valid = True
            except SignatureError:
                valid = False
            self._verified[key] = valid
        if not valid:
            raise SignatureError("signature does not verify")

    def _signer(self, node: SimNode) -> Callable[[bytes], bytes]:
        return node.key.sign

    def _start_engine(self, node: SimNode) -> None:
        state = SigningState.decode(node.persisted) if node.persisted is not None else None
        if state is not None:
            self.stats["restart"] += 1
            if state.height == len(node.chain) + 1:
                self.stats["restart_mid_height"] += 1
            elif state.height > len(node.chain) + 1:
                self.stats["restart_wiped_behind"] += 1
        last_commit = node.chain[-1][2] if node.chain else None
        node.engine = Engine(
            CHAIN_ID, self.validators, None, self._signer(node), node.app, self.config.timeouts,
            heartbeat_ms=self.config.heartbeat_ms, batch_ms=self.config.batch_ms, signing_state=state,
            start_height=len(node.chain) + 1, last_commit=last_commit, verifier=self._verify,
            validator_sets=lambda height: self._known_set(node, height), my_key=node.key.public_key,
        )
        for tx in self.all_txs:
            node.app.add_tx(tx)
        self._call(node, lambda engine, now: engine.start(now))

    # --- event loop -----------------------------------------------------------------------------

    def _push(self, at: int, kind: str, *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, kind, args))

    def run(self) -> SimResult:
        cfg = self.config
        for node in self.nodes:
            self._start_engine(node)
        for crash in cfg.crashes:
            self._push(crash.at_ms, "crash", crash.node, crash.down_ms, crash.wipe)
        if cfg.status_poll_ms:
            for node in self.nodes:
                self._push(self.poll_rng.randint(1, cfg.status_poll_ms), "status_poll", node.index)
        self._push(self.rng.randint(0, cfg.tx_mean_interval_ms), "tx")
        deadline = cfg.stabilise_ms + cfg.liveness_bound_ms
        while self._queue:
            at, _, kind, args = heapq.heappop(self._queue)
            self.now = max(self.now, at)
            if self.now > deadline or self.violations:
                break
            getattr(self, "_on_" + kind)(*args)
            if self.now >= cfg.stabilise_ms and self._all_reached_target():
                break
        return self._finish()

    def _all_reached_target(self) -> bool:
        return all(len(n.chain) >= self.config.target_height for n in self.nodes if n.honest)

    def node_now(self, node: SimNode) -> int:
        return self.now + node.skew_ms

    def _call(self, node: SimNode, action: Callable[[Engine, int], list[Output]]) -> None:
        if node.engine is None:
            return
        outputs = action(node.engine, self.node_now(node))
        self._handle_outputs(node, outputs)
        engine = node.engine
        if engine is None:
            return
        self.max_round = max(self.max_round, engine.round)
        deadline = engine.next_deadline()
        if deadline is None:
            return
        at = max(self.now, deadline - node.skew_ms)
        if node.wake_at is None or at < node.wake_at:
            node.wake_at = at
            self._push(at, "wake", node.index, at)

    def _on_wake(self, index: int, at: int) -> None:
        node = self.nodes[index]
        if node.wake_at != at:
            return
        node.wake_at = None
        self._call(node, lambda engine, now: engine.tick(now))

    def _on_deliver(self, index: int, data: bytes, sender: int) -> None:
        node = self.nodes[index]
        engine = node.engine
        if engine is None:
            return
        if self.nodes[sender].behaviour in EQUIVOCATING:
            self._note_variant(node, engine, data)
        link = self._link_index(node, self.nodes[sender])
        self._call(node, lambda e, now: e.receive_data(data, now, link))

    def _on_tx(self) -> None:
        cfg = self.config
        if self.now > cfg.tx_until_ms:
            return
        tx = b"tx-%d-%d" % (cfg.seed, len(self.all_txs))
        self.all_txs.append(tx)
        for node in self.nodes:
            self._push(self.now + self.rng.randint(0, 30), "tx_arrive", node.index, tx)
        self._push(self.now + int(self.rng.expovariate(1 / cfg.tx_mean_interval_ms)) + 1, "tx")

    def _on_tx_arrive(self, index: int, tx: bytes) -> None:
        node = self.nodes[index]
        if node.engine is None:
            return
        node.app.add_tx(tx)
        self._call(node, lambda engine, now: engine.tick(now))

    def _on_crash(self, index: int, down_ms: int, wipe: bool) -> None:
        node = self.nodes[index]
        if node.engine is None:
            return
        node.engine = None
        node.wake_at = None
        node.crashed_ever = True
        node.sync_pending = False
        if wipe:
            node.chain = []
            node.app = self._new_app()
        else:
            mempool_lost = self._new_app()
            for block in node.app.blocks:
                mempool_lost.blocks.append(block)
                mempool_lost.committed_txs.update(block.txs)
            node.app = mempool_lost
        self._push(self.now + down_ms, "restart", index)

    def _on_restart(self, index: int) -> None:
        """The engine starts again from the persisted signing state. The real node also polls every
        peer once at start-up and fetches up to the best height (node/sync.py); that poll waits 0.5 s
        and misses peers that are cut off or not up yet, so it is left out: the harder case, where
        catch-up comes from ``PeerAhead`` (its own signing state's included) and the status poll."""
        node = self.nodes[index]
        if node.engine is None:
            self._start_engine(node)

    def _peers_ahead(self, node: SimNode, by: int = 0) -> list[SimNode]:
        return [p for p in self.nodes if p is not node and p.engine is not None
                and len(p.chain) > len(node.chain) + by and not self._separated(node.index, p.index)]

    def _on_status_poll(self, index: int) -> None:
        """The node's safety net: a peer more than one height ahead → block sync, whatever the engine says."""
        node = self.nodes[index]
        self._push(self.now + self.config.status_poll_ms, "status_poll", index)
        if node.engine is None or node.sync_pending or not self._peers_ahead(node, by=1):
            return
        node.sync_pending = True
        self.stats["sync_poll"] += 1
        self._push(self.now + self.poll_rng.randint(10, 60), "sync", index, True)

    def _on_sync(self, index: int, polled: bool = False) -> None:
        node = self.nodes[index]
        node.sync_pending = False
        if node.engine is None:
            return
        peers = self._peers_ahead(node)
        if not peers:
            return
        peer = (self.poll_rng if polled else self.rng).choice(peers)
        self.stats["sync"] += 1
        for block, block_hash, certificate in peer.chain[len(node.chain):]:
            height = len(node.chain) + 1
            verify_certificate(certificate, self.set_at(height), CHAIN_ID, height=height, block_hash=block_hash)
            if sha256(block) != block_hash:
                raise AssertionError("synced block does not match its certificate")
            self._apply(node, height, block, block_hash, certificate)
            self._call(node, lambda engine, now: engine.observe_certificate(certificate, now))
        node.engine.skip_to(len(node.chain) + 1, node.chain[-1][2])
        self._call(node, lambda engine, now: engine.tick(now))

    # --- outputs --------------------------------------------------------------------------------

    def _handle_outputs(self, node: SimNode, outputs: list[Output]) -> None:
        cfg = self.config
        for output in outputs:
            if node.index == cfg.crash_node and node.outputs_handled in cfg.crash_after_outputs:
                node.outputs_handled += 1
                self._on_crash(node.index, cfg.crash_down_ms, False)
                return
            node.outputs_handled += 1
            if isinstance(output, PersistSigningState):
                node.persisted = output.state.encode()
                if node.honest:
                    for message in output.state.last_signed:
                        self._record_signed(node, message)
            elif isinstance(output, Broadcast):
                if node.honest:
                    if output.message.signer == self.index_of(node, output.message.height):
                        self._record_signed(node, output.message)
                    self._send_all(node, encode_message(output.message))
                else:
                    self._byzantine_send(node, output.message)
            elif isinstance(output, Send):
                self.stats["targeted_send"] += 1
                own = output.message.signer == self.index_of(node, output.message.height)
                target = self.node_at(output.message.height, output.to_index)
                if target is not None and (node.honest or not own or node.behaviour != "silent"):
                    self._send(node, target.index, encode_message(output.message))
            elif isinstance(output, Commit):
                self._apply(node, output.height, output.encoded_block, output.block_hash, output.certificate)
            elif isinstance(output, EvidenceFound):
                self.stats["evidence"] += 1
                node.evidence_slots.add(message_slot(output.evidence.first))
                self._send_all(node, encode_evidence(output.evidence))
            elif isinstance(output, RejectedMessage):
                node.rejected[output.error.code] += 1
            elif isinstance(output, PeerAhead):
                self.stats["peer_ahead"] += 1
                if not node.sync_pending:
                    node.sync_pending = True
                    self._push(self.now + self.rng.randint(10, 60), "sync", node.index)

    def _apply(self, node: SimNode, height: int, block: bytes, block_hash: bytes,
               certificate: CommitCertificate) -> None:
        if height != len(node.chain) + 1:
            self.violations.append(f"node {node.index} committed height {height} at chain length {len(node.chain)}")
            return
        try:
            verify_certificate(certificate, self.set_at(height), CHAIN_ID, height=height, block_hash=block_hash)
            node.app.apply(block)
        except Exception as exc:  # any failure here is an invariant violation, reported with the seed
            self.violations.append(f"node {node.index} committed an invalid block at height {height}: {exc}")
            return
        node.chain.append((block, block_hash, certificate))
        if node.honest:
            seen = self.commits.setdefault(height, {})
            for other, other_hash in seen.items():
                if other_hash != block_hash:
                    self.violations.append(f"agreement: nodes {other} and {node.index} differ at height {height}")
            seen[node.index] = block_hash

    def _record_signed(self, node: SimNode, message: Message) -> None:
        slot = message_slot(message)
        signed = message.signing_bytes()
        earlier = self.signed.setdefault(slot, signed)
        if earlier != signed:
            self.violations.append(f"honest validator {node.index} double-signed {slot}")

    def _note_variant(self, node: SimNode, engine: Engine, data: bytes) -> None:
        if not node.honest or node.crashed_ever:
            return
        try:
            message = decode_message(data)
        except Exception:
            return
        sender = self.node_at(message.height, message.signer)
        if sender is None or sender.behaviour not in EQUIVOCATING:
            return
        if message.chain_id != CHAIN_ID or message.height != engine.height or message.round > engine.round + 1:
            return
        self.variants.setdefault((node.index, message_slot(message)), set()).add(message.signing_bytes())

    # --- the network ----------------------------------------------------------------------------

    def _separated(self, a: int, b: int) -> bool:
        return any(p.separates(a, b, self.now) for p in self.config.partitions)

    def _send(self, sender: SimNode, target: int, data: bytes) -> None:
        cfg = self.config
        self.messages += 1
        if self._separated(sender.index, target):
            return
        unstable = self.now < cfg.stabilise_ms
        if unstable and self.rng.random() < cfg.drop_rate:
            return
        copies = 2 if unstable and self.rng.random() < cfg.duplicate_rate else 1
        for _ in range(copies):
            delay = self.rng.randint(cfg.min_delay_ms, cfg.max_delay_ms)
            self._push(self.now + delay, "deliver", target, data, sender.index)

    def _send_all(self, sender: SimNode, data: bytes) -> None:
        for target in range(self.config.nodes):
            if target != sender.index:
                self._send(sender, target, data)

    # --- Byzantine validators -------------------------------------------------------------------

    def _byzantine_send(self, node: SimNode, message: Message) -> None:
        behaviour = node.behaviour
        me = self.index_of(node, message.height)
        own = message.signer == me
        others = [i for i in range(self.config.nodes) if i != node.index]
        if behaviour == "silent" and own:
            return
        if behaviour == "split" and own:
            self._split_send(node, others, message, self._twin(node, message), both=False)
            return
        if behaviour in ("equivocate", "fork") and own and isinstance(message, Proposal):
            block = ToyBlock(message.height, (), self.rng.randbytes(8), self.node_now(node))
            data = encode_block(block)
            alternative: Message = make_proposal(CHAIN_ID, message.height, message.round, message.pol_round,
                                                 sha256(data), data, message.signer, self._signer(node))
            node.alternatives[(message.height, message.round)] = sha256(data)
            self._split_send(node, others, message, alternative)
            return
        if behaviour == "fork" and own and isinstance(message, Vote):
            # Votes for its own alternative block when it has one, else for whatever it did not vote for.
            other = node.alternatives.get((message.height, message.round))
            if other is None or other == message.block_hash:
                other = self._other_proposed_hash(node, message)
            alternative = make_vote(CHAIN_ID, message.step, message.height, message.round, other,
                                    message.signer, self._signer(node))
            self._split_send(node, others, message, alternative)
            return
        if behaviour == "double_vote" and own and isinstance(message, Vote):
            other_hash = self.rng.randbytes(32) if message.block_hash is None else None
            alternative = make_vote(CHAIN_ID, message.step, message.height, message.round, other_hash,
                                    message.signer, self._signer(node))
            self._split_send(node, others, message, alternative)
            return
        if behaviour == "invalid_block" and own and isinstance(message, Proposal):
            if self.rng.random() < 0.5:
                block = ToyBlock(message.height, (BAD_TX_PREFIX + self.rng.randbytes(4),), b"x", self.node_now(node))
            else:
                block = ToyBlock(message.height, (), b"y", self.node_now(node) + 20 * self.config.precision_ms)
            data = encode_block(block)
            bad = make_proposal(CHAIN_ID, message.height, message.round, message.pol_round, sha256(data), data,
                                message.signer, self._signer(node))
            self._send_all(node, encode_message(bad))
            return
        if behaviour == "garbage":
            self._send_all(node, self._garbage(node, message))
        self._send_all(node, encode_message(message))

    def _other_proposed_hash(self, node: SimNode, vote: Vote) -> bytes | None:
        """A block some proposal of this height carried, other than the one voted for (or nil)."""
        engine = node.engine
        if engine is None or engine.height != vote.height:
            return None
        hashes = sorted({p.block_hash for held in engine._state.proposals.values() for p in held} - {vote.block_hash})
        return self.rng.choice(hashes) if hashes else None

    def _twin(self, node: SimNode, message: Message) -> Message:
        """A second, conflicting message for the same slot (a valid other block, or another vote);
        the same one again when the message is re-sent."""
        slot = message_slot(message)
        twin = node.twins.get(slot)
        if twin is None:
            twin = node.twins[slot] = self._new_twin(node, message)
        return twin

    def _new_twin(self, node: SimNode, message: Message) -> Message:
        if isinstance(message, Proposal):
            block = ToyBlock(message.height, (), self.rng.randbytes(8), self.node_now(node))
            data = encode_block(block)
            return make_proposal(CHAIN_ID, message.height, message.round, message.pol_round, sha256(data), data,
                                 message.signer, self._signer(node))
        other_hash = self.rng.randbytes(32) if message.block_hash is None else None
        return make_vote(CHAIN_ID, message.step, message.height, message.round, other_hash, message.signer,
                         self._signer(node))

    def _split_send(self, node: SimNode, others: list[int], first: Message, second: Message, *,
                    both: bool = True) -> None:
        order = others[:]
        self.rng.shuffle(order)
        half = len(order) // 2
        for position, target in enumerate(order):
            chosen = first if position < half else second
            self._send(node, target, encode_message(chosen))
            if both and position == 0:
                self._send(node, target, encode_message(second if chosen is first else first))

    def _garbage(self, node: SimNode, message: Message) -> bytes:
        choice = self.rng.randrange(6)
        data = encode_message(message)
        if choice == 0:
            return self.rng.randbytes(self.rng.randint(0, 80))
        if choice == 1:
            return data[: self.rng.randint(0, len(data) - 1)]
        if choice == 2:
            return data[:-1] + bytes([data[-1] ^ 1])  # flips a signature bit
        me = message.signer
        if choice == 3:
            return encode_message(make_vote("other-chain", "prevote", message.height, message.round, None,
                                            me, self._signer(node)))
        if choice == 4:
            wrong = (message.height + message.round + 1) % self.config.n
            proposer = wrong if wrong != me else (wrong + 1) % self.config.n
            return encode_message(make_proposal(CHAIN_ID, message.height, message.round, -1, b"\x01" * 32, b"",
                                                proposer, self._signer(node)))
        return encode_message(make_vote(CHAIN_ID, "prevote", message.height, message.round, None,
                                        self.config.n + 3, self._signer(node)))

    # --- invariants -----------------------------------------------------------------------------

    def _finish(self) -> SimResult:
        cfg = self.config
        violations = list(self.violations)
        for node in self.nodes:
            if node.honest and len(node.chain) < cfg.target_height:
                violations.append(f"liveness: honest node {node.index} reached height {len(node.chain)} "
                                  f"< {cfg.target_height} by {self.now} ms")
        for (index, slot), seen in self.variants.items():
            if len(seen) < 2 or self.nodes[index].crashed_ever:  # a crash may lose the EvidenceFound output
                continue
            if not any(slot in n.evidence_slots for n in self.nodes if n.honest):
                violations.append(f"evidence: node {index} saw equivocation {slot} but no honest node recorded it")
        rejected: Counter[str] = Counter()
        for node in self.nodes:
            if node.honest:
                rejected.update(node.rejected)
        return SimResult(violations, [len(n.chain) for n in self.nodes], self.now, self.messages, rejected,
                         sum(len(n.evidence_slots) for n in self.nodes if n.honest), self.max_round, self.stats)

