"""One node: ledger, mempool, consensus driver, peer links, block sync, results — and their tasks.

``Node`` opens everything synchronously (LevelDB, genesis, key, signing state) and ``close()``s
it; ``run(session)`` runs the node's long-lived tasks in one ``asyncio.TaskGroup``: the consensus
driver (validators), one sender per peer link, the gossip admission worker, block sync, the
equal-shares worker, the forwarder and the mempool expiry. If any task fails, the group cancels
the others and ``run`` raises: the process stops rather than limp on.

Who forwards: an observer always; a validator's node while its key is not in the set of the next
height (a spare started before its ``validators.update`` takes effect, or a validator removed from
the set but still running) — its peers no longer take its gossip, so what clients send it must reach
the validators the way an observer's does. A validator in the set gossips instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

import aiohttp

from collections.abc import Callable

from chain.block import ValidatorSet
from chain.crypto import SigningKey, read_key_file, verify
from chain.errors import StorageError, StoreCorrupt, UpgradeRequired, VecheError
from chain.governance import LATEST_PROTOCOL_VERSION
from chain.ledger import Ledger
from chain.storage import LevelStore
from consensus.engine import Engine
from consensus.messages import Evidence, verify_evidence
from consensus.outputs import TimeoutConfig
from genesis.config import NodeConfig
from genesis.forwarding import ProxyTrust
from genesis.forwarding import parse_networks as proxy_networks
from genesis.model import Genesis, load_genesis
from node import byzantine
from node.chain_app import ChainApp, CommittedBlock
from node.config import NodeLimits
from node.documents.service import DocumentService
from node.documents.store import DocumentStore
from node.cosign.store import RequestStore
from node.driver import Driver, wall_clock_ms
from node.evidence import EvidenceStore, evidence_per_validator
from node.errors import ConfigError
from node.forward import REFORWARD_AFTER_S, Forwarder
from node.admission import AdmissionControl, auto_node_rate, measure_verify_rate, parse_networks
from node.mempool import Admission, Mempool
from node.metrics import NodeMetrics
from node.p2p import GossipQueue, Inbound, PeerInfo, PeerNetwork
from node.results import Results
from node.ops.disk import DiskWatch
from node.ops.faults import classify, explain
from node.ops.recovery import recover_floor
from node.signing_state import SigningStateFile
from node.sync import BlockSync

log = logging.getLogger("veche.node")

VALIDATOR_STATUS_POLL_S = 2.0
PROTOCOL_VERSION_ENV = "VECHE_MAX_PROTOCOL_VERSION"
"""TEST-ONLY: lower the protocol version this node applies (to rehearse an upgrade it does not support)."""
OBSERVER_PENDING_TTL_MS = 120_000
LAG_PROBE_S = 0.1


_VERIFY_RATE: list[float] = []


def verify_rate_of_this_machine() -> float:
    """Measured once per process (``node.admission.measure_verify_rate``)."""
    if not _VERIFY_RATE:
        _VERIFY_RATE.append(measure_verify_rate())
    return _VERIFY_RATE[0]


class Node:
    def __init__(self, config: NodeConfig, limits: NodeLimits = NodeLimits(), *,
                 recover_signing_state: bool = False) -> None:
        self.config = config
        self.limits = limits
        self.name = config.name
        self.role = config.role
        self.recover_signing_state = recover_signing_state
        self.fault: StorageError | None = None
        """A corruption or full disk the store reported: the process stops with its exit code."""
        self.on_set_change: Callable[[], None] | None = None
        """Set by the process: called after a commit that changed the validator sets of the next heights."""
        self.on_fatal: Callable[[], None] | None = None
        """Set by the application: stop the process (``Runtime.stopped``)."""
        self._opened = False
        self.metrics = NodeMetrics()
        self.genesis: Genesis = self._load_genesis()
        self.params = self.genesis.params
        self.chain_id = self.params.chain_id
        self.key: SigningKey | None = None
        if config.is_validator:
            self.key = self._load_key()
        self.supported_protocol_version = supported_protocol_version()
        self.admin_token = ensure_admin_token(config.home)
        self.store = LevelStore(self.config.data_dir, on_fault=self._store_fault)
        try:
            self.ledger = Ledger(self.store, self.params, supported_protocol_version=self.supported_protocol_version)
            self._check_tip()
            self.ledger.require_supported(self.ledger.height + 1)
        except VecheError:
            self.store.close()
            raise
        self.disk = DiskWatch(self.config.data_dir, limits.disk_min_free_mb * 1024 * 1024, self.metrics,
                              paths=(config.signing_state_file.parent,) if config.is_validator else ())
        if self.key is not None and not self._ever_validator(self.key.public_key):
            log.warning("this node's key %s is not a validator at height %d: it follows the chain and starts "
                        "signing from the height a validators.update puts it in force", self.key.public_key.hex(),
                        self.ledger.height + 1)
        self.mempool = Mempool(self.ledger, max_txs=config.mempool_max_txs, max_bytes=config.mempool_max_bytes,
                               verify_threads=limits.verify_threads, backlog_ms=limits.backlog_ms)
        self.mempool.on_rejected = lambda code, count: self.metrics.txs_rejected.inc(code, amount=count)
        self.mempool.on_reaped = self.metrics.mempool_wait.observe
        remembered = self.metrics.counter(
            "veche_txs_invalid_remembered_total",
            "Transactions refused by hash: they failed a signature, chain or decoding check before.")
        self.mempool.on_invalid_hit = remembered.inc
        self.app = ChainApp(self.ledger, self.mempool, max_block_txs=self.genesis.consensus.max_block_txs,
                            proposal_grace_ms=limits.proposal_grace_ms)
        self._poke_scheduled = False
        self.results = Results(self.ledger)
        self.admission = self._admission_control(limits)
        self.proxies = ProxyTrust(proxy_networks(config.trusted_proxies, "trusted_proxies"))
        self.started_ms = wall_clock_ms()
        self.gossip_queue = GossipQueue(self.metrics)
        self.signing_file: SigningStateFile | None = None
        self.driver: Driver | None = None
        self.peers: PeerNetwork | None = None
        self.forwarder: Forwarder | None = None
        self._peer_sets = (self.ledger.validators_at(self.ledger.height + 1),
                           self.ledger.validators_at(self.ledger.height + 2))
        self._names_window: tuple[int, dict[bytes, str]] = (-1, {})
        if self.key is not None:
            try:
                self._build_validator(self.key)
            except BaseException:
                self.store.close()
                raise
        self.forwarder = Forwarder([url for _, url in self._public_sources(validators_only=True)],
                                   health=lambda url: self.sync.health(url))
        self._was_forwarding = self.forwarding
        self.inbound = Inbound(self.chain_id, self._validator_name, self.metrics, accepts=self.driver is not None,
                               deliver=self._deliver, admit_gossip=self.gossip_queue.put,
                               current_height=self._consensus_height)
        self.sync = BlockSync(self.app, self._public_sources(), self.metrics,
                              poll_interval_s=(VALIDATOR_STATUS_POLL_S if self.driver is not None
                                               else limits.sync_poll_ms / 1000),
                              on_synced=self._on_synced, on_block=self._on_block,
                              lag_tolerance=1 if self.driver is not None else 0)
        self.documents = DocumentService(
            DocumentStore(config.home / "documents", limits.document_limits()), chain_id=self.chain_id,
            ledger=self.ledger, metrics=self.metrics, sources=self._public_sources, check_disk=self.disk.check_room)
        self.requests = RequestStore(config.home / "signing-requests", chain_id=self.chain_id,
                                     genesis_hash=self.genesis.hash, ledger=self.ledger, clock_ms=wall_clock_ms,
                                     sources=self._public_sources)
        try:
            self.documents.open()
            self.requests.open()
        except BaseException:
            self.store.close()
            raise
        self.metrics.bind_live(
            height=lambda: self.ledger.height, mempool_size=lambda: len(self.mempool),
            mempool_bytes=lambda: self.mempool.pending_bytes,
            peers_connected=lambda: self.peers.connected() if self.peers is not None else self.sync.reachable(),
            sync_target=lambda: max(self.sync.target, self.ledger.height),
            catching_up=lambda: 1 if self.sync.catching_up else 0,
            consensus_round=lambda: self.driver.engine.round if self.driver is not None else 0,
        )
        self._opened = True
        log.info("node %s (%s%s) opened chain %s at height %d (protocol version %d in force, this node applies up "
                 "to %d)", self.name, self.role, "" if self.validator_index is None else f" {self.validator_index}",
                 self.chain_id, self.ledger.height, self.ledger.protocol_version_at(self.ledger.height + 1),
                 self.supported_protocol_version)

    # --- who validates ---------------------------------------------------------------------------

    @property
    def validator_index(self) -> int | None:
        """This node's index in the validator set of the next height (None: not a validator there)."""
        if self.key is None:
            return None
        return self.ledger.validators_at(self.ledger.height + 1).index_of(self.key.public_key)

    @property
    def forwarding(self) -> bool:
        """True when client transactions go to the validators by HTTP: an observer, or a validator's node
        whose key is not in the set of the next height (not yet added, or removed)."""
        return self.driver is None or self.validator_index is None

    def _ever_validator(self, public_key: bytes) -> bool:
        """In the set of the next two heights, or in any set recorded (past or scheduled)."""
        history = self.ledger.state.history
        return any(change.roster.validators.index_of(public_key) is not None
                   for change in (history.change_at(0),) + history.changes())

    def _validator_name(self, public_key: bytes) -> str | None:
        """The name of a validator of a height near ours (the last committed one to two ahead), else None:
        only they may send us p2p envelopes."""
        height = self.ledger.height
        cached_height, names = self._names_window
        if cached_height != height:
            names = {}
            for at in range(max(1, height), height + 3):
                for validator in self.ledger.validators_at(at).validators:
                    names.setdefault(validator.public_key, validator.name)
            self._names_window = (height, names)
        return names.get(public_key)

    def _peer_infos(self) -> list[PeerInfo]:
        """The other validators of the next two heights, at the URL the config names for them or their own."""
        height = self.ledger.height
        peer_urls = {peer.name: peer.url for peer in self.config.peers}
        found: dict[bytes, PeerInfo] = {}
        for at in (height + 1, height + 2):
            for v in self.ledger.validators_at(at).validators:
                if self.key is not None and v.public_key == self.key.public_key:
                    continue
                found.setdefault(v.public_key, PeerInfo(v.name, peer_urls.get(v.name, v.url).rstrip("/"), v.public_key))
        return list(found.values())

    def _refresh_peers(self) -> None:
        """After a commit: follow a set change with the peer links and block sync's sources."""
        height = self.ledger.height
        sets = (self.ledger.validators_at(height + 1), self.ledger.validators_at(height + 2))
        if sets[0] is self._peer_sets[0] and sets[1] is self._peer_sets[1]:
            return
        self._peer_sets = sets
        if self.on_set_change is not None:
            self.on_set_change()
        if self.peers is not None:
            added, removed = self.peers.set_peers(self._peer_infos())
            if added or removed:
                log.info("validator set change: peer links added %s, removed %s", added or "none", removed or "none")
                if self.driver is not None:
                    self.driver.set_peer_count(len(self.peers.links))
        self.sync.set_sources(self._public_sources())
        if self.forwarder is not None:
            self.forwarder.set_targets([url for _, url in self._public_sources(validators_only=True)])
        forwarding = self.forwarding
        if self.driver is not None and forwarding != self._was_forwarding:
            if forwarding:
                log.warning("this node's key is not in the validator set from height %d: client transactions are "
                            "forwarded to the validators", self.ledger.height + 1)
            else:
                log.info("this node's key is in the validator set from height %d: client transactions are "
                         "gossiped to the other validators", self.ledger.height + 1)
        self._was_forwarding = forwarding

    # --- opening --------------------------------------------------------------------------------

    def _load_genesis(self) -> Genesis:
        genesis = load_genesis(self.config.genesis_file)
        return genesis

    def _load_key(self) -> SigningKey:
        if self.config.key_file is None:
            raise ConfigError("a validator needs key_file in its config.json")
        return read_key_file(self.config.key_file)

    def report_fault(self, error: StorageError) -> None:
        """A corruption or a full disk found outside the store itself (e.g. a served block that does not
        check): the same single message and stop as the store's own."""
        self._store_fault(error)

    def _store_fault(self, error: StorageError) -> None:
        """The store found corruption or ran out of space: log the one message, stop the process."""
        if self.fault is not None:
            return
        self.fault = error
        fault = classify(error)
        if fault is not None and self._opened:  # while opening, run_node explains the failure
            log.critical("node %s stops: %s", self.name, explain(fault, home=self.config.home,
                                                                 data_dir=self.config.data_dir))
        if self.on_fatal is not None:
            self.on_fatal()

    def _check_tip(self) -> None:
        """At start: the top block must hash to what its certificate and the hash index say (a flipped
        byte there is found now, not when the block is first served)."""
        height = self.ledger.height
        if height == 0:
            return
        block, certificate = self.ledger.block(height), self.ledger.certificate(height)
        if block is None or certificate is None or certificate.block_hash != block.hash() \
                or self.ledger.height_of(block.hash()) != height:
            error = StoreCorrupt(f"block {height} (the top of the ledger) does not match its certificate or hash index")
            self._store_fault(error)
            raise error

    def _build_validator(self, key: SigningKey) -> None:
        settings = self.genesis.consensus
        self.signing_file = SigningStateFile(self.config.signing_state_file)
        signing_state = self.signing_file.load()
        if signing_state is None:
            if not self.recover_signing_state:
                self.signing_file.load_required()  # raises SigningStateMissing with the runbook
            # the set in force at the next height (set changes: docs/PROTOCOL.md §15); a key not in it matches
            # no certificate entry, and the floor then comes from the chain's tip
            validators = self.ledger.validators_at(self.ledger.height + 1)
            my_index = validators.index_of(key.public_key)
            recovery = recover_floor(
                my_index=-1 if my_index is None else my_index, chain_id=self.chain_id, validators=validators,
                ledger=self.ledger,
                evidence=EvidenceStore(self.store, per_validator=evidence_per_validator(validators.size)
                                       ).load(self._check_stored_evidence),
                sources=self._public_sources())
            signing_state = recovery.state()
            self.signing_file.store(signing_state)
            log.warning("signing state recovered (--recover-signing-state): %s; this validator signs nothing at "
                        "height %d or below; written to %s", recovery.describe(), recovery.floor,
                        self.signing_file.path)
        elif self.recover_signing_state:
            log.info("--recover-signing-state ignored: the signing state %s is present and checks",
                     self.signing_file.path)
        if signing_state.floor > self.ledger.height:
            log.info("signing floor %d (recovered signing state): this validator signs nothing up to that height",
                     signing_state.floor)
        if signing_state.height > self.ledger.height + 1:
            log.info("signing state is at height %d, ledger at %d: this node will not sign below height %d and "
                     "catches up by block sync", signing_state.height, self.ledger.height, signing_state.height)
        timeouts = TimeoutConfig(
            propose_ms=settings.timeout_propose_ms, propose_delta_ms=settings.timeout_propose_delta_ms,
            prevote_ms=settings.timeout_prevote_ms, prevote_delta_ms=settings.timeout_prevote_delta_ms,
            precommit_ms=settings.timeout_precommit_ms, precommit_delta_ms=settings.timeout_precommit_delta_ms)
        height = self.ledger.height
        engine = Engine(self.chain_id, self.params.validators, None, key.sign, self.app, timeouts,
                        heartbeat_ms=settings.heartbeat_ms, batch_ms=settings.batch_ms,
                        signing_state=signing_state, start_height=height + 1,
                        last_commit=self.ledger.certificate(height) if height > 0 else None,
                        validator_sets=self.ledger.validators_at, my_key=key.public_key)
        self.peers = PeerNetwork(self.chain_id, key, self._peer_infos(), self.metrics)
        broadcast = byzantine.broadcast_hook(self.chain_id, key, engine, self.app, self.peers)  # test-only
        evidence_store = EvidenceStore(  # the base store: never held back in a block-sync batch
            self.store, per_validator=evidence_per_validator(self.ledger.validators_at(height + 1).size))
        restored = evidence_store.load(self._check_stored_evidence)
        if restored or evidence_store.skipped:
            log.info("restored %d equivocation evidence items from the store (%d skipped: they do not check)",
                     len(restored), evidence_store.skipped)
        engine.restore_evidence([record.evidence for record in restored])
        self.driver = Driver(engine, self.app, self.signing_file, broadcast, self.metrics,
                             send_to=self.peers.send_to, peer_count=len(self.peers.links),
                             on_commit=self._on_commit, on_peer_ahead=self._on_peer_ahead,
                             validators_at=self.ledger.validators_at,
                             evidence_store=evidence_store, restored_evidence=restored)
        self.mempool.yield_to = self.driver.wait_idle  # consensus messages go before signature checks

    def _check_stored_evidence(self, evidence: Evidence) -> None:
        verify_evidence(evidence, self.ledger.validators_at(evidence.height), self.chain_id, verify)

    def _admission_control(self, limits: NodeLimits) -> AdmissionControl:
        node_rate = limits.node_tx_rate
        if node_rate == 0:
            verify_rate = verify_rate_of_this_machine()
            node_rate = auto_node_rate(verify_rate)
            log.info("admission: %d transactions/s for all untrusted clients together (this machine verifies "
                     "%.0f signatures per CPU-second; limits.node_tx_rate sets it)", node_rate, verify_rate)
        control = AdmissionControl(client_rate=limits.client_tx_rate, client_burst=limits.client_tx_burst,
                                   node_rate=node_rate, node_burst=limits.node_tx_burst,
                                   trusted=parse_networks(limits.trusted_clients),
                                   trusted_rate=limits.trusted_tx_rate or None)
        self.metrics.gauge("veche_admission_rate_limit",
                           "Transactions per second this node admits from untrusted clients together.",
                           lambda: control.node_rate)
        return control

    def _public_sources(self, *, validators_only: bool = False) -> list[tuple[str, str]]:
        """(name, base URL) of other nodes' public APIs: config peers, then the validators of the next
        heights, then every other validator the chain ever had (newest first; gone ones get benched)."""
        own = {self.config.api_url.rstrip("/")}
        history = self.ledger.state.history
        rosters = [change.roster for change in reversed((history.change_at(0),) + history.changes())]
        current = [self.ledger.validators_at(self.ledger.height + 2), self.ledger.validators_at(self.ledger.height + 1)]
        everyone = [v for validators in current + [r.validators for r in rosters] for v in validators.validators]
        if self.key is not None:
            own.update(v.url.rstrip("/") for v in everyone if v.public_key == self.key.public_key)
        validator_names = {v.name for v in everyone}
        sources: dict[str, str] = {}
        for peer in self.config.peers:
            if not validators_only or peer.name in validator_names:
                sources.setdefault(peer.url.rstrip("/"), peer.name)
        for validator in everyone:
            if validator.url:
                sources.setdefault(validator.url.rstrip("/"), validator.name)
        return [(name, url) for url, name in sources.items() if url not in own]

    def close(self) -> None:
        self.mempool.close()
        self.results.close()
        self.store.close()
        log.info("node %s closed its store at height %d", self.name, self.ledger.height)

    # --- running --------------------------------------------------------------------------------

    async def run(self, session: aiohttp.ClientSession) -> None:
        self.sync.attach(session)
        async with asyncio.TaskGroup() as group:
            if self.peers is not None:
                self.peers.attach(session)
                group.create_task(self.peers.run(), name="peer-links")
            if self.driver is not None:
                group.create_task(self.driver.run(), name="consensus")
            if self.forwarder is not None:
                self.forwarder.attach(session)
                group.create_task(self.forwarder.run(), name="forwarder")
                group.create_task(self._expire_forwarded(), name="expiry")
            group.create_task(self._gossip_worker(), name="gossip-admission")
            group.create_task(self._watch_loop_lag(), name="loop-lag")
            group.create_task(self.disk.run(), name="disk-watch")
            group.create_task(self.sync.run(), name="block-sync")
            group.create_task(self.results.run(), name="results")
            group.create_task(self.documents.run(session), name="documents")
            group.create_task(self.requests.run(session), name="signing-requests")

    async def _watch_loop_lag(self) -> None:
        """How late the event loop wakes a 100 ms sleep: a starved or blocked node shows here first."""
        loop = asyncio.get_running_loop()
        warned = 0.0
        while True:
            started = loop.time()
            await asyncio.sleep(LAG_PROBE_S)
            lag = max(0.0, loop.time() - started - LAG_PROBE_S)
            self.metrics.loop_lag.observe(lag)
            if lag > 1.0 and loop.time() - warned > 60:
                warned = loop.time()
                log.warning("the event loop ran %.1f s late: this node is starved of CPU or blocked", lag)

    async def _gossip_worker(self) -> None:
        while True:
            sender, raws = await self.gossip_queue.get()
            try:
                admission = await self.mempool.admit(raws)
            except Exception:  # noqa: BLE001 - a peer's transactions must never stop the node
                log.exception("admission of %d gossiped transactions from validator %d failed", len(raws), sender)
                continue
            if admission.accepted:
                self.metrics.txs_accepted.inc("peer", amount=len(admission.accepted))
                self._poke()

    async def _expire_forwarded(self) -> None:
        """While forwarding: re-forward what has not committed after a while; expire what never does."""
        forwarded_at: dict[bytes, int] = {}
        while True:
            await asyncio.sleep(REFORWARD_AFTER_S / 2)
            if not self.forwarding:
                forwarded_at.clear()
                continue
            now = wall_clock_ms()
            expired = self.mempool.expire(now - OBSERVER_PENDING_TTL_MS)
            if expired:
                log.warning("%d forwarded transactions did not commit within %d s and expired", expired,
                            OBSERVER_PENDING_TTL_MS // 1000)
            pending = self.mempool.arrival_ms
            for tx_hash in [h for h in forwarded_at if h not in pending]:
                del forwarded_at[tx_hash]
            cutoff = now - int(REFORWARD_AFTER_S * 1000)
            stale = [h for h, arrived in pending.items() if forwarded_at.get(h, arrived) < cutoff]
            if stale and self.forwarder is not None and not self.forwarder.queue:
                log.info("re-forwarding %d transactions not committed after %.0f s", len(stale), REFORWARD_AFTER_S)
                self.forwarder.reforward([self.mempool.pending[h].raw for h in stale])
                for tx_hash in stale:
                    forwarded_at[tx_hash] = now

    def check_room(self, incoming_bytes: int) -> None:
        """Shed a client request before reading it (503): mempool bounds, backlog, or busy validators."""
        self.disk.check_room()
        self.mempool.check_room(incoming_bytes)
        if self.forwarder is not None and self.forwarding:
            self.forwarder.check_room()

    async def submit(self, raws: list[bytes]) -> Admission:
        """Admit a client's batch, then gossip (a validator in the set) or forward (an observer, or a
        validator's node outside the set of the next height) what was accepted."""
        admission = await self.mempool.admit(raws)
        if admission.admitted:
            self.metrics.txs_accepted.inc("client", amount=len(admission.admitted))
            accepted_raws = [tx.raw for tx in admission.admitted]
            forwarding = self.forwarding
            if self.peers is not None and not forwarding:
                self.peers.gossip(accepted_raws)
            if self.forwarder is not None and forwarding:
                self.forwarder.push(accepted_raws)
            self._poke()
        return admission

    def _poke(self) -> None:
        """New transactions: wake consensus now, and again when they become proposable."""
        if self.driver is None:
            return
        self.driver.poke()
        grace = self.limits.proposal_grace_ms
        if grace > 0 and not self._poke_scheduled:
            self._poke_scheduled = True
            asyncio.get_running_loop().call_later(grace / 1000 + 0.002, self._delayed_poke)

    def _delayed_poke(self) -> None:
        self._poke_scheduled = False
        if self.driver is not None:
            self.driver.poke()

    # --- callbacks --------------------------------------------------------------------------------

    def _consensus_height(self) -> int:
        return self.driver.engine.height if self.driver is not None else 0

    def _deliver(self, sender_key: bytes, message: Any) -> None:
        if self.driver is not None:
            self.driver.deliver(sender_key, message)

    def _on_commit(self, committed: CommittedBlock) -> None:
        self.metrics.blocks_committed.inc(committed.via)
        if committed.via == "consensus":
            self.sync.consensus_committed()
        self._on_block(committed)
        if any(kind == "campaign.closed" for kind, _ in committed.events):
            self.results.reconcile()

    def _on_block(self, committed: CommittedBlock) -> None:
        self.metrics.txs_committed.inc(amount=len(committed.block.txs))
        self.documents.on_block(committed.block.txs)
        self.requests.on_block(committed.block.txs, committed.height)
        change = self.ledger.state.history.latest()   # synced blocks carry no events: read the state
        if change.committed_height == committed.height and change.from_height > 0:
            self._log_set_change(", ".join(sorted({kind for kind, _ in change.txs})), committed.height,
                                 change.from_height)
        for record in self.ledger.state.protocol.upgrades:
            if record.committed_height == committed.height:
                self._log_upgrade(record.height)
        self._refresh_peers()
        self.ledger.require_supported(self.ledger.height + 1)  # UpgradeRequired: the node stops (exit 8)
        if committed.via == "sync" and self.driver is not None:
            # block sync yields between blocks: keep consensus above the ledger at every step, or the
            # engine may be asked to propose a height the ledger already has (FatalError in create_block)
            self.driver.skip_to(committed.height + 1, committed.certificate, per_block=True)

    def _log_set_change(self, kind: str, committed: int, effective: int) -> None:
        validators = self.ledger.validators_at(effective)
        index = None if self.key is None else validators.index_of(self.key.public_key)
        me = "" if self.key is None else (
            f" (this node validates there as index {index})" if index is not None else
            " (this node does not validate there)")
        log.info("%s committed at height %d: the new roster is in force from height %d; validators %s%s", kind,
                 committed, effective, ", ".join(v.name for v in validators.validators), me)

    def _log_upgrade(self, height: int) -> None:
        version = self.ledger.protocol_version_at(height)
        if version > self.supported_protocol_version:
            log.warning("PROTOCOL UPGRADE: version %d is scheduled from height %d; this software applies versions up "
                        "to %d and will stop before that height: install a version that supports protocol %d",
                        version, height, self.supported_protocol_version, version)
        else:
            log.info("protocol upgrade: version %d is scheduled from height %d; this software supports it", version,
                     height)

    def _on_peer_ahead(self, height: int) -> None:
        # validators are working at ``height``: what exists to fetch is the block they committed before it
        self.sync.request(height - 1)

    def _on_synced(self, height: int) -> None:
        self.mempool.resync()
        if self.driver is not None:
            self.driver.skip_to(height + 1, self.ledger.certificate(height))
        self.results.reconcile()

    # --- views ------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        ledger = self.ledger
        consensus = None
        if self.driver is not None:
            engine = self.driver.engine
            consensus = {"height": engine.height, "round": engine.round, "step": engine.step,
                         "locked_round": engine.locked_round}
        next_height = ledger.height + 1
        validators = ledger.validators_at(next_height)
        scheduled = ledger.state.protocol.next_after(ledger.height)
        return {
            "chain_id": self.chain_id,
            "node": self.name,
            "role": self.role,
            "height": ledger.height,
            "last_block_hash": ledger.last_block_hash.hex(),
            "app_hash": ledger.app_hash.hex(),
            "peers": self.peers.connected() if self.peers is not None else self.sync.reachable(),
            "mempool": len(self.mempool),
            "catching_up": self.sync.catching_up,
            "genesis_hash": self.genesis.hash.hex(),
            "last_block_time_ms": ledger.last_time_ms,
            "validator_index": self.validator_index,
            "mempool_bytes": self.mempool.pending_bytes,
            "sync_target": max(self.sync.target, ledger.height),
            "consensus": consensus,
            "peer_links": self.peers.describe() if self.peers is not None else [],
            "sources": self.sync.describe(),
            "uptime_s": round((wall_clock_ms() - self.started_ms) / 1000, 1),
            "validator_set": {"height": next_height, "from_height": ledger.state.history.change_at(next_height).from_height,
                              "validators": [v.name for v in validators.validators], "quorum": validators.quorum,
                              "changes": len(ledger.state.history.changes())},
            "protocol_version": ledger.protocol_version_at(next_height),
            "supported_protocol_version": self.supported_protocol_version,
            "protocol_upgrade": None if scheduled is None else {"version": scheduled.version,
                                                                 "height": scheduled.height},
            "time_ms": int(time.time() * 1000),
        }


def supported_protocol_version() -> int:
    """The protocol version this software applies: the newest it knows, unless the test-only environment
    variable ``VECHE_MAX_PROTOCOL_VERSION`` lowers it."""
    text = os.environ.get(PROTOCOL_VERSION_ENV, "").strip()
    if not text:
        return LATEST_PROTOCOL_VERSION
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= LATEST_PROTOCOL_VERSION:
        raise ConfigError(f"{PROTOCOL_VERSION_ENV} must be a protocol version 1..{LATEST_PROTOCOL_VERSION}, "
                          f"got {text[:20]!r}")
    log.warning("%s=%s: this node applies protocol versions up to %s only (a test setting)", PROTOCOL_VERSION_ENV,
                text, text)
    return int(text)


ADMIN_TOKEN_FILE = "admin-token"


def ensure_admin_token(home: Path) -> str:
    """The home's admin token (``<home>/admin-token``, 0600), made at the first start: operations routes
    (``GET /admin/v1/backup``) want it, so only someone who can read the home can use them."""
    path = home / ADMIN_TOKEN_FILE
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        token = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(token + "\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the admin token {path}: {exc}") from exc
    if len(token) < 32:
        raise ConfigError(f"{path} holds no admin token; delete it and the node makes a new one")
    return token
