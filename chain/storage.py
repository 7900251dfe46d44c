"""Key-value storage: one interface, a plyvel (LevelDB) implementation and an in-memory one.

Writes happen only as batches; a batch is atomic, and ``sync=True`` makes it durable before
``write`` returns, so a block, its certificate and its state changes land together or not at all.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol, cast

from chain.errors import StorageError, StoreCorrupt, StoreFull, StoreLocked


class KeyValueStore(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def write(self, changes: Mapping[bytes, bytes | None], *, sync: bool = True) -> None: ...

    def iterate(self, prefix: bytes, *, start: bytes | None = None,
                reverse: bool = False, bulk: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """The keys beginning with ``prefix`` that are ``>= start`` (when given), in key order, or
        in reverse key order with ``reverse=True`` (then ``start`` is still the *lowest* key yielded:
        the last item, not the first). ``bulk``: a one-off scan of many keys, whose blocks a cache
        should not keep (they would push out what the vote path reads again and again)."""
        ...

    def close(self) -> None: ...


class MemoryStore:
    """A dict-backed store for unit tests."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self.closed = False

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def write(self, changes: Mapping[bytes, bytes | None], *, sync: bool = True) -> None:
        if self.closed:
            raise StorageError("store is closed")
        for key, value in changes.items():
            if value is None:
                self._data.pop(key, None)
            else:
                self._data[key] = value

    def iterate(self, prefix: bytes, *, start: bytes | None = None,
                reverse: bool = False, bulk: bool = False) -> Iterator[tuple[bytes, bytes]]:
        keys = sorted(k for k in self._data if k.startswith(prefix) and (start is None or k >= start))
        if reverse:
            keys.reverse()
        for key in keys:
            yield key, self._data[key]

    def close(self) -> None:
        self.closed = True


def classify_store_error(exc: BaseException, what: str) -> StorageError:
    """A plyvel/LevelDB error as a typed ``StorageError``: corrupt, locked, full, or other.

    LevelDB reports corruption as ``Corruption: …`` (plyvel.CorruptionError), a held lock as an
    ``IO error: lock …/LOCK: …`` and a full disk as ``IO error: … No space left on device``.
    """
    first = exc.args[0] if exc.args else ""
    text = first.decode("utf-8", "replace") if isinstance(first, bytes) else str(exc)
    name = type(exc).__name__
    if name == "CorruptionError" or text.startswith("Corruption:") or "checksum mismatch" in text:
        return StoreCorrupt(f"{what}: {text}")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in text \
            or "Disk quota exceeded" in text:
        return StoreFull(f"{what}: {text}")
    if text.startswith("IO error: lock ") and "/LOCK" in text:
        return StoreLocked(f"{what}: {text}")
    return StorageError(f"{what}: {text}")


StoreFaultHook = Callable[[StorageError], None]


class LevelStore:
    """LevelDB through plyvel. One owner opens and closes it.

    Tables are written uncompressed (see ``__init__``). Opened with ``paranoid_checks`` (LevelDB
    checks its log, manifest and table metadata eagerly and stops at the first inconsistency) and
    every read with ``verify_checksums`` (each table block's
    CRC32C is checked before its bytes are used). Any error is typed (``classify_store_error``); a
    corruption or a full disk is also handed to ``on_fault`` (the node stops on it — code that
    catches ``StorageError`` on the way cannot hide it).
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True, verify_checksums: bool = True,
                 on_fault: StoreFaultHook | None = None, compression: str | None = None,
                 write_buffer_size: int = 16 * 1024 * 1024) -> None:
        import plyvel  # imported here so that chain/ stays importable without LevelDB in pure tests

        os.makedirs(path, exist_ok=True)
        self.path = os.fspath(path)
        self.verify_checksums = verify_checksums
        self.on_fault = on_fault
        try:
            # Bloom filters: most reads on the vote path (tx index, ballot slots) are misses.
            # No compression: a node's keys and values are mostly hashes, keys and signatures, which
            # Snappy shrank by a quarter (360 against 466 bytes a ballot, compacted, at 1 M) while
            # compressing and decompressing them at every compaction cost two thirds of LevelDB's
            # background CPU at 1 M, a quarter at 10 M (docs/BENCHMARKS.md, "A fresh observer's
            # catch-up"). Tables written with Snappy before stay readable (each block names its own
            # compression). Other values of both options only for measurements (``big_chain.py syncapply``).
            self._db = plyvel.DB(os.fspath(path), create_if_missing=create, paranoid_checks=True,
                                 lru_cache_size=64 * 1024 * 1024, write_buffer_size=write_buffer_size,
                                 bloom_filter_bits=10, compression=compression)
        except (plyvel.Error, OSError) as exc:
            raise self._fault(exc, f"cannot open LevelDB at {path}") from exc
        self._lock = threading.Lock()

    def _fault(self, exc: BaseException, what: str) -> StorageError:
        error = classify_store_error(exc, what)
        if isinstance(error, (StoreCorrupt, StoreFull)) and self.on_fault is not None:
            self.on_fault(error)
        return error

    def get(self, key: bytes) -> bytes | None:
        try:
            value: bytes | None = self._db.get(key, verify_checksums=self.verify_checksums)
        except Exception as exc:  # noqa: BLE001 - plyvel raises its own untyped errors
            if self._db.closed:
                raise StorageError("store is closed") from exc
            raise self._fault(exc, f"LevelDB read in {self.path}") from exc
        return value

    def write(self, changes: Mapping[bytes, bytes | None], *, sync: bool = True) -> None:
        if self._db.closed:
            raise StorageError("store is closed")
        with self._lock:
            try:
                with self._db.write_batch(sync=sync) as batch:
                    for key, value in changes.items():
                        if value is None:
                            batch.delete(key)
                        else:
                            batch.put(key, value)
            except Exception as exc:  # noqa: BLE001 - plyvel raises its own untyped errors
                raise self._fault(exc, f"LevelDB write in {self.path}") from exc

    def iterate(self, prefix: bytes, *, start: bytes | None = None,
                reverse: bool = False, bulk: bool = False) -> Iterator[tuple[bytes, bytes]]:
        lowest = prefix if start is None or start < prefix else start
        if not lowest.startswith(prefix):
            return  # start is above every key with this prefix
        stop = prefix_end(prefix)
        try:
            if not reverse:
                # bulk: LevelDB reads the blocks without putting them in its 64 MB block cache (a scan
                # of a 1.2 M-ballot campaign would fill it, +70 MB of RssAnon, and evict the hot blocks)
                yield from self._iterator(start=lowest, stop=stop, fill_cache=not bulk)
                return
            # plyvel's reverse iterators are not trusted with bounds: given ``start`` alone one begins at
            # the database's last key (a prefix check then ended it before the range: nothing came back),
            # with ``start`` and ``stop`` one missed a range whose only key is ``start``, and ``prefix=``
            # yields nothing for a prefix of 0xff bytes. Walk down from ``stop`` and end below ``lowest``.
            for key, value in self._iterator(stop=stop, reverse=True, fill_cache=not bulk):
                if key < lowest:
                    return
                yield key, value
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001 - plyvel raises its own untyped errors
            raise self._fault(exc, f"LevelDB scan in {self.path}") from exc

    def _iterator(self, **bounds: Any) -> Iterator[tuple[bytes, bytes]]:
        iterator: Iterator[tuple[bytes, bytes]] = self._db.iterator(verify_checksums=self.verify_checksums,
                                                                     **bounds)
        return iterator

    def compact(self, prefix: bytes) -> None:
        """Rewrite the files holding keys under ``prefix`` now: values deleted there leave the disk
        files (LevelDB otherwise keeps a deleted value in its table files until a compaction that may
        never come for a quiet range)."""
        with self._lock:
            self._db.compact_range(start=prefix, stop=prefix_end(prefix))

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()

    def snapshot(self) -> "LevelSnapshot":
        """A consistent read-only view of the store as it is now (writes after this do not show)."""
        return LevelSnapshot(self._db.snapshot())


class LevelSnapshot:
    """One LevelDB snapshot: ``get`` and ``items`` (every key in order) see the store at one instant."""

    def __init__(self, snapshot: object) -> None:
        self._snapshot = snapshot

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._snapshot.get(key)  # type: ignore[attr-defined]
        return value

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        iterator = self._snapshot.iterator()  # type: ignore[attr-defined]
        try:
            yield from iterator
        finally:
            iterator.close()

    def close(self) -> None:
        self._snapshot.close()  # type: ignore[attr-defined]


_ABSENT = object()


class StagedStore:
    """A store whose writes can be held back in memory and land later in one synced batch.

    Outside ``held()`` every ``write`` goes straight to the base store. Inside, writes are merged
    into an in-memory overlay that ``get`` and ``iterate`` read through, and when the outermost
    ``held()`` ends the whole overlay is written as **one** atomic, synced batch. Several blocks
    committed inside one ``held()`` therefore land together or not at all: after a crash the store
    is at the last block before them or the last block of them, never in between.
    """

    def __init__(self, base: KeyValueStore) -> None:
        self.base = base
        self._staged: dict[bytes, bytes | None] = {}
        self._depth = 0
        self._lock = threading.Lock()  # iterate() may run in a worker thread (equal-shares ballots)
        self.flushes = 0
        self.scanned = 0   # staged keys ``iterate`` looked at while holding (a diagnostic, as ``flushes`` is)

    @property
    def holding(self) -> bool:
        return self._depth > 0

    def get(self, key: bytes) -> bytes | None:
        if self._staged:
            value = self._staged.get(key, _ABSENT)
            if value is not _ABSENT:
                return cast("bytes | None", value)
        return self.base.get(key)

    def write(self, changes: Mapping[bytes, bytes | None], *, sync: bool = True) -> None:
        if self._depth:
            with self._lock:
                self._staged.update(changes)
            return
        if self._staged:
            with self._lock:
                merged = self._staged | dict(changes)
            self.base.write(merged, sync=True)
            with self._lock:
                self._staged = {}
            self.flushes += 1
            return
        self.base.write(changes, sync=sync)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold writes until the outermost ``held()`` ends, then write them as one synced batch.

        The batch is written even when the body raises: what was staged before the error was
        complete (the caller's writes are whole batches), so it is kept.
        """
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth:
                self.flush()

    def flush(self) -> None:
        if self._staged and not self._depth:
            with self._lock:
                staged = self._staged
            self.base.write(staged, sync=True)
            with self._lock:
                self._staged = {}
            self.flushes += 1

    def iterate(self, prefix: bytes, *, start: bytes | None = None,
                reverse: bool = False, bulk: bool = False) -> Iterator[tuple[bytes, bytes]]:
        if not self._staged:
            yield from self.base.iterate(prefix, start=start, reverse=reverse, bulk=bulk)
            return
        with self._lock:
            self.scanned += len(self._staged)
            staged = sorted(((key, value) for key, value in self._staged.items()
                             if key.startswith(prefix) and (start is None or key >= start)), reverse=reverse)
        yield from _merge(iter(staged), self.base.iterate(prefix, start=start, reverse=reverse, bulk=bulk), reverse)

    def close(self) -> None:
        self.flush()
        self.base.close()


def _merge(staged: Iterator[tuple[bytes, bytes | None]], stored: Iterator[tuple[bytes, bytes]],
           reverse: bool) -> Iterator[tuple[bytes, bytes]]:
    """Two ordered streams of (key, value); a staged value (or deletion, None) wins over the stored one."""
    sign = -1 if reverse else 1
    staged_item = next(staged, None)
    stored_item = next(stored, None)
    while staged_item is not None or stored_item is not None:
        if staged_item is None:
            yield from _present([stored_item] if stored_item is not None else [])
            yield from stored
            return
        if stored_item is None:
            yield from _present([staged_item])
            yield from _present(staged)
            return
        order = _compare(staged_item[0], stored_item[0]) * sign
        if order <= 0:  # staged first, or the same key (the staged value replaces the stored one)
            yield from _present([staged_item])
            staged_item = next(staged, None)
            if order == 0:
                stored_item = next(stored, None)
        else:
            yield stored_item
            stored_item = next(stored, None)


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key above every key that begins with ``prefix`` (``None``: there is none)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def _compare(a: bytes, b: bytes) -> int:
    return (a > b) - (a < b)


def _present(items: Iterable[tuple[bytes, bytes | None]]) -> Iterator[tuple[bytes, bytes]]:
    for key, value in items:
        if value is not None:
            yield key, value
