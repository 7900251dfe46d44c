"""Documents in the console: checking what an operator uploads, listing what the chain names, serving them.

Files are checked here before anything is signed or sent: each within the nodes' size cap and of
the type its form field asks for, judged by its first bytes. Documents read back from the nodes
are re-hashed (``ConsoleChain.document``) before they are shown or served.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from chain.documents import (
    DOCUMENT_TYPES, IMAGE_TYPES, MANIFEST, PDF, DocumentEntry, Manifest, decode_manifest, make_manifest, sniff_type,
)
from chain.errors import DecodeError
from node.console.chain import ConsoleChain
from node.console.forms import ConsoleError, Upload
from node.console.i18n import N_, format_size, translate
from node.console.web import context

HEX = "0123456789abcdef"
MAX_PHOTOS = 8
MAX_OTHER_DOCUMENTS = 4


@dataclass(slots=True)
class DocumentList:
    """What a hash on the chain names, for a page: the manifest's entries, or one document."""

    digest: str
    available: bool = False
    entries: list[DocumentEntry] = field(default_factory=list)

    @property
    def photos(self) -> list[DocumentEntry]:
        return [e for e in self.entries if e.type in IMAGE_TYPES]


async def list_documents(chain: ConsoleChain, digest_hex: str) -> DocumentList | None:
    if not digest_hex:
        return None
    listing = DocumentList(digest_hex)
    data = await chain.document(digest_hex)
    if data is None:
        return listing
    listing.available = True
    kind = sniff_type(data)
    if kind == MANIFEST:
        try:
            listing.entries = list(decode_manifest(data).entries)
        except DecodeError:
            listing.available = False
    elif kind in DOCUMENT_TYPES:
        listing.entries = [DocumentEntry(bytes.fromhex(digest_hex), kind, len(data), f"{digest_hex[:12]}…", "document")]
    return listing


def check_file(upload: Upload, allowed: tuple[str, ...], limit: int, lang: str) -> str:
    """The file's type (by its first bytes); ``ConsoleError`` if it is over the cap or of another type."""
    if upload.over_limit or upload.size > limit:
        raise ConsoleError(N_("The file %(name)s is %(size)s; a document may be at most %(limit)s. Nothing was "
                              "sent."), status=413, name=upload.filename, size=format_size(upload.size, lang),
                           limit=format_size(limit, lang))
    kind = sniff_type(upload.data)
    if kind not in allowed:
        wanted = N_("a PDF file") if allowed == (PDF,) else N_("a JPEG, PNG or WebP photo") \
            if allowed == IMAGE_TYPES else N_("a PDF, JPEG, PNG or WebP file")
        raise ConsoleError(N_("The file %(name)s is not %(wanted)s (judged by its content, not its name). Nothing "
                              "was sent."), status=415, name=upload.filename, wanted=translate(lang, wanted))
    return kind or ""


def build_manifest(files: list[tuple[Upload, str]]) -> tuple[Manifest, bytes, list[bytes]]:
    """The manifest of checked ``(upload, role)`` files, its bytes, and the files' bytes."""
    manifest, encoded = make_manifest([(upload.data, upload.filename, role) for upload, role in files])
    return manifest, encoded, [upload.data for upload, _ in files]


async def serve_document(request: web.Request) -> web.Response:
    """``GET /documents/{sha256}``: a document from the nodes, re-hashed here, served with a sandbox."""
    ctx = context(request)
    digest = request.match_info["sha256"]
    if len(digest) != 64 or any(c not in HEX for c in digest):
        raise ConsoleError(N_("A document is named by 64 lowercase hexadecimal characters."), status=400)
    data = await ctx.chain.document(digest)
    if data is None:
        raise ConsoleError(N_("No node serves this document (yet)."), status=404)
    return web.Response(body=data, content_type=sniff_type(data) or "application/octet-stream", headers={
        "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'", "Cache-Control": "private, max-age=3600"})
