"""Document types by magic bytes, the manifest (valid/invalid pairs) and the upload signing bytes."""

from __future__ import annotations

import pytest

from chain import codec
from chain.crypto import sha256
from chain.documents import (
    JPEG, MANIFEST, MANIFEST_MAGIC, PDF, PNG, WEBP, DocumentEntry, Manifest, clean_name, decode_manifest,
    make_manifest, sniff_type, upload_signing_bytes,
)
from chain.errors import DecodeError
from tests.docfiles import TINY_JPEG, TINY_WEBP, pdf_bytes, png_bytes


def test_types_are_read_from_the_first_bytes() -> None:
    assert sniff_type(pdf_bytes()) == PDF
    assert sniff_type(png_bytes()) == PNG
    assert sniff_type(TINY_JPEG) == JPEG
    assert sniff_type(TINY_WEBP) == WEBP
    assert sniff_type(MANIFEST_MAGIC + b"...") == MANIFEST


@pytest.mark.parametrize("data", [b"", b"<html>", b"GIF89a....", b"RIFF\x00\x00\x00\x00WAVE", b"RIFFxxxxWEB",
                                  b"PK\x03\x04zip", b" %PDF-1.4", b"\xff\xd8"])
def test_other_files_have_no_allowed_type(data: bytes) -> None:
    assert sniff_type(data) is None


def test_a_manifest_round_trips_and_names_every_file_by_hash() -> None:
    files = [(pdf_bytes(), "смета.pdf", "estimate"), (png_bytes(), "photo 1.png", "photo"),
             (TINY_JPEG, "C:\\Users\\me\\фото.jpg", "photo")]
    manifest, encoded = make_manifest(files)
    assert encoded.startswith(MANIFEST_MAGIC) and sniff_type(encoded) == MANIFEST
    assert decode_manifest(encoded) == manifest
    assert [e.sha256 for e in manifest.entries] == [sha256(content) for content, _, _ in files]
    assert [e.type for e in manifest.entries] == [PDF, PNG, JPEG]
    assert [e.size for e in manifest.entries] == [len(content) for content, _, _ in files]
    assert [e.name for e in manifest.entries] == ["смета.pdf", "photo 1.png", "фото.jpg"]
    assert manifest.hash == sha256(encoded)


def test_a_file_of_another_type_makes_no_manifest() -> None:
    with pytest.raises(DecodeError) as caught:
        make_manifest([(b"GIF89a", "a.gif", "photo")])
    assert caught.value.code == "bad_type"


def entry(**changes: object) -> list[object]:
    base: dict[str, object] = {"sha256": b"\x01" * 32, "type": PDF, "size": 10, "name": "a.pdf", "role": "estimate"}
    base.update(changes)
    return [base["sha256"], base["type"], base["size"], base["name"], base["role"]]


@pytest.mark.parametrize("items, message", [
    ([], "1..32"),
    ([entry()] * 2, "twice"),
    ([entry(sha256=b"\x01" * 31)], "32 bytes"),
    ([entry(type="text/html")], "type"),
    ([entry(size=0)], "size"),
    ([entry(size=True)], "size"),
    ([entry(name="")], "name"),
    ([entry(name="../etc/passwd")], "name"),
    ([entry(name="a\nb")], "name"),
    ([entry(name=" padded")], "name"),
    ([entry(name="x" * 201)], "name"),
    ([entry(role="selfie")], "role"),
    ([entry(sha256=bytes([i]) * 32) for i in range(33)], "1..32"),
    ([entry()[:4]], "[sha256, type, size, name, role]"),
])
def test_malformed_manifests_are_refused(items: list[object], message: str) -> None:
    with pytest.raises(DecodeError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        decode_manifest(codec.encode(["veche-documents/1", items]))


@pytest.mark.parametrize("value", [["veche-documents/2", [entry()]], ["veche-documents/1"], "x",
                                   ["veche-documents/1", [entry()], 1]])
def test_other_shapes_are_not_manifests(value: object) -> None:
    with pytest.raises(DecodeError):
        decode_manifest(codec.encode(value))


def test_non_canonical_or_oversized_manifests_are_refused() -> None:
    good = Manifest((DocumentEntry(b"\x01" * 32, PDF, 10, "a.pdf", "estimate"),)).encode()
    with pytest.raises(DecodeError):
        decode_manifest(good + b"\x00")
    with pytest.raises(DecodeError):  # size 10 written as uint16 instead of a fixint
        decode_manifest(good.replace(b"\x0a\xa5a.pdf", b"\xcd\x00\x0a\xa5a.pdf"))
    with pytest.raises(DecodeError):
        decode_manifest(MANIFEST_MAGIC + b"\x00" * 20_000)


def test_names_are_cleaned_for_a_manifest() -> None:
    assert clean_name("/home/a/b/смета 2027.pdf", "x.pdf") == "смета 2027.pdf"
    assert clean_name("a\x00b\x1fc.png", "x.png") == "abc.png"
    assert clean_name("   ", "photo-1.png") == "photo-1.png"
    assert clean_name("y" * 300, "x") == "y" * 200


def test_upload_signing_bytes_are_domain_separated() -> None:
    digest = bytes(range(32))
    assert upload_signing_bytes("veche-test", digest) == (b"veche/v1/document.upload" + b"veche-test"
                                                          + b"\x91\xc4\x20" + digest)
    with pytest.raises(DecodeError):
        upload_signing_bytes("veche-test", b"\x00" * 31)
