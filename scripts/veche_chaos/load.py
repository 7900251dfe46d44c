"""Steady vote load: straight to the nodes, and through the gateway as citizens.

``DirectLoad`` makes fresh voter keys every tick, one ``voters.register`` signed with the testnet
gateway key for them, and one ``vote.cast`` per key (``chain.tx.make_vote``), and posts the batch
(registration first) to the nodes in turn. Like a careful client it fails over to the next node on
a refused connection, a timeout or a 5xx/429 answer, and ``Resubmitter`` re-sends anything not
committed after ``resubmit_after_s`` to another node (with its registration while that is not
committed either). Votes have deterministic bytes, so a re-send is the same transaction. A
registration refused with ``revoked_key`` (signed with the gateway key just before a ``keys.rotate``
took effect, and dropped from the mempools at the switch) is signed again with the current gateway
key, as the gateway does with its own pending ones; its votes then depend on the new one.

``GatewayLoad`` runs citizen flows against the gateway: ``GET /login`` → ``POST /login`` (phone)
→ the 6-digit code from ``<gateway home>/sms-outbox.jsonl`` → ``POST /login/code`` → the ballot page
→ ``POST …/vote``; the hash in ``id="tx-hash"`` of the answer is the acknowledgement.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from chain import codec
from chain.crypto import SigningKey
from chain.tx import Tx, VotersRegister, decode_tx, make_registration, make_vote
from veche_chaos.tracking import ACK_CODES, DIRECT, GATEWAY, REGISTRATION, VOTE, Tracker, TxRecord

log = logging.getLogger("veche.chaos.load")

CAMPAIGN = "ib-2027"
POST_TIMEOUT = aiohttp.ClientTimeout(total=4, sock_connect=2)
OCTET = {"Content-Type": "application/octet-stream"}


@dataclass(frozen=True, slots=True)
class Ballot:
    district_id: str
    initiative_id: str


def ballot_options(genesis_document: dict[str, Any], campaign_id: str = CAMPAIGN) -> list[Ballot]:
    return [Ballot(i["district_id"], i["initiative_id"]) for i in genesis_document.get("initiatives", [])
            if i["campaign_id"] == campaign_id]


@dataclass(slots=True)
class PostResult:
    node: str
    status: int                                   # 0 = no answer
    accepted: set[bytes] = field(default_factory=set)
    rejected: dict[int, str] = field(default_factory=dict)   # batch index → code
    error: str = ""


async def post_txs(session: aiohttp.ClientSession, node: str, base_url: str, raws: list[bytes],
                   timeout: aiohttp.ClientTimeout = POST_TIMEOUT) -> PostResult:
    try:
        async with session.post(base_url + "/api/v1/txs", data=codec.encode(raws), headers=OCTET,
                                timeout=timeout) as response:
            status = response.status
            body = await response.json(content_type=None) if status == 200 else None
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
        return PostResult(node, 0, error=exc.__class__.__name__)
    result = PostResult(node, status)
    if isinstance(body, dict):
        result.accepted = {bytes.fromhex(h) for h in body.get("accepted", [])}
        result.rejected = {int(r["index"]): str(r["code"]) for r in body.get("rejected", [])}
    return result


def record_answer(tracker: Tracker, txs: list[Tx], result: PostResult) -> bool:
    """Mark acks and rejections of one answered batch; True when the node answered 200."""
    if result.status != 200:
        return False
    now = time.time()
    for index, tx in enumerate(txs):
        if tx.hash in result.accepted:
            tracker.ack(tx.hash, now)
        else:
            code = result.rejected.get(index, "missing")
            if code in ACK_CODES:
                tracker.ack(tx.hash, now)
            else:
                tracker.reject(tx.hash, code)
    return True


class NodeRing:
    """The nodes a client talks to, in turn, with fail-over."""

    def __init__(self, names: list[str], urls: dict[str, str]) -> None:
        self.names = list(names)
        self.urls = urls
        self._cycle = itertools.cycle(range(len(self.names)))

    def order(self, avoid: str = "") -> list[str]:
        start = next(self._cycle)
        ordered = self.names[start:] + self.names[:start]
        if avoid and len(ordered) > 1 and ordered[0] == avoid:
            ordered = ordered[1:] + ordered[:1]
        return ordered

    async def send(self, session: aiohttp.ClientSession, tracker: Tracker, txs: list[Tx], *,
                   avoid: str = "", tries: int | None = None) -> PostResult | None:
        raws = [tx.raw for tx in txs]
        for node in self.order(avoid)[: tries or len(self.names)]:
            for tx in txs:
                record = tracker.records.get(tx.hash)
                if record is not None:
                    record.last_node = node
            result = await post_txs(session, node, self.urls[node], raws)
            if record_answer(tracker, txs, result):
                return result
        return None


class DirectLoad:
    def __init__(self, tracker: Tracker, ring: NodeRing, chain_id: str, gateway_key: SigningKey,
                 ballots: list[Ballot], *, rate: float, interval_s: float = 0.25, max_inflight: int = 16,
                 source: str = DIRECT, seed: int = 0) -> None:
        self.tracker = tracker
        self.ring = ring
        self.chain_id = chain_id
        self.gateway_key = gateway_key
        self.ballots = ballots
        self.rate = rate
        self.interval_s = interval_s
        self.max_inflight = max_inflight
        self.source = source
        self.rng = random.Random(seed)
        self.batches_sent = 0
        self.batches_failed = 0
        self._inflight: set[asyncio.Task[None]] = set()

    def make_batch(self, count: int) -> list[Tx]:
        keys = [SigningKey.generate() for _ in range(count)]
        registration = make_registration(self.chain_id, self.gateway_key, CAMPAIGN, [k.public_key for k in keys])
        txs: list[Tx] = [registration]
        now = time.time()
        self.tracker.offer(registration.hash, kind=REGISTRATION, source=self.source, raw=registration.raw, now=now)
        for key in keys:
            ballot = self.rng.choice(self.ballots)
            vote = make_vote(self.chain_id, key, CAMPAIGN, ballot.district_id, [ballot.initiative_id])
            self.tracker.offer(vote.hash, kind=VOTE, source=self.source, raw=vote.raw, depends=registration.hash,
                               now=now)
            txs.append(vote)
        return txs

    async def _send(self, session: aiohttp.ClientSession, txs: list[Tx]) -> None:
        result = await self.ring.send(session, self.tracker, txs)
        self.batches_sent += 1
        if result is None:
            self.batches_failed += 1

    async def run(self, stop: asyncio.Event) -> None:
        carry = 0.0
        async with aiohttp.ClientSession() as session:
            next_tick = time.monotonic()
            while not stop.is_set():
                carry += self.rate * self.interval_s
                count = int(carry)
                carry -= count
                if count and len(self._inflight) < self.max_inflight:
                    task = asyncio.create_task(self._send(session, self.make_batch(count)))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
                next_tick += self.interval_s
                try:
                    await asyncio.wait_for(stop.wait(), max(0.0, next_tick - time.monotonic()))
                except TimeoutError:
                    pass
            if self._inflight:
                await asyncio.wait(self._inflight, timeout=10)


class Resubmitter:
    """Re-sends what did not commit in time to another node (a client's duty; votes are idempotent)."""

    def __init__(self, tracker: Tracker, ring: NodeRing, *, resubmit_after_s: float = 6.0,
                 max_per_round: int = 2000, batch: int = 500, direct: DirectLoad | None = None) -> None:
        self.tracker = tracker
        self.ring = ring
        self.resubmit_after_s = resubmit_after_s
        self.max_per_round = max_per_round
        self.batch = batch
        self.direct = direct                      # its current gateway key signs revoked registrations again
        self.rounds = 0
        self.resigned = 0
        self._replaced: dict[bytes, bytes] = {}  # registration signed with a revoked key → signed again

    def _registration_for(self, record: TxRecord) -> TxRecord | None:
        """The registration a vote depends on, signed again when its key was revoked meanwhile."""
        records = self.tracker.records
        if record.depends is None:
            return None
        depends = self._replaced.get(record.depends, record.depends)
        registration = records.get(depends)
        if (registration is not None and registration.committed is None and registration.raw is not None
                and "revoked_key" in registration.rejections and self.direct is not None):
            old = decode_tx(registration.raw)
            key = self.direct.gateway_key
            if key.public_key not in old.signers:
                body = old.body
                assert isinstance(body, VotersRegister)
                fresh = make_registration(self.direct.chain_id, key, body.campaign_id, list(body.voter_keys))
                self.tracker.offer(fresh.hash, kind=REGISTRATION, source=registration.source, raw=fresh.raw)
                self._replaced[registration.tx_hash] = fresh.hash
                self._replaced[record.depends] = fresh.hash
                self.resigned += 1
                depends = fresh.hash
                registration = records[fresh.hash]
        record.depends = depends
        return registration

    def _due(self) -> list[list[bytes]]:
        due = [r for r in self.tracker.unconfirmed(time.time() - self.resubmit_after_s) if r.kind == VOTE]
        due.sort(key=lambda r: r.offered)
        groups: list[list[bytes]] = []
        for record in due[: self.max_per_round]:
            group: list[bytes] = []
            registration = self._registration_for(record)
            if registration is not None and registration.committed is None and registration.raw is not None:
                group.append(registration.raw)
            if record.raw is not None:
                group.append(record.raw)
            groups.append(group)
        return groups

    async def resubmit_once(self, session: aiohttp.ClientSession) -> int:
        groups = self._due()
        if not groups:
            return 0
        self.rounds += 1
        sent = 0
        batch: list[bytes] = []
        batches: list[list[bytes]] = []
        for group in groups:
            for raw in group:
                if raw not in batch:
                    batch.append(raw)
            if len(batch) >= self.batch:
                batches.append(batch)
                batch = []
        if batch:
            batches.append(batch)
        for raws in batches:
            txs = [decode_tx(raw) for raw in raws]
            avoid = ""
            now = time.time()
            for tx in txs:
                record = self.tracker.records[tx.hash]
                avoid = avoid or record.last_node
                record.submits += 1
                record.last_submit = now
            self.tracker.resubmitted += sum(1 for tx in txs if self.tracker.records[tx.hash].kind == VOTE)
            await self.ring.send(session, self.tracker, txs, avoid=avoid)
            sent += len(txs)
        return sent

    async def run(self, stop: asyncio.Event, period_s: float = 1.0) -> None:
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                try:
                    await self.resubmit_once(session)
                except Exception:  # noqa: BLE001 - keep re-sending whatever one round hit
                    log.exception("re-send round failed")
                try:
                    await asyncio.wait_for(stop.wait(), period_s)
                except TimeoutError:
                    pass


# --- citizens through the gateway --------------------------------------------------------------

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CHOICE = re.compile(r'name="choice" value="([^"]+)"')
TX_HASH = re.compile(r'id="tx-hash"[^>]*>\s*([0-9a-f]{64})\s*<')
RECEIPT_STATUS = re.compile(r'id="receipt" data-status="([a-z]+)"')
CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
FLOW_TIMEOUT = aiohttp.ClientTimeout(total=20, sock_connect=3)


class Outbox:
    """Reads new lines of the gateway's SMS outbox; one reader for all flows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.codes: dict[str, str] = {}
        self._lock = asyncio.Lock()

    def _read_new(self) -> None:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        self.offset += end + 1
        for line in data[: end + 1].splitlines():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            found = CODE.search(str(message.get("text", "")))
            if found:
                self.codes[str(message.get("to"))] = found.group(1)

    async def code_for(self, phone: str, timeout: float = 8.0) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with self._lock:
                code = self.codes.pop(phone, None)
                if code is None:
                    self._read_new()
                    code = self.codes.pop(phone, None)
            if code is not None:
                return code
            await asyncio.sleep(0.05)
        return None


class FlowFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GatewayLoad:
    def __init__(self, tracker: Tracker, gateway_url: str, outbox: Outbox, ballots: list[Ballot], *,
                 rate: float, concurrency: int = 4, seed: int = 0) -> None:
        self.tracker = tracker
        self.url = gateway_url
        self.outbox = outbox
        self.districts = sorted({b.district_id for b in ballots})
        self.rate = rate
        self.concurrency = concurrency
        self.rng = random.Random(seed)
        self._phones = itertools.count(self.rng.randrange(10**8, 9 * 10**8))
        self.flows = 0
        self.skipped = 0
        self.flow_seconds: list[float] = []

    def _phone(self) -> str:
        return f"+79{next(self._phones) % 10**9:09d}"

    async def _expect(self, response: aiohttp.ClientResponse, step: str, ok: tuple[int, ...] = (200,)) -> str:
        text = await response.text()
        if response.status not in ok:
            raise FlowFailed(f"{step}:{response.status}")
        return text

    async def flow(self) -> None:
        started = time.time()
        phone = self._phone()
        district = self.rng.choice(self.districts)
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar, timeout=FLOW_TIMEOUT) as session:
            async with session.get(self.url + "/login") as response:
                page = await self._expect(response, "login_page")
            token = _csrf(page, "login_page")
            async with session.post(self.url + "/login", data={"csrf_token": token, "phone": phone}) as response:
                page = await self._expect(response, "phone")
            token = _csrf(page, "phone")
            code = await self.outbox.code_for(phone)
            if code is None:
                raise FlowFailed("sms_missing")
            async with session.post(self.url + "/login/code", data={"csrf_token": token, "code": code},
                                    allow_redirects=False) as response:
                await self._expect(response, "code", ok=(303,))
            path = f"/c/{CAMPAIGN}/d/{district}"
            async with session.get(self.url + path) as response:
                page = await self._expect(response, "ballot")
            token = _csrf(page, "ballot")
            choices = CHOICE.findall(page)
            if not choices:
                raise FlowFailed("no_choices")
            cast_at = time.time()
            async with session.post(self.url + path + "/vote",
                                    data={"csrf_token": token, "choice": self.rng.choice(choices)}) as response:
                page = await self._expect(response, "vote", ok=(200,))     # the receipt page (POST-redirect-GET)
                state = RECEIPT_STATUS.search(page)
                answer = 202 if state is not None and state.group(1) == "pending" else response.status
            found = TX_HASH.search(page)
            if found is None:
                raise FlowFailed("no_tx_hash")
            tx_hash = bytes.fromhex(found.group(1))
            self.tracker.offer(tx_hash, kind=VOTE, source=GATEWAY, node="gateway", now=cast_at)
            self.tracker.ack(tx_hash)
            self.tracker.reject(tx_hash, f"page_{answer}")  # 200 counted, 202 pending (kept as a note)
        self.flows += 1
        self.flow_seconds.append(time.time() - started)

    async def _worker(self, stop: asyncio.Event, tokens: asyncio.Queue[None]) -> None:
        while not stop.is_set():
            getter = asyncio.ensure_future(tokens.get())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not getter.done():
                getter.cancel()
                return
            try:
                await self.flow()
            except FlowFailed as exc:
                self.tracker.flow_failed(exc.reason)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                self.tracker.flow_failed(f"network:{exc.__class__.__name__}")

    async def run(self, stop: asyncio.Event) -> None:
        tokens: asyncio.Queue[None] = asyncio.Queue(maxsize=self.concurrency)
        workers = [asyncio.create_task(self._worker(stop, tokens)) for _ in range(self.concurrency)]
        interval = 1.0 / self.rate if self.rate > 0 else 1.0
        try:
            while not stop.is_set():
                if tokens.full():
                    self.skipped += 1   # every worker is busy: the offered rate is more than flows can do
                else:
                    tokens.put_nowait(None)
                try:
                    await asyncio.wait_for(stop.wait(), interval)
                except TimeoutError:
                    pass
        finally:
            await asyncio.wait(workers, timeout=30)
            for worker in workers:
                worker.cancel()


def _csrf(page: str, step: str) -> str:
    found = CSRF.search(page)
    if found is None:
        raise FlowFailed(f"{step}:no_csrf")
    return found.group(1)
