"""Documents that transactions name by hash: allowed types, the manifest, the upload signature.

A transaction names one document by its SHA-256: ``initiative.submit``'s ``document_hash`` and
``progress.report``'s ``evidence_hash``. Several files (an estimate PDF and photos) travel as a
**manifest**: a small canonical msgpack document listing them, and the transaction names the
manifest's hash (docs/PROTOCOL.md §17). So the chain commits to every listed file through one hash
and no transaction bytes change::

    manifest = ["veche-documents/1", [[sha256, type, size, name, role], ...]]

``sha256`` 32 bytes, ``type`` one of ``DOCUMENT_TYPES``, ``size`` the file's length in bytes,
``name`` the file's display name (1..200 characters, no control characters, no ``/`` or ``\\``),
``role`` one of ``ROLES``; 1..32 entries, hashes distinct. A file's type is read from its first
bytes (magic numbers), never from a name or a header.

Uploads to a node's document store are signed by a district operator or committee key over
``b"veche/v1/document.upload" + chain_id + encode([sha256])`` — the transaction signing form of
docs/PROTOCOL.md §2.1 with a kind that no transaction has, so an upload signature can never be
taken for a transaction's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain import codec
from chain.crypto import DOMAIN, sha256
from chain.errors import DecodeError

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
MANIFEST = "application/vnd.veche.manifest"
DOCUMENT_TYPES = (PDF, JPEG, PNG, WEBP)
IMAGE_TYPES = (JPEG, PNG, WEBP)
ROLES = ("estimate", "photo", "document")
MANIFEST_FORMAT = "veche-documents/1"
MANIFEST_MAGIC = b"\x92\xb1" + MANIFEST_FORMAT.encode()   # fixarray(2), fixstr(17) "veche-documents/1"
MAX_MANIFEST_ENTRIES = 32
MAX_NAME_CHARS = 200
MAX_MANIFEST_BYTES = 16 * 1024
UPLOAD_KIND = "document.upload"
EXTENSIONS = {PDF: "pdf", JPEG: "jpg", PNG: "png", WEBP: "webp", MANIFEST: "manifest"}


def sniff_type(data: bytes) -> str | None:
    """The document type given by the first bytes (magic number), or ``None`` if not an allowed type."""
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return WEBP
    if data.startswith(MANIFEST_MAGIC):
        return MANIFEST
    return None


def valid_name(name: Any) -> bool:
    return (isinstance(name, str) and 1 <= len(name) <= MAX_NAME_CHARS and name.strip() == name
            and not any(ord(c) < 32 or c in "/\\\x7f" for c in name))


def clean_name(name: str, fallback: str) -> str:
    """A file name made fit for a manifest: the last path part, control characters dropped, ≤ 200."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if ord(c) >= 32 and c != "\x7f").strip()[:MAX_NAME_CHARS].strip()
    return base if valid_name(base) else fallback


@dataclass(frozen=True, slots=True)
class DocumentEntry:
    sha256: bytes
    type: str
    size: int
    name: str
    role: str

    def to_wire(self) -> list[Any]:
        return [self.sha256, self.type, self.size, self.name, self.role]


@dataclass(frozen=True, slots=True)
class Manifest:
    entries: tuple[DocumentEntry, ...]

    def encode(self) -> bytes:
        check_entries(self.entries)
        return codec.encode([MANIFEST_FORMAT, [entry.to_wire() for entry in self.entries]])

    @property
    def hash(self) -> bytes:
        return sha256(self.encode())


def check_entries(entries: tuple[DocumentEntry, ...]) -> None:
    if not 1 <= len(entries) <= MAX_MANIFEST_ENTRIES:
        raise DecodeError(f"a manifest lists 1..{MAX_MANIFEST_ENTRIES} documents, got {len(entries)}")
    seen: set[bytes] = set()
    for index, entry in enumerate(entries):
        where = f"manifest.documents[{index}]"
        if not isinstance(entry.sha256, bytes) or len(entry.sha256) != 32:
            raise DecodeError(f"{where}.sha256 must be 32 bytes")
        if entry.sha256 in seen:
            raise DecodeError(f"{where}: the same document is listed twice")
        seen.add(entry.sha256)
        if entry.type not in DOCUMENT_TYPES:
            raise DecodeError(f"{where}.type must be one of {', '.join(DOCUMENT_TYPES)}")
        if isinstance(entry.size, bool) or not isinstance(entry.size, int) or not 1 <= entry.size < 2**40:
            raise DecodeError(f"{where}.size must be a positive integer")
        if not valid_name(entry.name):
            raise DecodeError(f"{where}.name must be 1..{MAX_NAME_CHARS} characters without control "
                              "characters, / or \\, and no surrounding spaces")
        if entry.role not in ROLES:
            raise DecodeError(f"{where}.role must be one of {', '.join(ROLES)}")


def decode_manifest(data: bytes) -> Manifest:
    """Strictly decode a manifest; ``DecodeError`` for anything but the canonical form above."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise DecodeError(f"a manifest is at most {MAX_MANIFEST_BYTES} bytes", "too_large")
    value = codec.decode(data, max_bytes=MAX_MANIFEST_BYTES)
    if not isinstance(value, list) or len(value) != 2 or value[0] != MANIFEST_FORMAT:
        raise DecodeError(f"a manifest is the array [{MANIFEST_FORMAT!r}, documents]")
    items = value[1]
    if not isinstance(items, list):
        raise DecodeError("manifest documents must be a list")
    entries = []
    for index, item in enumerate(items):
        if not isinstance(item, list) or len(item) != 5:
            raise DecodeError(f"manifest.documents[{index}] must be [sha256, type, size, name, role]")
        digest, kind, size, name, role = item
        if not isinstance(kind, str) or not isinstance(role, str):
            raise DecodeError(f"manifest.documents[{index}]: type and role are text")
        entries.append(DocumentEntry(digest, kind, size, name, role))
    manifest = Manifest(tuple(entries))
    check_entries(manifest.entries)
    return manifest


def make_manifest(files: list[tuple[bytes, str, str]]) -> tuple[Manifest, bytes]:
    """A manifest for ``(content, name, role)`` files, types read from their bytes; and its encoding.

    ``DecodeError`` (code ``bad_type``) for a file of a type that is not allowed."""
    entries = []
    for index, (content, name, role) in enumerate(files):
        kind = sniff_type(content)
        if kind not in DOCUMENT_TYPES:
            raise DecodeError(f"file {index + 1} ({name!r}) is not a PDF, JPEG, PNG or WebP file", "bad_type")
        entries.append(DocumentEntry(sha256(content), kind, len(content),
                                     clean_name(name, f"{role}-{index + 1}.{EXTENSIONS[kind]}"), role))
    manifest = Manifest(tuple(entries))
    return manifest, manifest.encode()


def upload_signing_bytes(chain_id: str, digest: bytes) -> bytes:
    """What an uploader signs: ``b"veche/v1/document.upload" + chain_id + encode([sha256])``."""
    if len(digest) != 32:
        raise DecodeError("a document hash is 32 bytes")
    return DOMAIN + UPLOAD_KIND.encode() + chain_id.encode() + codec.encode([digest])
