"""docs/PROTOCOL.md §17.4 byte for byte: the manifest, its hash, the upload signing bytes and signature."""

from __future__ import annotations

import re

from chain.crypto import SigningKey, sha256, verify
from chain.documents import decode_manifest, make_manifest, upload_signing_bytes
from tests.paths import REPO_ROOT

PDF = b"%PDF-1.4\n%vector\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"vector"
RFC8032_TEST2 = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")


def vectors() -> dict[str, str]:
    """The §17.4 block of docs/PROTOCOL.md: label → hex (continuation lines joined)."""
    text = (REPO_ROOT / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    block = text.split("### 17.4 Test vectors", 1)[1].split("```", 2)[1]
    found: dict[str, str] = {}
    label = ""
    for line in block.strip().splitlines():
        match = re.match(r"^(\S.*?)\s{2,}([0-9a-f]+)$", line)
        if match:
            label = match.group(1)
            found[label] = match.group(2)
        else:
            found[label] += line.strip()
    return found


def test_the_documented_vectors() -> None:
    documented = vectors()
    manifest, encoded = make_manifest([(PDF, "smeta.pdf", "estimate"), (PNG, "фото 1.png", "photo")])
    assert documented["pdf sha256"] == sha256(PDF).hex()
    assert documented["png sha256"] == sha256(PNG).hex()
    assert documented["manifest (158 bytes)"] == encoded.hex() and len(encoded) == 158
    assert documented["manifest sha256"] == sha256(encoded).hex() == manifest.hash.hex()
    assert decode_manifest(bytes.fromhex(documented["manifest (158 bytes)"])) == manifest
    signing = upload_signing_bytes("veche-test", sha256(encoded))
    assert documented["upload signing bytes"] == signing.hex()
    key = SigningKey(RFC8032_TEST2)
    assert documented["upload signature"] == key.sign(signing).hex()
    verify(key.public_key, bytes.fromhex(documented["upload signature"]), signing)
