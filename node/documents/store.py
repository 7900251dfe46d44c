"""Document files on disk, addressed by their SHA-256, with provisional uploads and size bounds.

Layout under ``<home>/documents/``::

    committed/<sha256 hex>     documents a committed transaction names (directly or through a manifest)
    provisional/<sha256 hex>   uploads no committed transaction names yet; deleted when they expire
    .tmp-*                     a write in progress (removed at start: a crash mid-write leaves one)

Every write goes to a temporary file, is synced, renamed into place and the folder synced, so a
``kill -9`` leaves either the whole file or none. Every read re-hashes the file: a file that no
longer matches its name (a bad disk) is deleted and fetched again from another node.

The store is synchronous and thread-safe (one lock around its accounting); the service
(``node/documents/service.py``) runs its file work in threads off the event loop.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from chain.crypto import sha256
from chain.documents import sniff_type
from node.errors import ApiError
from node.ops.files import TEMP_PREFIX, atomic_write, sync_folder

log = logging.getLogger("veche.node.documents")

COMMITTED = "committed"
PROVISIONAL = "provisional"
MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    max_document_bytes: int = 10 * MiB        # one document
    max_total_bytes: int = 2048 * MiB         # everything this node holds
    max_provisional_bytes: int = 256 * MiB    # uploads no committed transaction names yet
    max_provisional_per_key: int = 64 * MiB   # ... per uploading key
    provisional_ttl_ms: int = 7 * 24 * 3600 * 1000


class StoreFullError(ApiError):
    """507: the node's document store is at its bound."""

    status = 507
    code = "documents_full"


class OverQuota(ApiError):
    """429: this key's provisional uploads are at their bound until some expire or commit."""

    status = 429
    code = "over_quota"


@dataclass(slots=True)
class Held:
    digest: bytes
    size: int
    type: str
    provisional: bool
    arrived_ms: int
    uploader: bytes | None = None


class DocumentStore:
    def __init__(self, root: Path, limits: DocumentLimits) -> None:
        self.root = Path(root)
        self.limits = limits
        self.committed_dir = self.root / COMMITTED
        self.provisional_dir = self.root / PROVISIONAL
        self.held: dict[bytes, Held] = {}
        self.total_bytes = 0
        self.provisional_bytes = 0
        self.per_key: dict[bytes, int] = {}
        self._lock = threading.Lock()

    # --- opening --------------------------------------------------------------------------------

    def open(self) -> None:
        """Create the folders, drop half-written files, and account for what is there."""
        for folder in (self.root, self.committed_dir, self.provisional_dir):
            folder.mkdir(mode=0o750, parents=True, exist_ok=True)
        for folder, provisional in ((self.committed_dir, False), (self.provisional_dir, True)):
            for path in folder.iterdir():
                if path.name.startswith(TEMP_PREFIX):
                    path.unlink(missing_ok=True)
                    continue
                digest = _digest_of(path.name)
                if digest is None or not path.is_file():
                    log.warning("ignoring %s in the document store: not a document file", path)
                    continue
                if digest in self.held:   # in both folders: a promotion interrupted between link and unlink
                    path.unlink(missing_ok=True)
                    continue
                stat = path.stat()
                with path.open("rb") as handle:
                    kind = sniff_type(handle.read(32)) or "application/octet-stream"
                self._account(Held(digest, stat.st_size, kind, provisional, int(stat.st_mtime * 1000)))

    def _account(self, held: Held) -> None:
        self.held[held.digest] = held
        self.total_bytes += held.size
        if held.provisional:
            self.provisional_bytes += held.size
            if held.uploader is not None:
                self.per_key[held.uploader] = self.per_key.get(held.uploader, 0) + held.size

    def _unaccount(self, held: Held) -> None:
        self.held.pop(held.digest, None)
        self.total_bytes -= held.size
        if held.provisional:
            self._release_provisional(held)

    def _release_provisional(self, held: Held) -> None:
        """Give back the provisional room ``held`` took, node-wide and of its uploader's key."""
        self.provisional_bytes -= held.size
        if held.uploader is not None:
            left = self.per_key.get(held.uploader, 0) - held.size
            if left > 0:
                self.per_key[held.uploader] = left
            else:
                self.per_key.pop(held.uploader, None)

    def path(self, held: Held) -> Path:
        return (self.provisional_dir if held.provisional else self.committed_dir) / held.digest.hex()

    # --- room -------------------------------------------------------------------------------------

    def check_room(self, size: int, *, provisional: bool, uploader: bytes | None, now_ms: int) -> None:
        """Raise ``StoreFullError`` / ``OverQuota`` unless ``size`` more bytes fit."""
        limits = self.limits
        if self.total_bytes + size > limits.max_total_bytes:
            raise StoreFullError(f"this node's document store holds {self.total_bytes} of its "
                                 f"{limits.max_total_bytes} bytes; a document of {size} bytes does not fit")
        if not provisional:
            return
        if self.provisional_bytes + size > limits.max_provisional_bytes:
            raise StoreFullError(f"uploads not yet named by a committed transaction fill this node's "
                                 f"{limits.max_provisional_bytes} bytes for them; try another node or later")
        if uploader is not None and self.per_key.get(uploader, 0) + size > limits.max_provisional_per_key:
            oldest = min((h.arrived_ms for h in self.held.values() if h.provisional and h.uploader == uploader),
                         default=now_ms)
            wait_s = max(1.0, (oldest + limits.provisional_ttl_ms - now_ms) / 1000)
            raise OverQuota(f"this key's uploads not yet named by a committed transaction reach "
                            f"{limits.max_provisional_per_key} bytes; submit the transaction that names them, or "
                            "wait until old ones expire", retry_after=wait_s)

    # --- writing ----------------------------------------------------------------------------------

    def write(self, digest: bytes, data: bytes, kind: str, *, provisional: bool, uploader: bytes | None,
              now_ms: int) -> Held:
        """Store ``data`` (whose hash the caller checked) durably; returns what is held.

        Already held: nothing is written (a provisional copy becomes committed when asked)."""
        with self._lock:
            held = self.held.get(digest)
            if held is not None:
                if held.provisional and not provisional:
                    self._promote_locked(held)
                return self.held[digest]
            self.check_room(len(data), provisional=provisional, uploader=uploader, now_ms=now_ms)
            held = Held(digest, len(data), kind, provisional, now_ms, uploader)
            self._account(held)   # reserve the room before the slow write
        try:
            self._write_file(self.path(held), data)
        except BaseException:
            with self._lock:
                self._unaccount(held)
            raise
        return held

    def _write_file(self, target: Path, data: bytes) -> None:
        atomic_write(target, data, mode=0o666)   # as open() makes a file: 0644 under the usual umask

    def promote(self, digest: bytes) -> bool:
        """Move a provisional document to ``committed/`` (a transaction naming it committed)."""
        with self._lock:
            held = self.held.get(digest)
            if held is None or not held.provisional:
                return False
            self._promote_locked(held)
            return True

    def _promote_locked(self, held: Held) -> None:
        source = self.path(held)
        target = self.committed_dir / held.digest.hex()
        os.replace(source, target)
        sync_folder(self.committed_dir)
        # one dict assignment: a reader never sees the document missing in between
        self.held[held.digest] = Held(held.digest, held.size, held.type, False, held.arrived_ms)
        self._release_provisional(held)

    def expire(self, now_ms: int, keep: set[bytes] | frozenset[bytes] = frozenset()) -> list[bytes]:
        """Delete provisional documents older than the TTL (except ``keep``); return their hashes."""
        cutoff = now_ms - self.limits.provisional_ttl_ms
        removed = []
        with self._lock:
            for held in [h for h in self.held.values() if h.provisional and h.arrived_ms <= cutoff]:
                if held.digest in keep:
                    continue
                self.path(held).unlink(missing_ok=True)
                self._unaccount(held)
                removed.append(held.digest)
        return removed

    def drop(self, digest: bytes) -> None:
        with self._lock:
            held = self.held.get(digest)
            if held is not None:
                self.path(held).unlink(missing_ok=True)
                self._unaccount(held)

    # --- reading ----------------------------------------------------------------------------------

    def read(self, digest: bytes) -> bytes | None:
        """The document's bytes, re-hashed; ``None`` if not held or if the file no longer matches."""
        held = self.held.get(digest)
        if held is None:
            return None
        try:
            data = self.path(held).read_bytes()
        except FileNotFoundError:
            with self._lock:   # a promotion moved it meanwhile: under the lock its place is settled
                held = self.held.get(digest)
                if held is None:
                    return None
                try:
                    data = self.path(held).read_bytes()
                except FileNotFoundError:
                    log.error("document %s vanished from the disk; it is fetched again from another node",
                              digest.hex())
                    self._unaccount(held)
                    return None
        if sha256(data) != digest:
            log.error("document %s on disk no longer matches its hash (disk fault?); deleted, it is fetched "
                      "again from another node", digest.hex())
            with self._lock:
                current = self.held.get(digest)
                if current is not None:
                    self.path(current).unlink(missing_ok=True)
                    self._unaccount(current)
            return None
        return data

def _digest_of(name: str) -> bytes | None:
    if len(name) != 64 or any(c not in "0123456789abcdef" for c in name):
        return None
    return bytes.fromhex(name)
