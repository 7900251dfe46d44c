"""Documents on the citizen pages: an initiative's estimate and photos, a progress report's evidence.

The chain names one hash per initiative (``document_hash``) and per progress report
(``evidence_hash``): usually a document manifest listing several files (chain/documents.py). The
gateway fetches what a hash names from the nodes (``GET /api/v1/documents/{sha256}``, trying every
node), re-hashes it before using or serving it, and keeps recent documents in a small cache
bounded in bytes. A citizen opens each file through ``/documents/{sha256}`` on the gateway
(served only once its bytes match the hash) and can re-hash the download themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import aiohttp

from chain.crypto import sha256
from chain.documents import DOCUMENT_TYPES, IMAGE_TYPES, MANIFEST, DocumentEntry, decode_manifest, sniff_type
from chain.errors import DecodeError
from gateway.nodes import NodePool

log = logging.getLogger("veche.gateway.documents")

CACHE_BYTES = 64 * 1024 * 1024
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
HEX = frozenset("0123456789abcdef")


def is_digest(text: str) -> bool:
    return len(text) == 64 and set(text) <= HEX


@dataclass(slots=True)
class Listing:
    """What a hash on the chain names: the checked manifest's entries, or one document."""

    digest: str
    available: bool = False
    entries: list[DocumentEntry] = field(default_factory=list)

    @property
    def photos(self) -> list[DocumentEntry]:
        return [entry for entry in self.entries if entry.type in IMAGE_TYPES]

    @property
    def files(self) -> list[DocumentEntry]:
        return [entry for entry in self.entries if entry.type not in IMAGE_TYPES]


class DocumentShelf:
    def __init__(self, pool: NodePool, *, cache_bytes: int = CACHE_BYTES) -> None:
        self.pool = pool
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._held = 0
        self._fetching: dict[str, asyncio.Future[bytes | None]] = {}

    async def fetch(self, digest: str) -> bytes | None:
        """The document whose SHA-256 is ``digest`` from any node, checked; ``None`` if no node serves it."""
        cached = self._cache.get(digest)
        if cached is not None:
            self._cache.move_to_end(digest)
            return cached
        pending = self._fetching.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._fetching[digest] = future
        try:
            data = await self._from_nodes(digest)
            future.set_result(data)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it through the future
            raise
        finally:
            del self._fetching[digest]
        if data is not None:
            self._keep(digest, data)
        return data

    async def _from_nodes(self, digest: str) -> bytes | None:
        for node in self.pool.nodes:
            url = f"{node.url}/api/v1/documents/{digest}"
            try:
                async with self.pool.session.get(url, timeout=self.pool.timeout) as response:
                    if response.status != 200:
                        continue
                    body = bytearray()
                    async for chunk in response.content.iter_chunked(1 << 16):
                        body += chunk
                        if len(body) > MAX_DOCUMENT_BYTES:
                            break
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                log.info("document %s: node %s failed (%s)", digest, node.url, exc.__class__.__name__)
                continue
            data = bytes(body)
            if sha256(data).hex() == digest:
                return data
            log.warning("node %s served other bytes for document %s; ignored", node.url, digest)
        return None

    def _keep(self, digest: str, data: bytes) -> None:
        if len(data) > self.cache_bytes // 4:
            return
        self._cache[digest] = data
        self._held += len(data)
        while self._held > self.cache_bytes:
            _, dropped = self._cache.popitem(last=False)
            self._held -= len(dropped)

    async def listing(self, digest: str) -> Listing | None:
        """The entries a hash names, for a page; ``None`` for an empty hash."""
        if not is_digest(digest):
            return None
        listing = Listing(digest)
        data = await self.fetch(digest)
        if data is None:
            return listing
        kind = sniff_type(data)
        if kind == MANIFEST:
            try:
                listing.entries = list(decode_manifest(data).entries)
            except DecodeError:
                return listing
        elif kind in DOCUMENT_TYPES:
            listing.entries = [DocumentEntry(bytes.fromhex(digest), kind, len(data), digest[:16], "document")]
        else:
            return listing
        listing.available = True
        return listing
