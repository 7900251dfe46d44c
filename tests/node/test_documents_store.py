"""The document store on disk: provisional uploads, promotion, expiry, bounds, crash leftovers, bad files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chain.crypto import sha256
from chain.documents import PDF, PNG
from node.documents.store import DocumentLimits, DocumentStore, OverQuota, StoreFullError
from tests.docfiles import pdf_bytes, png_bytes

KEY_A, KEY_B = b"\xaa" * 32, b"\xbb" * 32


def store_at(root: Path, **limits: int) -> DocumentStore:
    store = DocumentStore(root, DocumentLimits(**limits))
    store.open()
    return store


def test_provisional_upload_is_promoted_durably_and_survives_a_reopen(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    data = pdf_bytes(3000)
    digest = sha256(data)
    held = store.write(digest, data, PDF, provisional=True, uploader=KEY_A, now_ms=1000)
    assert held.provisional and store.provisional_bytes == 3000 and store.per_key == {KEY_A: 3000}
    assert (tmp_path / "provisional" / digest.hex()).read_bytes() == data
    assert store.promote(digest)
    assert not (tmp_path / "provisional" / digest.hex()).exists()
    assert (tmp_path / "committed" / digest.hex()).read_bytes() == data
    assert store.provisional_bytes == 0 and store.per_key == {} and store.total_bytes == 3000
    reopened = store_at(tmp_path)
    assert reopened.read(digest) == data and not reopened.held[digest].provisional
    assert reopened.held[digest].type == PDF


def test_provisional_uploads_expire_unless_kept(tmp_path: Path) -> None:
    store = store_at(tmp_path, provisional_ttl_ms=10_000)
    first, second = pdf_bytes(500, "a"), pdf_bytes(500, "b")
    for data in (first, second):
        store.write(sha256(data), data, PDF, provisional=True, uploader=KEY_A, now_ms=1_000)
    assert store.expire(10_999) == []
    assert store.expire(11_000, keep={sha256(second)}) == [sha256(first)]
    assert store.read(sha256(first)) is None and store.read(sha256(second)) == second
    assert not (tmp_path / "provisional" / sha256(first).hex()).exists()


def test_bounds_total_provisional_and_per_key(tmp_path: Path) -> None:
    store = store_at(tmp_path, max_total_bytes=10_000, max_provisional_bytes=6_000, max_provisional_per_key=4_000,
                     provisional_ttl_ms=60_000)
    a1, a2 = pdf_bytes(3_000, "a1"), pdf_bytes(1_500, "a2")
    store.write(sha256(a1), a1, PDF, provisional=True, uploader=KEY_A, now_ms=0)
    with pytest.raises(OverQuota) as quota:
        store.write(sha256(a2), a2, PDF, provisional=True, uploader=KEY_A, now_ms=1_000)
    assert quota.value.status == 429 and quota.value.retry_after == pytest.approx(59.0)
    b1 = pdf_bytes(3_500, "b1")
    with pytest.raises(StoreFullError):   # provisional bytes of all keys: 3000 + 3500 > 6000
        store.write(sha256(b1), b1, PDF, provisional=True, uploader=KEY_B, now_ms=1_000)
    committed = pdf_bytes(6_500, "c")
    store.write(sha256(committed), committed, PDF, provisional=False, uploader=None, now_ms=0)
    more = pdf_bytes(600, "d")
    with pytest.raises(StoreFullError) as full:   # 3000 + 6500 + 600 > 10000
        store.write(sha256(more), more, PDF, provisional=False, uploader=None, now_ms=0)
    assert full.value.status == 507
    assert store.total_bytes == 9_500 and len(store.held) == 2
    assert sorted(p.name for p in (tmp_path / "committed").iterdir()) == [sha256(committed).hex()]


def test_writing_the_same_document_twice_keeps_one_copy(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    data = png_bytes()
    store.write(sha256(data), data, PNG, provisional=True, uploader=KEY_A, now_ms=0)
    held = store.write(sha256(data), data, PNG, provisional=False, uploader=None, now_ms=5)
    assert not held.provisional and store.total_bytes == len(data) and store.provisional_bytes == 0


def test_leftovers_of_a_crash_are_cleaned_at_open(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    data = pdf_bytes(800)
    digest = sha256(data)
    store.write(digest, data, PDF, provisional=True, uploader=KEY_A, now_ms=0)
    # a write cut by kill -9, and a promotion cut between its two steps (the file in both folders)
    (tmp_path / "committed" / f".tmp-{'ab' * 32}.77").write_bytes(b"%PDF-half")
    os.link(tmp_path / "provisional" / digest.hex(), tmp_path / "committed" / digest.hex())
    (tmp_path / "committed" / "README").write_text("not a document")
    reopened = store_at(tmp_path)
    assert list(reopened.held) == [digest] and reopened.total_bytes == 800
    assert not any(p.name.startswith(".tmp-") for p in (tmp_path / "committed").iterdir())
    assert sum(1 for folder in ("committed", "provisional") if (tmp_path / folder / digest.hex()).exists()) == 1


def test_a_file_that_no_longer_matches_its_hash_is_dropped(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    data = pdf_bytes(900)
    digest = sha256(data)
    store.write(digest, data, PDF, provisional=False, uploader=None, now_ms=0)
    path = tmp_path / "committed" / digest.hex()
    path.write_bytes(data[:-1] + b"!")
    assert store.read(digest) is None
    assert digest not in store.held and not path.exists() and store.total_bytes == 0
