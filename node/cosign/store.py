"""The nodes' pending signing requests: where committee members' consoles meet to co-sign (docs/NODE.md §15).

A committee member's console posts a signing request (node/cosign/request.py) with its own
signature; the node checks it — the format, this chain and genesis, every signature, every signer a
committee key in force — and keeps it until it expires. Posting the same request again (same
signing hash) with more signatures adds them. A node that learns something new passes the request
on to the other nodes it knows, so members whose consoles use different nodes see the same
requests. Nothing here is trusted by the readers: consoles re-check every request they fetch.

Requests are files ``<home>/signing-requests/<signing hash>.json`` (atomic writes), bounded in count,
per member and in lifetime; an expired request is answered 410 for a while, then forgotten. When a
transaction whose signing bytes a request describes commits, the request is marked committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from chain.crypto import sha256
from chain.errors import DecodeError
from chain.ledger import Ledger
from chain.tx import decode_tx
from node.cosign.request import SigningRequest, SigningRequestError
from node.errors import ApiError, BadRequest, Forbidden, NotFound, PayloadTooLarge
from node.ops.files import TEMP_PREFIX, atomic_write

log = logging.getLogger("veche.node.cosign")

COMMITTEE_KINDS = frozenset({"campaign.create", "campaign.close", "initiative.review", "progress.report",
                             "validators.update", "keys.rotate", "protocol.upgrade"})
_COMMITTEE_PREFIXES = tuple(b"\x94" + bytes([0xa0 + len(kind)]) + kind.encode() for kind in sorted(COMMITTEE_KINDS))
MAX_BODY_BYTES = 256 * 1024
DEFAULT_TTL_MS = 7 * 24 * 3600 * 1000
MAX_REQUESTS = 256
MAX_PER_MEMBER = 64
TOMBSTONE_MS = 7 * 24 * 3600 * 1000
FORWARD_TIMEOUT_S = 10.0


class Gone(ApiError):
    status = 410
    code = "expired"


class RequestsFull(ApiError):
    status = 507
    code = "requests_full"


class OverQuota(ApiError):
    status = 429
    code = "over_quota"


@dataclass(slots=True)
class Entry:
    request: SigningRequest
    received_at_ms: int
    committed_height: int | None = None

    @property
    def expires_at_ms(self) -> int:
        return self.request.expires_at_ms or 0   # every stored request has one (``put`` sets it)

    def summary(self) -> dict[str, Any]:
        request = self.request
        return {"signing_hash": request.signing_hash.hex(), "kind": request.kind, "summary": request.summary(),
                "signers": [key.hex() for key in sorted(request.signatures)],
                "threshold": request.committee_threshold, "prepared_at_ms": request.prepared_at_ms,
                "expires_at_ms": self.expires_at_ms, "committed_height": self.committed_height}

    def to_json(self) -> dict[str, Any]:
        return {"request": self.request.to_json(), "received_at_ms": self.received_at_ms,
                "committed_height": self.committed_height}


class RequestStore:
    def __init__(self, folder: Path, *, chain_id: str, genesis_hash: bytes, ledger: Ledger,
                 clock_ms: Callable[[], int], sources: Callable[[], list[tuple[str, str]]] = list,
                 max_requests: int = MAX_REQUESTS, max_ttl_ms: int = DEFAULT_TTL_MS) -> None:
        self.folder = Path(folder)
        self.chain_id = chain_id
        self.genesis_hash = genesis_hash
        self.ledger = ledger
        self.clock_ms = clock_ms
        self.sources = sources
        self.max_requests = max_requests
        self.max_ttl_ms = max_ttl_ms
        self.entries: dict[bytes, Entry] = {}
        self.expired: dict[bytes, int] = {}   # signing hash → when it expired (answered 410 until forgotten)
        self._outbox: asyncio.Queue[bytes] | None = None

    # --- files ------------------------------------------------------------------------------------

    def open(self) -> None:
        self.folder.mkdir(mode=0o750, parents=True, exist_ok=True)
        for path in self.folder.iterdir():
            if path.name.startswith(TEMP_PREFIX):
                path.unlink(missing_ok=True)
                continue
            if not path.name.endswith(".json"):
                continue
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
                request = SigningRequest.from_json(document["request"])
                entry = Entry(request, int(document["received_at_ms"]), document.get("committed_height"))
            except (OSError, ValueError, KeyError, TypeError, SigningRequestError) as exc:
                log.warning("ignoring the unreadable signing request %s: %s", path, exc)
                continue
            if request.expires_at_ms is None or path.name != f"{request.signing_hash.hex()}.json":
                continue
            self.entries[request.signing_hash] = entry
        self.sweep()

    def _write(self, entry: Entry) -> None:
        target = self.folder / f"{entry.request.signing_hash.hex()}.json"
        atomic_write(target, json.dumps(entry.to_json(), ensure_ascii=False).encode("utf-8"))

    def _delete(self, signing_hash: bytes) -> None:
        (self.folder / f"{signing_hash.hex()}.json").unlink(missing_ok=True)

    # --- the rules ----------------------------------------------------------------------------------

    def sweep(self) -> None:
        """Drop expired requests (answered 410 for a while) and forget old tombstones."""
        now = self.clock_ms()
        for signing_hash, entry in list(self.entries.items()):
            if entry.expires_at_ms <= now:
                del self.entries[signing_hash]
                self._delete(signing_hash)
                self.expired[signing_hash] = entry.expires_at_ms
        for signing_hash, when in list(self.expired.items()):
            if when + TOMBSTONE_MS <= now:
                del self.expired[signing_hash]

    def parse(self, body: bytes) -> SigningRequest:
        """A signing request this node can authenticate: 400 if it is not JSON; 403 if its bytes do not hold
        together (signing hash, signatures), are for another chain, or are not a committee transaction —
        the store keeps only requests it can check against the committee's keys."""
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"a signing request is at most {MAX_BODY_BYTES} bytes", "too_large")
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("a signing request is a JSON document (docs/OPERATOR.md)", "bad_signing_request") from exc
        if not isinstance(document, dict):
            raise BadRequest("a signing request is a JSON object (docs/OPERATOR.md)", "bad_signing_request")
        try:
            request = SigningRequest.from_json(document)
            request.check_signatures()
        except SigningRequestError as exc:
            raise Forbidden(exc.message, "bad_signing_request") from exc
        if request.chain_id != self.chain_id or request.genesis_hash != self.genesis_hash:
            raise Forbidden(f"the request is for chain {request.chain_id!r} (genesis {request.genesis_hash.hex()}); "
                            f"this node runs {self.chain_id!r}", "wrong_chain")
        if request.kind not in COMMITTEE_KINDS:
            raise Forbidden(f"{request.kind} is not a committee transaction", "bad_kind")
        return request

    def put(self, request: SigningRequest) -> tuple[Entry, str]:
        """Keep ``request`` or add its signatures to the one kept: (the entry, "new" | "added" | "unchanged")."""
        now = self.clock_ms()
        self.sweep()
        signing_hash = request.signing_hash
        if signing_hash in self.expired or request.expired(now):
            raise Gone("this signing request has expired; prepare a new one")
        if not request.signatures:
            raise Forbidden("a request is posted with at least its preparer's signature", "unsigned")
        roster = self.ledger.state.roster_at(self.ledger.height + 1)
        strangers = [key.hex() for key in request.signatures if key not in roster.committee_keys]
        if strangers:
            raise Forbidden(f"not committee keys in force: {', '.join(strangers)}", "permission_denied")
        existing = self.entries.get(signing_hash)
        if existing is not None:
            added = {k: s for k, s in request.signatures.items() if k not in existing.request.signatures}
            if not added:
                return existing, "unchanged"
            existing.request.signatures.update(added)
            self._write(existing)
            self._forward(signing_hash)
            return existing, "added"
        if len(self.entries) >= self.max_requests:
            raise RequestsFull(f"this node keeps at most {self.max_requests} open signing requests")
        for key in request.signatures:
            mine = sum(1 for e in self.entries.values() if key in e.request.signatures)
            if mine >= MAX_PER_MEMBER:
                raise OverQuota(f"member {key.hex()[:16]}… already signed {MAX_PER_MEMBER} open requests here",
                                retry_after=3600)
        expires = request.expires_at_ms if request.expires_at_ms is not None else now + self.max_ttl_ms
        request.expires_at_ms = min(expires, now + self.max_ttl_ms)
        entry = Entry(request, now)
        self.entries[signing_hash] = entry
        self._write(entry)
        self._forward(signing_hash)
        return entry, "new"

    def get(self, signing_hash: bytes) -> Entry:
        self.sweep()
        entry = self.entries.get(signing_hash)
        if entry is not None:
            return entry
        if signing_hash in self.expired:
            raise Gone("this signing request has expired; prepare a new one")
        raise NotFound("this node keeps no signing request with this hash", "unknown_request")

    def listing(self) -> list[Entry]:
        self.sweep()
        return sorted(self.entries.values(), key=lambda e: (e.request.prepared_at_ms, e.request.signing_hash))

    def on_block(self, txs: list[bytes] | tuple[bytes, ...], height: int) -> None:
        """Mark requests whose transaction committed in this block."""
        if not self.entries:
            return
        for raw in txs:
            if not raw.startswith(_COMMITTEE_PREFIXES):
                continue
            try:
                tx = decode_tx(raw)
            except DecodeError:
                continue
            if tx.kind not in COMMITTEE_KINDS:
                continue
            entry = self.entries.get(sha256(tx.signing_bytes()))
            if entry is not None and entry.committed_height is None:
                entry.committed_height = height
                self._write(entry)

    # --- passing requests on ----------------------------------------------------------------------

    def _forward(self, signing_hash: bytes) -> None:
        if self._outbox is not None:
            self._outbox.put_nowait(signing_hash)

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Pass new requests and signatures on to the other nodes; sweep expired ones."""
        self._outbox = asyncio.Queue()
        while True:
            try:
                async with asyncio.timeout(60):
                    signing_hash = await self._outbox.get()
            except TimeoutError:
                self.sweep()
                continue
            entry = self.entries.get(signing_hash)
            if entry is None:
                continue
            body = json.dumps(entry.request.to_json()).encode()
            sources = list(self.sources())
            random.shuffle(sources)
            await asyncio.gather(*(self._post(session, url, body) for _, url in sources))

    async def _post(self, session: aiohttp.ClientSession, url: str, body: bytes) -> None:
        try:
            async with session.post(f"{url}/api/v1/signing-requests", data=body,
                                    headers={"Content-Type": "application/json"},
                                    timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.debug("passing a signing request to %s failed: %r", url, exc)
