"""Both stores behave alike: atomic batches, deletes, ordered prefix iteration, persistence."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.errors import StorageError
from chain.storage import KeyValueStore, LevelStore, MemoryStore, StagedStore


@pytest.fixture(params=["memory", "leveldb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyValueStore]:
    opened: KeyValueStore = MemoryStore() if request.param == "memory" else LevelStore(tmp_path / "db")
    yield opened
    opened.close()


def test_get_write_delete(store: KeyValueStore) -> None:
    assert store.get(b"k") is None
    store.write({b"k": b"v", b"empty": b""})
    assert store.get(b"k") == b"v" and store.get(b"empty") == b""
    store.write({b"k": None, b"absent": None, b"n": b"1"})
    assert store.get(b"k") is None and store.get(b"n") == b"1"


def test_prefix_iteration_is_ordered_and_bounded(store: KeyValueStore) -> None:
    keys = [b"S/b/", b"S/c/a", b"S/c/b", b"S/c/\xff", b"S/c0", b"S/d/x", b"S/c/a/1"]
    store.write({key: key[::-1] for key in keys})
    assert [k for k, _ in store.iterate(b"S/c/")] == [b"S/c/a", b"S/c/a/1", b"S/c/b", b"S/c/\xff"]
    assert [k for k, _ in store.iterate(b"S/c/", reverse=True)] == [b"S/c/\xff", b"S/c/b", b"S/c/a/1", b"S/c/a"]
    assert [k for k, _ in store.iterate(b"S/c/", start=b"S/c/a/")] == [b"S/c/a/1", b"S/c/b", b"S/c/\xff"]
    assert dict(store.iterate(b"S/c/a")) == {b"S/c/a": b"a/c/S", b"S/c/a/1": b"1/a/c/S"}
    assert list(store.iterate(b"Z/")) == []


def test_writes_after_close_fail(tmp_path: Path) -> None:
    for store in (MemoryStore(), LevelStore(tmp_path / "db")):
        store.close()
        with pytest.raises(StorageError):
            store.write({b"k": b"v"})
        store.close()  # closing twice is harmless


def test_leveldb_persists_across_reopen(tmp_path: Path) -> None:
    store = LevelStore(tmp_path / "db")
    store.write({b"a": b"1", b"b": b"2"}, sync=True)
    store.write({b"a": None})
    store.close()
    again = LevelStore(tmp_path / "db")
    assert again.get(b"a") is None and again.get(b"b") == b"2"
    again.close()


def test_unopenable_path_is_a_storage_error(tmp_path: Path) -> None:
    store = LevelStore(tmp_path / "db")
    with pytest.raises(StorageError):
        LevelStore(tmp_path / "db")  # LevelDB holds a lock: one owner at a time
    store.close()
    with pytest.raises(StorageError):
        LevelStore(tmp_path / "missing", create=False)


@pytest.mark.parametrize("seed", range(20))
def test_staged_writes_read_through_and_land_in_one_synced_batch(store: KeyValueStore, seed: int) -> None:
    rng = random.Random(seed)
    keys = [bytes([rng.choice(b"ab"), rng.randrange(6)]) for _ in range(12)]
    store.write({key: b"stored" + key for key in keys[:6]})
    expected = {key: b"stored" + key for key in keys[:6]}
    staged = StagedStore(store)
    with staged.held():
        for key in keys[6:]:
            value = None if rng.random() < 0.3 else b"staged" + key
            staged.write({key: value})
            if value is None:
                expected.pop(key, None)
            else:
                expected[key] = value
        assert all(staged.get(key) == expected.get(key) for key in keys)
        for reverse, start in ((False, None), (False, b"a\x02"), (True, None)):
            wanted = sorted(((k, v) for k, v in expected.items()
                             if k.startswith(b"a") and (start is None or k >= start)), reverse=reverse)
            assert list(staged.iterate(b"a", start=start, reverse=reverse)) == wanted
        assert staged.flushes == 0  # nothing reached the store yet
    assert staged.flushes == 1
    assert {key: store.get(key) for key in keys} == {key: expected.get(key) for key in keys}


def test_staged_writes_are_kept_when_the_body_fails() -> None:
    base = MemoryStore()
    staged = StagedStore(base)
    with pytest.raises(RuntimeError), staged.held():
        staged.write({b"k": b"v"})
        raise RuntimeError("the next block did not check")
    assert base.get(b"k") == b"v"


ITERATION_KEYS = [b"A", b"S/b/", b"S/c", b"S/c/", b"S/c/a", b"S/c/a/1", b"S/c/b", b"S/c/\xff", b"S/c/\xff\xff",
                  b"S/c0", b"S/d/x", b"Z/", b"\xff"]
ITERATION_CASES: list[tuple[bytes, bytes | None]] = [
    (b"S/c/", None), (b"S/c/", b"S/c/"), (b"S/c/", b"S/c/a/"), (b"S/c/", b"S/c/b"), (b"S/c/", b"S/c/\xff"),
    (b"S/c/", b"S/c/\xff\xff\xff"), (b"S/c/", b"S/"), (b"S/c/", b"S/c0"), (b"S/c/", b"A"), (b"S/c/", b"Z"),
    (b"S/c/\xff", None), (b"S/c/\xff", b"S/c/\xff\xff"), (b"", None), (b"", b"S/c0"), (b"\xff", None),
    (b"\xff", b"\xff"), (b"Q/", None), (b"Q/", b"Q/a"),
]


def _expected(prefix: bytes, start: bytes | None, reverse: bool) -> list[bytes]:
    keys = sorted(k for k in ITERATION_KEYS if k.startswith(prefix) and (start is None or k >= start))
    return keys[::-1] if reverse else keys


@pytest.mark.parametrize("kind", ["memory", "leveldb", "staged-memory", "staged-leveldb", "staged-leveldb-held"])
def test_every_store_iterates_alike_with_start_and_reverse(kind: str, tmp_path: Path) -> None:
    base: KeyValueStore = LevelStore(tmp_path / "db") if "leveldb" in kind else MemoryStore()
    store: KeyValueStore = StagedStore(base) if kind.startswith("staged") else base
    try:
        if kind.endswith("-held"):  # half the keys in the base, half (and a deletion) in the overlay
            assert isinstance(store, StagedStore)
            store.write({key: key[::-1] for key in ITERATION_KEYS[::2]} | {b"S/c/zz": b"gone"})
            with store.held():
                store.write({key: key[::-1] for key in ITERATION_KEYS[1::2]} | {b"S/c/zz": None})
                _check_iteration(store)
        else:
            store.write({key: key[::-1] for key in ITERATION_KEYS})
        _check_iteration(store)
    finally:
        store.close()


def _check_iteration(store: KeyValueStore) -> None:
    for prefix, start in ITERATION_CASES:
        for reverse in (False, True):
            for bulk in (False, True):  # a bulk scan (not kept in LevelDB's block cache) reads the same
                got = list(store.iterate(prefix, start=start, reverse=reverse, bulk=bulk))
                assert [k for k, _ in got] == _expected(prefix, start, reverse), (prefix, start, reverse, bulk)
                assert all(value == key[::-1] for key, value in got)


HELD_KEYS = [b"", b"S", b"S/", b"S/p", b"S/p/", b"S/p/a", b"S/pq", b"S/q/a", b"T", b"T/", b"T/\x00",
             b"T/\xff\xff", b"V/c1/\x01", b"V/c2", b"\xff", b"\xff\xff/", b"B/\x00\x00\x00\x01"]


@pytest.mark.parametrize("prefix", sorted({key[:n] for key in HELD_KEYS for n in range(6)} | {b"Q", b"S/z"}))
def test_held_scans_find_every_staged_key_of_any_prefix(prefix: bytes, tmp_path: Path) -> None:
    """Keys of every length (shorter than a table name like ``S/p/``, one key alone under its first
    bytes), prefixes of every length: the overlay answers a scan exactly as a store holding the keys
    would, over a base that has some of them (and a staged deletion)."""
    base = LevelStore(tmp_path / "db")
    staged = StagedStore(base)
    try:
        staged.write({key: b"base" for key in HELD_KEYS[::3]})
        with staged.held():
            staged.write({key: key[::-1] for key in HELD_KEYS})
            staged.write({HELD_KEYS[4]: None})
            expected = sorted(key for key in HELD_KEYS if key.startswith(prefix) and key != HELD_KEYS[4])
            for reverse in (False, True):
                got = list(staged.iterate(prefix, reverse=reverse))
                assert [k for k, _ in got] == (expected[::-1] if reverse else expected)
                assert all(value == key[::-1] for key, value in got)
            start = prefix + b"\x00"
            assert [k for k, _ in staged.iterate(prefix, start=start)] == [k for k in expected if k >= start]
    finally:
        staged.close()


def test_a_store_written_with_snappy_stays_readable_and_writable(tmp_path: Path) -> None:
    """Stores written before tables went uncompressed (Snappy, LevelDB's default) open, read and
    compact as before: each table block names its own compression."""
    values = {f"S/b/c1/{n:06d}".encode(): (b"ballot %d " % n) * 20 for n in range(20_000)}
    old = LevelStore(tmp_path / "db", compression="snappy")
    old.write(values)
    old.compact(b"S/")
    old.close()
    store = LevelStore(tmp_path / "db")
    try:
        assert dict(store.iterate(b"S/b/")) == values
        store.write({b"S/b/c1/000000": None, b"T/" + b"\x01" * 32: b"new"})
        store.compact(b"")
        assert store.get(b"S/b/c1/000000") is None and store.get(b"S/b/c1/019999") == values[b"S/b/c1/019999"]
        assert store.get(b"T/" + b"\x01" * 32) == b"new"
    finally:
        store.close()
