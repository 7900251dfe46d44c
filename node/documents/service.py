"""A node's document service: which documents the chain names, uploads, serving, and replication.

A document is **named** when a committed transaction names its hash (``initiative.submit``'s
``document_hash``, ``progress.report``'s ``evidence_hash``), or when a named manifest that this
node holds lists it (chain/documents.py). Only named documents are served; an upload nobody names
is kept *provisionally* (bounded per key and in total) until a transaction naming it commits —
then it becomes permanent — or its time runs out.

Every node replicates: a named document it lacks is fetched from the other nodes' public API
(``GET /api/v1/documents/{sha256}``), checked against its hash (and a manifest's declared type
and size), and stored. The named set is rebuilt from the committed state at start, so after a
``kill -9`` a node knows again what it must hold and fetches what it lost.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from chain.crypto import sha256, verify
from chain.documents import DOCUMENT_TYPES, MANIFEST, decode_manifest, sniff_type, upload_signing_bytes
from chain.errors import DecodeError, SignatureError
from chain.ledger import Ledger
from chain.records import Progress
from chain.tx import InitiativeSubmit, ProgressReport, decode_tx
from node.documents.store import DocumentLimits, DocumentStore, Held, StoreFullError
from node.errors import ApiError, BadRequest, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType
from node.metrics import Counter, NodeMetrics

log = logging.getLogger("veche.node.documents")

FETCH_PARALLEL = 2
FETCH_TIMEOUT_S = 30.0
RETRY_MIN_S = 0.5
RETRY_MAX_S = 30.0
EXPIRE_EVERY_S = 30.0
IDLE_WAKE_S = 1.0
_NAMING_PREFIXES = tuple(b"\x94" + bytes([0xa0 + len(kind)]) + kind.encode()
                         for kind in ("initiative.submit", "progress.report"))


class Unauthenticated(ApiError):
    status = 401
    code = "unauthenticated"


@dataclass(frozen=True, slots=True)
class Expectation:
    """What naming says about a document: a manifest entry fixes its type and size; a transaction nothing."""

    type: str | None = None
    size: int | None = None


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class DocumentService:
    def __init__(self, store: DocumentStore, *, chain_id: str, ledger: Ledger, metrics: NodeMetrics | None = None,
                 sources: Callable[[], list[tuple[str, str]]] = list, clock_ms: Callable[[], int] = wall_clock_ms,
                 check_disk: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.check_disk = check_disk
        self.chain_id = chain_id
        self.ledger = ledger
        self.sources = sources
        self.clock_ms = clock_ms
        self.named: dict[bytes, Expectation] = {}
        self._expanded: set[bytes] = set()
        self._retry_at: dict[bytes, float] = {}
        self._attempts: dict[bytes, int] = {}
        self._wake: asyncio.Event | None = None
        self._session: aiohttp.ClientSession | None = None
        self.fetched = 0
        self._fetched_metric: Counter | None = None
        if metrics is not None:
            registry = metrics
            registry.gauge("veche_documents_bytes", "Bytes of documents this node holds (committed and provisional).",
                           lambda: self.store.total_bytes)
            registry.gauge("veche_documents_provisional_bytes",
                           "Bytes of uploads no committed transaction names yet.", lambda: self.store.provisional_bytes)
            registry.gauge("veche_documents_missing", "Documents the chain names that this node does not hold yet.",
                           lambda: len(self.missing()))
            self._fetched_metric = registry.counter("veche_documents_fetched_total",
                                                    "Named documents fetched from other nodes.")

    @property
    def limits(self) -> DocumentLimits:
        return self.store.limits

    # --- the named set ----------------------------------------------------------------------------

    def open(self) -> None:
        """Open the store and name every document the committed state names (synchronous, at start)."""
        self.store.open()
        state = self.ledger.state
        for initiative in list(state.initiatives.values()):
            self.name(initiative.spec.document_hash)
        for _, value in self.ledger.store.iterate(b"S/p/"):
            self.name(Progress.decode(value).report.evidence_hash)
        for digest in list(self.named):
            self._expand_if_manifest(digest)

    def name(self, digest: bytes, expectation: Expectation = Expectation()) -> None:
        if len(digest) != 32:
            return   # an empty hash names nothing
        if digest not in self.named or (self.named[digest].type is None and expectation.type is not None):
            self.named[digest] = expectation
            if self._wake is not None:
                self._wake.set()

    def on_block(self, txs: list[bytes] | tuple[bytes, ...]) -> None:
        """A block committed: name what its ``initiative.submit`` / ``progress.report`` transactions name."""
        for raw in txs:
            if not raw.startswith(_NAMING_PREFIXES):
                continue
            try:
                body = decode_tx(raw).body
            except DecodeError:
                continue
            if isinstance(body, InitiativeSubmit):
                self.name(body.document_hash)
            elif isinstance(body, ProgressReport):
                self.name(body.evidence_hash)

    def _expand_if_manifest(self, digest: bytes) -> None:
        held = self.store.held.get(digest)
        if held is None or held.type != MANIFEST or digest in self._expanded:
            return
        data = self.store.read(digest)
        if data is None:
            return
        self._expand(digest, data)

    def _expand(self, digest: bytes, data: bytes) -> None:
        try:
            manifest = decode_manifest(data)
        except DecodeError as exc:
            log.warning("named manifest %s does not decode (%s); its entries are not named", digest.hex(), exc.message)
            self._expanded.add(digest)
            return
        self._expanded.add(digest)
        for entry in manifest.entries:
            self.name(entry.sha256, Expectation(entry.type, entry.size))

    def missing(self) -> list[bytes]:
        return [digest for digest in self.named if digest not in self.store.held]

    def is_named(self, digest: bytes) -> bool:
        return digest in self.named

    # --- serving ----------------------------------------------------------------------------------

    async def read(self, digest: bytes) -> tuple[bytes, str]:
        if digest not in self.named:
            raise NotFound("no committed transaction names this document; this node serves only documents "
                           "the chain names", "unknown_document")
        data = await asyncio.to_thread(self.store.read, digest) if digest in self.store.held else None
        if data is None:
            raise NotFound("a committed transaction names this document but this node does not hold it yet; "
                           "ask another node or try again shortly", "not_replicated")
        return data, sniff_type(data) or "application/octet-stream"

    def summary(self) -> dict[str, Any]:
        held = self.store.held.values()
        limits = self.limits
        return {
            "documents": sum(1 for h in held if not h.provisional),
            "provisional": sum(1 for h in held if h.provisional),
            "bytes": self.store.total_bytes, "provisional_bytes": self.store.provisional_bytes,
            "named": len(self.named), "missing": len(self.missing()),
            "types": list(DOCUMENT_TYPES),
            "limits": {"max_document_bytes": limits.max_document_bytes, "max_total_bytes": limits.max_total_bytes,
                       "max_provisional_bytes": limits.max_provisional_bytes,
                       "max_provisional_per_key": limits.max_provisional_per_key,
                       "provisional_ttl_ms": limits.provisional_ttl_ms},
        }

    # --- uploads ----------------------------------------------------------------------------------

    def authorize(self, digest: bytes, public_key: bytes, signature: bytes) -> None:
        """The uploader signed this hash with a committee or district operator key of this chain."""
        try:
            verify(public_key, signature, upload_signing_bytes(self.chain_id, digest))
        except SignatureError as exc:
            raise Forbidden(f"the upload signature does not verify for this document on chain {self.chain_id!r}",
                            "bad_signature") from exc
        if not self.may_upload(public_key):
            raise Forbidden("only committee and district operator keys may upload documents", "permission_denied")

    def may_upload(self, public_key: bytes) -> bool:
        roster = self.ledger.state.roster_at(self.ledger.height + 1)   # the keys in force now (keys rotate)
        return public_key in roster.committee_keys or any(key == public_key for _, key in roster.district_operators)

    def check_room(self, size: int, digest: bytes, uploader: bytes) -> None:
        self.check_disk()   # 503 disk_low: the free-space watermark of the node (node/ops/disk.py)
        if size > self.limits.max_document_bytes:
            raise PayloadTooLarge(f"a document is at most {self.limits.max_document_bytes} bytes; this one is {size}",
                                  "too_large")
        if digest not in self.store.held:
            self.store.check_room(size, provisional=digest not in self.named, uploader=uploader, now_ms=self.clock_ms())

    async def upload(self, digest: bytes, data: bytes, content_type: str, uploader: bytes) -> tuple[Held, bool]:
        """Store an authorised upload; returns (what is held, whether it was new)."""
        if not data:
            raise BadRequest("an empty document", "empty")
        if sha256(data) != digest:
            raise BadRequest("the body's SHA-256 is not the hash in X-Veche-Document (the file changed on the way?)",
                             "hash_mismatch")
        kind = sniff_type(data)
        if kind is None:
            raise UnsupportedMediaType("only PDF, JPEG, PNG and WebP documents (and document manifests) are "
                                       "accepted; this file's first bytes are none of them", "unsupported_type")
        if content_type != kind:
            raise UnsupportedMediaType(f"the file is {kind} by its content but was sent as {content_type or 'nothing'}",
                                       "unsupported_type")
        if kind == MANIFEST:
            try:
                decode_manifest(data)
            except DecodeError as exc:
                raise BadRequest(f"the manifest is malformed: {exc.message}", "bad_manifest") from exc
        self._check_expectation(digest, kind, len(data))
        new = digest not in self.store.held
        try:
            held = await asyncio.to_thread(self.store.write, digest, data, kind, provisional=digest not in self.named,
                                           uploader=uploader, now_ms=self.clock_ms())
        except OSError as exc:
            log.error("cannot write document %s: %s", digest.hex(), exc)
            raise StoreFullError(f"this node could not store the document ({exc.strerror or exc}); try another "
                                 "node") from exc
        if kind == MANIFEST and digest in self.named:
            self._expand(digest, data)
        if self._wake is not None:
            self._wake.set()
        return held, new

    def _check_expectation(self, digest: bytes, kind: str, size: int) -> None:
        expected = self.named.get(digest)
        if expected is None:
            return
        if (expected.type is not None and expected.type != kind) or (expected.size is not None and expected.size != size):
            raise BadRequest(f"the committed manifest lists this document as {expected.type}, {expected.size} bytes; "
                             f"this one is {kind}, {size} bytes", "manifest_mismatch")

    def expires_at_ms(self, held: Held) -> int | None:
        return held.arrived_ms + self.limits.provisional_ttl_ms if held.provisional else None

    # --- replication ------------------------------------------------------------------------------

    async def run(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        last_expiry = -EXPIRE_EVERY_S
        semaphore = asyncio.Semaphore(FETCH_PARALLEL)
        while True:
            self._wake.clear()
            await self._promote_named()
            if loop.time() - last_expiry >= EXPIRE_EVERY_S:
                last_expiry = loop.time()
                removed = await asyncio.to_thread(self.store.expire, self.clock_ms(), frozenset(self.named))
                if removed:
                    log.info("%d provisional documents expired (no committed transaction named them)", len(removed))
            now = loop.time()
            due = [d for d in self.missing() if self._retry_at.get(d, 0.0) <= now]
            if due:
                random.shuffle(due)
                await asyncio.gather(*(self._fetch_one(digest, semaphore) for digest in due[:32]))
                continue
            waits = [self._retry_at[d] - now for d in self.missing() if d in self._retry_at]
            timeout = min([IDLE_WAKE_S, *waits]) if waits else IDLE_WAKE_S
            try:
                async with asyncio.timeout(max(0.05, timeout)):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _promote_named(self) -> None:
        for digest in [d for d, h in self.store.held.items() if h.provisional and d in self.named]:
            await asyncio.to_thread(self.store.promote, digest)
        for digest in [d for d in self.named if d not in self._expanded]:
            held = self.store.held.get(digest)
            if held is not None and held.type == MANIFEST:
                data = await asyncio.to_thread(self.store.read, digest)
                if data is not None:
                    self._expand(digest, data)

    async def _fetch_one(self, digest: bytes, semaphore: asyncio.Semaphore) -> None:
        async with semaphore:
            if digest in self.store.held:
                return
            sources = list(self.sources())
            random.shuffle(sources)
            for name, url in sources:
                try:
                    if await self._fetch_from(digest, url):
                        self._retry_at.pop(digest, None)
                        self._attempts.pop(digest, None)
                        self.fetched += 1
                        if self._fetched_metric is not None:
                            self._fetched_metric.inc()
                        return
                except ApiError as exc:   # our own store is full: wait, do not hammer the peers
                    log.warning("cannot keep document %s: %s", digest.hex(), exc.message)
                    break
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    log.debug("fetching document %s from %s failed: %r", digest.hex(), name, exc)
            attempts = self._attempts.get(digest, 0) + 1
            self._attempts[digest] = attempts
            delay = min(RETRY_MAX_S, RETRY_MIN_S * 2 ** min(attempts, 10))
            self._retry_at[digest] = asyncio.get_running_loop().time() + delay * random.uniform(0.8, 1.2)
            if attempts in (3, 10) or attempts % 50 == 0:
                log.warning("document %s is named by the chain but no node served it yet (%d tries)",
                            digest.hex(), attempts)

    async def _fetch_from(self, digest: bytes, url: str) -> bool:
        if self._session is None:
            return False
        expected = self.named.get(digest, Expectation())
        limit = self.limits.max_document_bytes
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S, sock_connect=3)
        async with self._session.get(f"{url}/api/v1/documents/{digest.hex()}", timeout=timeout) as response:
            if response.status != 200:
                return False
            if response.content_length is not None and response.content_length > limit:
                return False
            chunks, size = [], 0
            async for chunk in response.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > limit:
                    return False
                chunks.append(chunk)
        data = b"".join(chunks)
        kind = sniff_type(data)
        if sha256(data) != digest or kind is None or (kind != MANIFEST and kind not in DOCUMENT_TYPES):
            log.warning("%s served document %s with other content; ignored", url, digest.hex())
            return False
        if (expected.type is not None and expected.type != kind) or (expected.size is not None and expected.size != size):
            log.warning("document %s does not match the manifest that lists it (%s, %s bytes); not kept",
                        digest.hex(), expected.type, expected.size)
            return False
        self.store.check_room(size, provisional=False, uploader=None, now_ms=self.clock_ms())
        await asyncio.to_thread(self.store.write, digest, data, kind, provisional=False, uploader=None,
                                now_ms=self.clock_ms())
        if kind == MANIFEST:
            self._expand(digest, data)
        return True

