"""An HTTP client for the node public API (ARCHITECTURE §6, docs/INTERNALS.md).

``NodeClient`` is async (aiohttp) and knows several base URLs: a request goes to the node that
answered last; on a connection error, a timeout or a 5xx answer it moves on to the next node. A
4xx answer is the node's verdict and raises ``NodeApiError`` carrying the code and message of the
JSON error body; 429 (over budget) and 503 (shedding load) are retried on the other nodes and then,
after ``Retry-After``, again, up to ``busy_rounds`` times. ``SyncNodeClient`` wraps it for the CLI.

The client checks nothing cryptographic: callers that must not trust the node (``veche verify``,
``veche receipt verify``) check what it returns themselves.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from chain import codec
from chain.errors import DecodeError, VecheError
from chain.numbers import parse_seconds
from genesis.model import Genesis, parse_genesis
from node.ops.tls import default_context

log = logging.getLogger("veche.client")

API = "/api/v1"
MAX_RAW_RESPONSE_BYTES = 64 * 1024 * 1024
MAX_RETRY_AFTER_S = 5.0
T = TypeVar("T")


class ClientError(VecheError):
    """Root of the client's errors."""

    code = "client_error"


class NodeUnreachable(ClientError):
    """No node answered usefully (connection refused, timeout, 5xx, or every node busy)."""

    code = "node_unreachable"


class NodeProtocolError(ClientError):
    """A node answered with something that is not what the API promises."""

    code = "bad_response"


class NodeApiError(ClientError):
    """A node refused the request with a 4xx status and a JSON error body."""

    def __init__(self, status: int, code: str, message: str, url: str) -> None:
        super().__init__(message, code)
        self.status = status
        self.url = url

    def __str__(self) -> str:
        return f"{self.code}: {self.message} (HTTP {self.status} from {self.url})"


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class SubmitResult:
    accepted: tuple[str, ...]
    rejected: tuple[Rejection, ...]
    node: str


def normalize_url(url: str) -> str:
    cleaned = url.strip().rstrip("/")
    if not cleaned.startswith(("http://", "https://")) or len(cleaned) <= len("http://"):
        raise ClientError(f"node URL {url!r} must be an http:// or https:// base URL", "bad_url")
    return cleaned


def normalize_urls(urls: str | Iterable[str]) -> list[str]:
    items = [urls] if isinstance(urls, str) else list(urls)
    cleaned = [normalize_url(u) for u in items]
    if not cleaned:
        raise ClientError("at least one node URL is needed", "bad_url")
    return list(dict.fromkeys(cleaned))


class _Busy(Exception):
    def __init__(self, retry_after: float, status: int) -> None:
        super().__init__(status)
        self.retry_after = retry_after
        self.status = status


class NodeClient:
    """Async client for one or more nodes of the same chain. Use as ``async with``."""

    def __init__(self, urls: str | Iterable[str], *, timeout: float = 15.0, connect_timeout: float = 3.0,
                 busy_rounds: int = 8, session: aiohttp.ClientSession | None = None,
                 max_connections: int = 64) -> None:
        self.urls = normalize_urls(urls)
        self.timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self.busy_rounds = busy_rounds
        self._session = session
        self._owns_session = session is None
        self._max_connections = max_connections
        self._preferred = 0

    async def __aenter__(self) -> "NodeClient":
        self._ensure_session()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=self._max_connections,
                                             ssl=default_context())
            self._session = aiohttp.ClientSession(timeout=self.timeout, connector=connector)
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._owns_session and not self._session.closed:
            await self._session.close()

    @property
    def current_url(self) -> str:
        return self.urls[self._preferred]

    # --- transport -----------------------------------------------------------------------------

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      body: bytes | None = None, raw: bool = False, only: str | None = None,
                      headers: dict[str, str] | None = None) -> Any:
        """Send one request with fail-over; return parsed JSON, or bytes when ``raw``.

        ``only`` pins the request to one node (no fail-over), for callers comparing nodes.
        """
        session = self._ensure_session()
        order = [normalize_url(only)] if only else self.urls[self._preferred:] + self.urls[:self._preferred]
        failures: list[str] = []
        for round_ in range(self.busy_rounds + 1):
            wait = 0.0
            for url in order:
                try:
                    result = await self._send(session, method, url, path, params, body, raw, headers)
                except _Busy as busy:
                    failures.append(f"{url}: busy (HTTP {busy.status})")
                    wait = max(wait, busy.retry_after)
                    continue
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    failures.append(f"{url}: {describe_failure(exc)}")
                    continue
                if only is None:
                    self._preferred = self.urls.index(url)
                return result
            if wait == 0.0:
                break  # every node failed outright: no point in waiting
            log.info("every node is busy; retrying %s %s in %.2f s", method, path, wait)
            await asyncio.sleep(min(wait * (1 + round_ / 2), MAX_RETRY_AFTER_S))
        raise NodeUnreachable(f"{method} {path} failed on every node: " + "; ".join(failures[-len(order):]))

    async def _send(self, session: aiohttp.ClientSession, method: str, url: str, path: str,
                    params: dict[str, Any] | None, body: bytes | None, raw: bool,
                    extra_headers: dict[str, str] | None = None) -> Any:
        headers = {"Content-Type": "application/octet-stream"} if body is not None else None
        if extra_headers:
            headers = {**(headers or {}), **extra_headers}
        async with session.request(method, url + path, params=params, data=body, headers=headers) as response:
            if response.status in (429, 503):
                raise _Busy(parse_retry_after(response.headers.get("Retry-After")), response.status)
            if response.status >= 500:
                text = await response.text(errors="replace")
                raise aiohttp.ClientResponseError(response.request_info, (), status=response.status,
                                                  message=f"HTTP {response.status}: {text[:200]}")
            data = await response.read()
            if response.status >= 400:
                raise api_error(response.status, data, url + path)
            if raw:
                return data
            try:
                return json.loads(data)
            except ValueError as exc:
                raise NodeProtocolError(f"{url}{path} did not return JSON") from exc

    # --- API -----------------------------------------------------------------------------------

    async def status(self, *, only: str | None = None) -> dict[str, Any]:
        return expect_object(await self.request("GET", f"{API}/status", only=only), "status")

    async def genesis(self, *, only: str | None = None) -> dict[str, Any]:
        return expect_object(await self.request("GET", f"{API}/genesis", only=only), "genesis")

    async def submit(self, raw_txs: Sequence[bytes], *, only: str | None = None) -> SubmitResult:
        """POST encoded transactions; the node's verdict per transaction."""
        body = codec.encode([bytes(raw) for raw in raw_txs])
        reply = expect_object(await self.request("POST", f"{API}/txs", body=body, only=only), "txs")
        used = only or self.current_url
        accepted = reply.get("accepted")
        rejected = reply.get("rejected")
        if not isinstance(accepted, list) or not isinstance(rejected, list):
            raise NodeProtocolError("POST /txs reply lacks accepted/rejected lists")
        rejections = []
        for item in rejected:
            if not isinstance(item, dict) or not isinstance(item.get("index"), int):
                raise NodeProtocolError("POST /txs reply has a malformed rejection")
            rejections.append(Rejection(item["index"], str(item.get("code", "rejected")), str(item.get("message", ""))))
        return SubmitResult(tuple(str(h) for h in accepted), tuple(rejections), used)

    async def tx(self, tx_hash: str, *, only: str | None = None) -> dict[str, Any]:
        return expect_object(await self.request("GET", f"{API}/txs/{tx_hash}", only=only), "tx")

    async def block(self, height: int, *, only: str | None = None) -> dict[str, Any]:
        return expect_object(await self.request("GET", f"{API}/blocks/{height}", only=only), "block")

    async def raw_block(self, height: int, *, only: str | None = None) -> list[Any]:
        data = await self.request("GET", f"{API}/blocks/{height}/raw", raw=True, only=only)
        value = decode_msgpack(data, "block")
        if not isinstance(value, list) or len(value) != 2:
            raise NodeProtocolError(f"block {height}/raw is not [block, certificate]")
        return value

    async def raw_blocks(self, start: int, end: int, *, only: str | None = None) -> list[list[Any]]:
        """``[[block, certificate], ...]`` for heights start..end (the node may return fewer)."""
        data = await self.request("GET", f"{API}/blocks/raw", params={"from": start, "to": end}, raw=True,
                                  only=only)
        value = decode_msgpack(data, "blocks/raw")
        if not isinstance(value, list) or not all(isinstance(v, list) and len(v) == 2 for v in value):
            raise NodeProtocolError("blocks/raw is not a list of [block, certificate]")
        return value

    async def campaigns(self) -> Any:
        return await self.request("GET", f"{API}/campaigns")

    async def campaign(self, campaign_id: str) -> dict[str, Any]:
        return expect_object(await self.request("GET", f"{API}/campaigns/{campaign_id}"), "campaign")

    async def tally(self, campaign_id: str, *, only: str | None = None) -> dict[str, Any]:
        return expect_object(await self.request("GET", f"{API}/campaigns/{campaign_id}/tally", only=only), "tally")

    async def ballots(self, campaign_id: str, *, after: str | None = None, limit: int = 2000,
                      only: str | None = None) -> dict[str, Any]:
        """One page of a campaign's anonymised ballots in commit order (``next`` is the cursor to go on)."""
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        return expect_object(await self.request("GET", f"{API}/campaigns/{campaign_id}/ballots", params=params,
                                                only=only), "ballots")

    async def initiative(self, campaign_id: str, initiative_id: str) -> dict[str, Any]:
        return expect_object(await self.request(
            "GET", f"{API}/campaigns/{campaign_id}/initiatives/{initiative_id}"), "initiative")

    async def upload_document(self, data: bytes, headers: dict[str, str], *, only: str | None = None) -> dict[str, Any]:
        """``POST /api/v1/documents`` with the uploader's X-Veche-* headers and Content-Type (docs/NODE.md §14)."""
        return expect_object(await self.request("POST", f"{API}/documents", body=data, headers=headers, only=only),
                             "document upload")

    async def document(self, digest_hex: str, *, only: str | None = None) -> bytes:
        """A document by its SHA-256 (``GET /api/v1/documents/{sha256}``); the caller re-hashes it."""
        data: bytes = await self.request("GET", f"{API}/documents/{digest_hex}", raw=True, only=only)
        return data

    async def documents_summary(self, *, only: str | None = None) -> dict[str, Any]:
        return expect_object(await self.request("GET", f"{API}/documents", only=only), "documents")
    async def validators(self, height: int | None = None, *, only: str | None = None) -> dict[str, Any]:
        """Who signs what at ``height`` (default: the next block): ``GET /api/v1/validators``."""
        params = None if height is None else {"height": height}
        return expect_object(await self.request("GET", f"{API}/validators", params=params, only=only), "validators")

    async def validator_changes(self, *, only: str | None = None) -> dict[str, Any]:
        """The light client's proofs of every validator set change: ``GET /api/v1/validators/changes``."""
        return expect_object(await self.request("GET", f"{API}/validators/changes", only=only), "validator changes")

    # --- waiting -------------------------------------------------------------------------------

    async def wait_for_tx(self, tx_hash: str, *, timeout: float = 60.0, interval: float = 0.2) -> dict[str, Any]:
        """Poll until the transaction is committed or rejected; ``asyncio.TimeoutError`` otherwise."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    found = await self.tx(tx_hash)
                except NodeUnreachable:
                    found = {"status": "unknown"}
                if found.get("status") in ("committed", "rejected"):
                    return found
                await asyncio.sleep(interval)


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.message
    text = str(exc) or exc.__class__.__name__
    return text


def parse_retry_after(value: str | None) -> float:
    return max(parse_seconds(value, default=0.5, maximum=MAX_RETRY_AFTER_S), 0.05)


def api_error(status: int, data: bytes, where: str) -> NodeApiError:
    try:
        body = json.loads(data)
        error = body["error"]
        return NodeApiError(status, str(error["code"]), str(error["message"]), where)
    except (ValueError, KeyError, TypeError):
        text = data[:200].decode("utf-8", errors="replace")
        return NodeApiError(status, f"http_{status}", text or f"HTTP {status}", where)


def expect_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise NodeProtocolError(f"the node's {what} reply is not a JSON object")
    return value


def decode_msgpack(data: bytes, what: str) -> Any:
    try:
        return codec.decode(data, max_bytes=MAX_RAW_RESPONSE_BYTES)
    except DecodeError as exc:
        raise NodeProtocolError(f"the node's {what} reply is not canonical msgpack: {exc.message}") from exc


class SyncNodeClient:
    """Blocking wrapper for the CLI: every call runs the async client in ``asyncio.run``."""

    def __init__(self, urls: str | Iterable[str], **options: Any) -> None:
        self.urls = normalize_urls(urls)
        self.options = options

    def call(self, action: Callable[[NodeClient], Awaitable[T]]) -> T:
        async def run() -> T:
            async with NodeClient(self.urls, **self.options) as client:
                return await action(client)
        return asyncio.run(run())

    def status(self) -> dict[str, Any]:
        return self.call(lambda c: c.status())

    def genesis(self) -> dict[str, Any]:
        return self.call(lambda c: c.genesis())

    def submit(self, raw_txs: Sequence[bytes]) -> SubmitResult:
        return self.call(lambda c: c.submit(raw_txs))

    def tx(self, tx_hash: str) -> dict[str, Any]:
        return self.call(lambda c: c.tx(tx_hash))

    def block(self, height: int) -> dict[str, Any]:
        return self.call(lambda c: c.block(height))

    def tally(self, campaign_id: str) -> dict[str, Any]:
        return self.call(lambda c: c.tally(campaign_id))


# --- helpers shared by the operator and transparency commands ------------------------------------


async def fetch_genesis(client: NodeClient) -> Genesis:
    """The node's genesis document, parsed, after checking it hashes to the node's ``genesis_hash``."""
    document = await client.genesis()
    status = await client.status()
    genesis = parse_genesis(document)
    published = status.get("genesis_hash")
    if published is not None and published != genesis.hash.hex():
        raise NodeProtocolError(f"the genesis document served by {client.current_url} hashes to "
                                f"{genesis.hash.hex()}, but its status says {published}")
    return genesis


@dataclass(frozen=True, slots=True)
class TxOutcome:
    tx_hash: str
    status: str          # committed | rejected | timeout
    height: int | None
    index: int | None
    code: str
    message: str


async def submit_and_wait(client: NodeClient, raw_tx: bytes, tx_hash: str, *, timeout: float = 60.0) -> TxOutcome:
    """Submit one transaction and wait until it is committed or rejected (or ``timeout``)."""
    result = await client.submit([raw_tx])
    if result.rejected:
        rejection = result.rejected[0]
        known = await client.tx(tx_hash)  # a re-run of a committed command is not an error
        if known.get("status") == "committed":
            return TxOutcome(tx_hash, "committed", known.get("height"), known.get("index"), "", "")
        return TxOutcome(tx_hash, "rejected", None, None, rejection.code, rejection.message)
    try:
        found = await client.wait_for_tx(tx_hash, timeout=timeout)
    except TimeoutError:
        return TxOutcome(tx_hash, "timeout", None, None, "timeout",
                         f"not committed within {timeout:g} s (it may still commit)")
    if found.get("status") == "committed":
        return TxOutcome(tx_hash, "committed", found.get("height"), found.get("index"), "", "")
    return TxOutcome(tx_hash, "rejected", None, None, str(found.get("code", "rejected")),
                     str(found.get("message", "")))


# --- many transactions: commit watching and a fail-over pump (the load generator's engine) ----------


async def wait_event(event: asyncio.Event, timeout: float) -> None:
    """Wait for ``event`` at most ``timeout`` seconds.

    ``asyncio.timeout``, not ``asyncio.wait_for``: on Python 3.11 ``wait_for`` can swallow a
    cancellation that arrives as the event fires, and a loop around it then never stops.
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        pass


class CommitWatcher:
    """Follows new blocks (``GET /blocks/{h}``) and records the hashes of committed transactions."""

    def __init__(self, client: NodeClient, start_height: int, *, poll_s: float = 0.05, fetch_parallel: int = 8) -> None:
        self.client = client
        self.height = start_height
        self.poll_s = poll_s
        self.fetch_parallel = fetch_parallel
        self.committed: dict[str, int] = {}
        self.last_block_time_ms = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self.error: BaseException | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        try:
            while not self._stopped:
                try:
                    status = await self.client.status()
                    top = status.get("height")
                    if isinstance(top, int) and top > self.height:
                        await self._catch_up(top)
                        continue
                except (NodeUnreachable, NodeApiError) as exc:
                    # e.g. fail-over to a node a block behind the one whose status we read (404)
                    log.warning("commit watcher: %s", exc)
                    await asyncio.sleep(0.3)
                    continue
                await asyncio.sleep(self.poll_s)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # surfaced to waiters
            self.error = exc
            self._signal()

    async def _catch_up(self, top: int) -> None:
        while self.height < top:
            heights = list(range(self.height + 1, min(top, self.height + self.fetch_parallel) + 1))
            blocks = await asyncio.gather(*(self.client.block(h) for h in heights))
            for block in blocks:
                for tx_hash in block.get("txs", []):
                    self.committed[str(tx_hash)] = int(block["height"])
                header = block.get("header", {})
                if isinstance(header, dict) and isinstance(header.get("time_ms"), int):
                    self.last_block_time_ms = header["time_ms"]
            self.height = heights[-1]
            self._signal()

    def _signal(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, timeout: float) -> None:
        """Wait until new blocks were read (or ``timeout``)."""
        event = self._changed
        await wait_event(event, timeout)
        if self.error is not None:
            raise NodeUnreachable(f"stopped following blocks: {self.error}")

    async def wait_all(self, hashes: Iterable[str], *, timeout: float) -> None:
        """Wait until every hash is committed; ``TimeoutError`` otherwise."""
        wanted = set(hashes)
        async with asyncio.timeout(timeout):
            while not wanted.issubset(self.committed):
                await self.changed(1.0)


RETRYABLE_CODES = frozenset({"not_registered", "outside_window", "unknown_campaign", "mempool_full", "busy",
                             "expired"})
SETTLED_CODES = frozenset({"already_pending", "already_committed", "duplicate"})


@dataclass
class _Outgoing:
    tx_hash: str
    raw: bytes
    attempts: int = 0
    not_before: float = 0.0
    last_node: str | None = None
    sent_at: float = 0.0


@dataclass
class PumpStats:
    submitted: int = 0
    accepted: int = 0
    resent: int = 0
    failed: dict[str, tuple[str, str]] = field(default_factory=dict)


class TxPump:
    """Sends many transactions to several nodes, concurrently, until each one is committed.

    Batches go round-robin to the nodes that answer; a node that fails is left alone for a few
    seconds and its batch goes to the next one. Transactions accepted but not committed after
    ``resend_after`` seconds — or longer, while the backlog needs longer to drain at the observed
    commit rate — are sent again to another node (a re-sent transaction is the same
    transaction: same hash, so it can never commit twice). Rejections that may pass later (voter
    key not yet known to that node, mempool full) are retried; others are recorded as failed.
    """

    def __init__(self, client: NodeClient, watcher: CommitWatcher, *, batch_size: int = 500, concurrency: int = 6,
                 resend_after: float = 10.0, max_outstanding: int = 10_000, max_attempts: int = 8) -> None:
        self.client = client
        self.watcher = watcher
        self.nodes = list(client.urls)
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.resend_after = resend_after
        self.max_outstanding = max_outstanding
        self.max_attempts = max_attempts
        self.stats = PumpStats()
        self._queue: deque[_Outgoing] = deque()
        self._outstanding: dict[str, _Outgoing] = {}
        self._known: set[str] = set()
        self._down_until: dict[str, float] = {}
        self._next_node = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._rate_samples: deque[tuple[float, int]] = deque()
        self._stopped = False

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._sender()) for _ in range(self.concurrency)]
        self._tasks.append(asyncio.create_task(self._monitor()))

    async def stop(self) -> None:
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def send(self, items: Iterable[tuple[str, bytes]]) -> None:
        for tx_hash, raw in items:
            if tx_hash in self._known:
                continue
            self._known.add(tx_hash)
            self._queue.append(_Outgoing(tx_hash, raw))
            self.stats.submitted += 1
        self._wake.set()

    def done(self, tx_hashes: Iterable[str]) -> bool:
        return all(h in self.watcher.committed or h in self.stats.failed for h in tx_hashes)

    @property
    def committed(self) -> int:
        return sum(1 for h in self._known if h in self.watcher.committed)

    def _pick_node(self, avoid: str | None) -> str:
        now = time.monotonic()
        for offset in range(len(self.nodes)):
            url = self.nodes[(self._next_node + offset) % len(self.nodes)]
            if self._down_until.get(url, 0) <= now and (url != avoid or len(self.nodes) == 1):
                self._next_node = (self._next_node + offset + 1) % len(self.nodes)
                return url
        url = self.nodes[self._next_node % len(self.nodes)]
        self._next_node += 1
        return url

    def _take_batch(self) -> list[_Outgoing]:
        now = time.monotonic()
        batch: list[_Outgoing] = []
        deferred: list[_Outgoing] = []
        while self._queue and len(batch) < self.batch_size:
            item = self._queue.popleft()
            if item.tx_hash in self.watcher.committed:
                continue
            (batch if item.not_before <= now else deferred).append(item)
        self._queue.extendleft(reversed(deferred))
        return batch

    async def _sender(self) -> None:
        while not self._stopped:
            if len(self._outstanding) >= self.max_outstanding:
                await self.watcher.changed(0.5)
                self._prune()
                continue
            batch = self._take_batch()
            if not batch:
                self._wake.clear()
                await wait_event(self._wake, 0.2)
                continue
            avoid = batch[0].last_node
            url = self._pick_node(avoid)
            try:
                result = await self.client.submit([item.raw for item in batch], only=url)
            except (NodeUnreachable, NodeProtocolError) as exc:
                log.warning("%s failed (%s); its batch goes to another node", url, exc.message)
                self._down_until[url] = time.monotonic() + 3.0
                for item in batch:
                    item.last_node = url
                self._queue.extendleft(reversed(batch))
                continue
            except NodeApiError as exc:
                for item in batch:
                    self.stats.failed[item.tx_hash] = (exc.code, exc.message)
                continue
            self._settle(batch, result, url)

    def _settle(self, batch: list[_Outgoing], result: SubmitResult, url: str) -> None:
        now = time.monotonic()
        rejected = {r.index: r for r in result.rejected}
        for index, item in enumerate(batch):
            item.attempts += 1
            item.last_node = url
            item.sent_at = now
            rejection = rejected.get(index)
            if rejection is None or rejection.code in SETTLED_CODES:
                self._outstanding[item.tx_hash] = item
                self.stats.accepted += rejection is None
            elif rejection.code in RETRYABLE_CODES and item.attempts < self.max_attempts * 4:
                item.not_before = now + min(0.05 * 2 ** min(item.attempts, 6), 2.0)
                self._queue.append(item)
            else:
                self.stats.failed[item.tx_hash] = (rejection.code, rejection.message)

    def _prune(self) -> None:
        committed = self.watcher.committed
        for tx_hash in [h for h in self._outstanding if h in committed]:
            del self._outstanding[tx_hash]

    async def _monitor(self) -> None:
        while not self._stopped:
            await self.watcher.changed(1.0)
            self._prune()
            now = time.monotonic()
            patience = self.resend_patience(now)
            stale = [item for item in self._outstanding.values() if now - item.sent_at > patience]
            for item in stale:
                del self._outstanding[item.tx_hash]
                if item.attempts >= self.max_attempts:
                    await self._give_up(item)
                    continue
                self.stats.resent += 1
                self._queue.append(item)
            if stale:
                self._wake.set()

    def resend_patience(self, now: float) -> float:
        """Seconds to wait for a commit before re-sending: ``resend_after``, or three times the time
        the outstanding backlog needs at the commit rate of the last seconds, if that is longer."""
        count = len(self.watcher.committed)
        self._rate_samples.append((now, count))
        while len(self._rate_samples) > 2 and now - self._rate_samples[0][0] > 10.0:
            self._rate_samples.popleft()
        first_time, first_count = self._rate_samples[0]
        if count - first_count < 100 or now - first_time < 1.0:
            return self.resend_after      # too few commits lately to estimate a rate
        rate = (count - first_count) / (now - first_time)
        backlog = len(self._outstanding) + len(self._queue)
        return max(self.resend_after, 3.0 * backlog / rate)

    async def _give_up(self, item: _Outgoing) -> None:
        try:
            found = await self.client.tx(item.tx_hash)
        except ClientError:
            found = {}
        if found.get("status") == "committed":
            self.watcher.committed[item.tx_hash] = int(found.get("height") or 0)
            return
        code = str(found.get("code", "not_committed"))
        message = str(found.get("message", f"not committed after {item.attempts} attempts"))
        self.stats.failed[item.tx_hash] = (code, message)

    async def drain(self, tx_hashes: Iterable[str], *, timeout: float) -> None:
        """Wait until each of ``tx_hashes`` is committed or failed; ``TimeoutError`` otherwise."""
        wanted = list(tx_hashes)
        async with asyncio.timeout(timeout):
            while not self.done(wanted):
                await self.watcher.changed(1.0)
