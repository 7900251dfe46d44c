"""Persistent links to the other validators, and the ``/p2p/v1/envelope`` endpoint.

Outgoing: one ``PeerLink`` per other validator of the current and the next height (the set changes
with ``validators.update``: ``PeerNetwork.set_peers`` adds and removes links at run time), each
with its own sender task and two bounded queues —
consensus messages and gossiped transactions. The sender drains both into one signed envelope per
POST (so a busy link batches by itself; a lone transaction waits up to ``GOSSIP_DELAY_S`` for company, and
a consensus message queued meanwhile ends the wait at once: it never waits for transactions),
sends one request at a time over the node's shared ``ClientSession``, and on failure backs off
exponentially with jitter. When a queue is full the oldest item is dropped and counted: nothing
here ever blocks the consensus loop. Consensus messages lost this way are re-sent by the engine.

Incoming: ``read_envelope`` reads the 152-byte header and authenticates it (``Inbound.authenticate``,
see ``node/envelope.py``: by the sender's validator key, accepted when it validates at a height near
ours) before it reads the payload, so bytes from anyone but a validator are never read past the
header nor decoded; ``Inbound.deliver`` checks the payload against the signed hash, hands consensus
messages to the driver and queues transactions for admission by one gossip worker (a bounded queue
as well).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import aiohttp
import msgpack
from aiohttp import web

from chain.crypto import SigningKey
from consensus.errors import MalformedMessage
from consensus.messages import PeerItem, decode_item
from node.envelope import (
    HEADER_BYTES, MAX_ENVELOPE_BYTES, Envelope, EnvelopeHeader, ReplayFilter, open_header, open_payload, peek_sender,
    seal,
)
from node.errors import ApiError, Forbidden, Overloaded, PayloadTooLarge, PeerRejected, UnsupportedMediaType
from node.metrics import NodeMetrics

log = logging.getLogger("veche.node.p2p")

ENVELOPE_PATH = "/p2p/v1/envelope"
MAX_QUEUED_MESSAGES = 4096
MAX_QUEUED_TXS = 50_000
MAX_BATCH_BYTES = 8 * 1024 * 1024
# A transaction with no consensus message to ride along waits this long for company before it is sent
# alone; a consensus message queued during the wait ends it (consensus never waits for gossip). A
# 25 ms wait was measured and brought no CPU gain with ballots posted one by one (docs/BENCHMARKS.md
# "Voter-held keys"): at that rate the txs already ride on the consensus messages of the next height.
GOSSIP_DELAY_S = 0.004
BACKOFF_START_S = 0.05
BACKOFF_MAX_S = 5.0
SEND_TIMEOUT_S = 10.0
MAX_GOSSIP_BACKLOG_BYTES = 32 * 1024 * 1024
MAX_READING_BYTES = 64 * 1024 * 1024
P2P_CONTENT_TYPES = ("application/msgpack", "application/x-msgpack", "application/octet-stream")


@dataclass(slots=True)
class PeerInfo:
    name: str
    url: str
    public_key: bytes


class PeerLink:
    def __init__(self, peer: PeerInfo, network: "PeerNetwork") -> None:
        self.peer = peer
        self._network = network
        self.messages: deque[bytes] = deque()
        self.txs: deque[bytes] = deque()
        self.connected = False
        self.last_error = ""
        self._ready = asyncio.Event()
        self._message_queued = asyncio.Event()
        self.sent = 0

    def push_message(self, data: bytes) -> None:
        if len(self.messages) >= MAX_QUEUED_MESSAGES:
            self.messages.popleft()
            self._network.metrics.p2p_dropped.inc(self.peer.name, "consensus")
        self.messages.append(data)
        self._ready.set()
        self._message_queued.set()

    def push_txs(self, raws: list[bytes]) -> None:
        overflow = len(self.txs) + len(raws) - MAX_QUEUED_TXS
        if overflow > 0:
            for _ in range(min(overflow, len(self.txs))):
                self.txs.popleft()
            self._network.metrics.p2p_dropped.inc(self.peer.name, "tx", amount=overflow)
        self.txs.extend(raws[-MAX_QUEUED_TXS:])
        self._ready.set()

    def _take(self) -> tuple[list[bytes], list[bytes]]:
        size = 0
        messages: list[bytes] = []
        while self.messages and (not messages or size + len(self.messages[0]) <= MAX_BATCH_BYTES):
            item = self.messages.popleft()
            messages.append(item)
            size += len(item)
        txs: list[bytes] = []
        while self.txs and size + len(self.txs[0]) <= MAX_BATCH_BYTES:
            item = self.txs.popleft()
            txs.append(item)
            size += len(item)
        return messages, txs

    async def run(self) -> None:
        backoff = BACKOFF_START_S
        while True:
            await self._ready.wait()
            if not self.messages and self.txs:
                await self._wait_for_company()
            messages, txs = self._take()
            if not self.messages and not self.txs:
                self._ready.clear()
            if not messages and not txs:
                continue
            ok = await self._send(messages, txs)
            if ok:
                backoff = BACKOFF_START_S
                continue
            # keep the transactions (bounded); consensus messages are re-sent by the engine
            for raw in reversed(txs[: max(0, MAX_QUEUED_TXS - len(self.txs))]):
                self.txs.appendleft(raw)
            self._ready.set()
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _wait_for_company(self) -> None:
        """Let more transactions join this envelope for up to ``GOSSIP_DELAY_S``; a consensus message
        queued meanwhile ends the wait (it goes at once, carrying the transactions with it)."""
        self._message_queued.clear()
        if self.messages:
            return
        try:
            await asyncio.wait_for(self._message_queued.wait(), GOSSIP_DELAY_S)
        except asyncio.TimeoutError:
            pass

    async def _send(self, messages: list[bytes], txs: list[bytes]) -> bool:
        body = self._network.seal(messages, txs)
        try:
            async with self._network.session.post(
                    self.peer.url + ENVELOPE_PATH, data=body,
                    headers={"Content-Type": "application/octet-stream"},
                    timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_S)) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            self._mark_down(f"{exc.__class__.__name__}: {exc}")
            return False
        if status == 200:
            self.sent += 1
            self._network.metrics.p2p_sent.inc(self.peer.name)
            self._mark_up()
            return True
        self._mark_down(f"HTTP {status}")
        return False

    def _mark_up(self) -> None:
        if not self.connected:
            self.connected = True
            log.info("peer %s (%s) is up", self.peer.name, self.peer.url)
        self.last_error = ""

    def _mark_down(self, reason: str) -> None:
        if self.connected or not self.last_error:
            log.warning("peer %s (%s) is down: %s", self.peer.name, self.peer.url, reason)
        self.connected = False
        self.last_error = reason


class PeerNetwork:
    """Outgoing links of a validator to every other validator."""

    def __init__(self, chain_id: str, key: SigningKey, peers: list[PeerInfo], metrics: NodeMetrics) -> None:
        self.chain_id = chain_id
        self._key = key
        self.metrics = metrics
        self.links = [PeerLink(peer, self) for peer in peers if peer.public_key != key.public_key]
        self._sequence = time.time_ns()
        self._session: aiohttp.ClientSession | None = None
        self._group: asyncio.TaskGroup | None = None
        self._tasks: dict[bytes, asyncio.Task[None]] = {}

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("peer network used before its ClientSession was attached")
        return self._session

    def attach(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    def seal(self, messages: list[bytes], txs: list[bytes]) -> bytes:
        self._sequence += 1
        return seal(self.chain_id, self._key.public_key, self._sequence, messages, txs, self._key.sign)

    def broadcast(self, message: bytes) -> None:
        for link in self.links:
            link.push_message(message)

    def send_to(self, public_key: bytes, message: bytes) -> None:
        """Queue a message for one validator only (nothing happens for a key without a link)."""
        for link in self.links:
            if link.peer.public_key == public_key:
                link.push_message(message)

    def set_peers(self, peers: list[PeerInfo]) -> tuple[list[str], list[str]]:
        """Keep a link to exactly these validators (a set change); returns (added, removed) names.

        A kept link keeps its queues; a new one starts its sender task at once when running.
        """
        wanted = {peer.public_key: peer for peer in peers if peer.public_key != self._key.public_key}
        removed = [link for link in self.links if link.peer.public_key not in wanted]
        kept = {link.peer.public_key: link for link in self.links if link.peer.public_key in wanted}
        added: list[PeerLink] = []
        links: list[PeerLink] = []
        for public_key, peer in wanted.items():
            link = kept.get(public_key)
            if link is None:
                link = PeerLink(peer, self)
                added.append(link)
            else:
                link.peer.url, link.peer.name = peer.url, peer.name
            links.append(link)
        self.links = links
        for link in removed:
            task = self._tasks.pop(link.peer.public_key, None)
            if task is not None:
                task.cancel()
        if self._group is not None:
            for link in added:
                self._start(link)
        return [link.peer.name for link in added], [link.peer.name for link in removed]

    def _start(self, link: PeerLink) -> None:
        if self._group is not None:
            self._tasks[link.peer.public_key] = self._group.create_task(link.run(), name=f"peer-{link.peer.name}")

    def gossip(self, raws: list[bytes]) -> None:
        if raws:
            for link in self.links:
                link.push_txs(raws)

    def connected(self) -> int:
        return sum(1 for link in self.links if link.connected)

    def describe(self) -> list[dict[str, object]]:
        return [{"name": link.peer.name, "url": link.peer.url, "public_key": link.peer.public_key.hex(),
                 "connected": link.connected, "queued_messages": len(link.messages),
                 "queued_txs": len(link.txs), "last_error": link.last_error or None} for link in self.links]

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            for link in self.links:
                self._start(link)
            await asyncio.Event().wait()  # links come and go (set_peers); the group lives as long as the node


class Inbound:
    """Receives envelopes: authenticates, de-duplicates, routes messages and gossiped transactions."""

    def __init__(self, chain_id: str, names: Callable[[bytes], str | None], metrics: NodeMetrics, *,
                 accepts: bool, deliver: Callable[[bytes, PeerItem], None],
                 admit_gossip: Callable[[bytes, list[bytes]], bool],
                 current_height: Callable[[], int] = lambda: 0) -> None:
        """``names(public_key)``: the validator's name when the key validates at a height near ours
        (the envelope's sender must), else None."""
        self.chain_id = chain_id
        self._names = names
        self.metrics = metrics
        self.accepts = accepts
        self._deliver = deliver
        self._admit_gossip = admit_gossip
        self._current_height = current_height
        self._replays = ReplayFilter()
        self.stale_proposals = 0
        self.reading_bytes = 0

    @contextmanager
    def reserve(self, size: int) -> Iterator[None]:
        """Bound the payload bytes of authenticated envelopes being read at once."""
        if self.reading_bytes + size > MAX_READING_BYTES:
            raise Overloaded("too many p2p bytes are being read right now; retry later", "busy",
                             retry_after=1.0)
        self.reading_bytes += size
        try:
            yield
        finally:
            self.reading_bytes -= size

    def _peer_name(self, public_key: bytes | None) -> str:
        name = self._names(public_key) if public_key is not None else None
        return name if name is not None else "unknown"

    def reject(self, head: bytes | None, error: ApiError) -> None:
        claimed = peek_sender(head) if head else None
        name = self._peer_name(claimed)
        self.metrics.p2p_rejected.inc(name, error.code)
        log.warning("rejected p2p request claiming to be from %s: %s", name, error.message)

    def check_accepts(self) -> None:
        if not self.accepts:
            raise Forbidden("this node is an observer: it takes no p2p messages (use the public API)",
                            "not_a_validator")

    def authenticate(self, head: bytes) -> EnvelopeHeader:
        """The header, authenticated (one signature check); nothing of the payload is read yet."""
        self.check_accepts()
        return open_header(head, self.chain_id, lambda key: self._names(key) is not None)

    def is_replay(self, header: EnvelopeHeader) -> bool:
        """An exact recent replay of an envelope already processed: answered without reading its payload."""
        if self._replays.contains(header.sender_key, header.sequence):
            self.metrics.p2p_duplicates.inc(self._peer_name(header.sender_key))
            return True
        return False

    def handle(self, body: bytes) -> dict[str, object]:
        """Process one whole envelope body (header and payload); raises ``ApiError`` subclasses."""
        header = self.authenticate(body[:HEADER_BYTES])
        if self.is_replay(header):
            return {"ok": True, "duplicate": True}
        return self.deliver(header, body[HEADER_BYTES:])

    def deliver(self, header: EnvelopeHeader, payload: bytes) -> dict[str, object]:
        """Check the payload against its authenticated header, decode it, route what it holds."""
        envelope: Envelope = open_payload(header, self.chain_id, payload)
        if self._replays.seen(envelope.sender_key, envelope.sequence):   # raced with a twin request
            self.metrics.p2p_duplicates.inc(self._peer_name(envelope.sender_key))
            return {"ok": True, "duplicate": True}
        name = self._peer_name(envelope.sender_key)
        self.metrics.p2p_received.inc(name)
        bad = 0
        for data in envelope.messages:
            if is_stale_proposal(data, self._current_height()):
                self.stale_proposals += 1  # a decided height's block: useless here, skip decoding it
                self.metrics.p2p_stale_proposals.inc(name)
                continue
            try:
                message = decode_item(data)  # a proposal, a vote, or gossiped evidence
            except MalformedMessage as exc:
                bad += 1
                self.metrics.p2p_rejected.inc(name, "malformed_message")
                log.warning("validator %s sent a malformed consensus message: %s", name, exc.message)
                continue
            self._deliver(envelope.sender_key, message)
        queued = True
        if envelope.txs:
            queued = self._admit_gossip(envelope.sender_key, list(envelope.txs))
        return {"ok": True, "duplicate": False, "malformed_messages": bad, "txs_queued": queued}


async def read_envelope(request: web.Request, inbound: Inbound) -> dict[str, object]:
    """Serve one ``POST /p2p/v1/envelope``: 415/413/403 before reading anything, then the header,
    authenticated before a byte of the payload is read; the payload is read only for a validator,
    within the node's budget of p2p bytes in flight. Rejections are counted and logged."""
    head: bytes | None = None
    try:
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in P2P_CONTENT_TYPES:
            raise UnsupportedMediaType("p2p envelopes are application/octet-stream")
        length = request.content_length
        if length is not None and length > MAX_ENVELOPE_BYTES:
            raise PayloadTooLarge(f"an envelope is at most {MAX_ENVELOPE_BYTES} bytes")
        inbound.check_accepts()
        try:
            head = await request.content.readexactly(HEADER_BYTES)
        except asyncio.IncompleteReadError as exc:
            head = exc.partial
            raise PeerRejected(f"an envelope has a {HEADER_BYTES}-byte header", "malformed") from None
        header = inbound.authenticate(head)
        if length is not None and length != HEADER_BYTES + header.payload_length:
            raise PeerRejected("Content-Length does not match the envelope's signed payload length", "malformed")
        if inbound.is_replay(header):
            return {"ok": True, "duplicate": True}
        with inbound.reserve(header.payload_length):
            try:
                payload = await request.content.readexactly(header.payload_length)
            except asyncio.IncompleteReadError:
                raise PeerRejected("the envelope payload is shorter than its signed length", "malformed") from None
            if await request.content.read(1):
                raise PeerRejected("bytes follow the envelope payload", "malformed")
            return inbound.deliver(header, payload)
    except ApiError as exc:
        inbound.reject(head, exc)
        raise


class GossipQueue:
    """Transactions from peers wait here (bounded by bytes) for one admission worker."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self.metrics = metrics
        self._items: deque[tuple[bytes, list[bytes], float]] = deque()
        self.bytes = 0
        self._ready = asyncio.Event()

    def put(self, sender: bytes, raws: list[bytes]) -> bool:
        size = sum(len(raw) for raw in raws)
        if self.bytes + size > MAX_GOSSIP_BACKLOG_BYTES:
            self.metrics.txs_rejected.inc("gossip_backlog_full", amount=len(raws))
            return False
        self._items.append((sender, raws, time.monotonic()))
        self.bytes += size
        self._ready.set()
        return True

    async def get(self) -> tuple[bytes, list[bytes]]:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        sender, raws, queued = self._items.popleft()
        self.bytes -= sum(len(raw) for raw in raws)
        self.metrics.gossip_wait.observe(time.monotonic() - queued)
        return sender, raws


def is_stale_proposal(data: bytes, current_height: int) -> bool:
    """True for a well-formed proposal header below ``current_height`` (read without decoding the block)."""
    if len(data) < 1024 or not data.startswith(b"\x99\xa8proposal"):
        return False
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=len(data))
    unpacker.feed(data[:256])
    try:
        if unpacker.read_array_header() != 9 or unpacker.unpack() != "proposal":
            return False
        unpacker.skip()  # chain id
        height = unpacker.unpack()
    except (msgpack.OutOfData, ValueError, TypeError, msgpack.UnpackException):
        return False
    return isinstance(height, int) and not isinstance(height, bool) and 0 < height < current_height
