"""Key-value storage: one interface, a plyvel (LevelDB) implementation and an in-memory one.

Writes happen only as batches; a batch is atomic, and ``sync=True`` makes it durable before
``write`` returns, so a block, its certificate and its state changes land together or not at all.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from typing import Protocol

from chain.errors import StorageError


class KeyValueStore(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def write(self, changes: Mapping[bytes, bytes | None], *, sync: bool = True) -> None: ...

    def iterate(self, prefix: bytes, *, start: bytes | None = None,
                reverse: bool = False) -> Iterator[tuple[bytes, bytes]]: ...

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
                reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        keys = sorted(k for k in self._data if k.startswith(prefix) and (start is None or k >= start))
        if reverse:
            keys.reverse()
        for key in keys:
            yield key, self._data[key]

    def close(self) -> None:
        self.closed = True


class LevelStore:
    """LevelDB through plyvel. One owner opens and closes it."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        import plyvel  # imported here so that chain/ stays importable without LevelDB in pure tests

        os.makedirs(path, exist_ok=True)
        try:
            # Bloom filters: most reads on the vote path (tx index, ballot slots) are misses.
            self._db = plyvel.DB(os.fspath(path), create_if_missing=create, paranoid_checks=True,
                                 lru_cache_size=64 * 1024 * 1024, write_buffer_size=16 * 1024 * 1024,
                                 bloom_filter_bits=10)
        except plyvel.Error as exc:
            raise StorageError(f"cannot open LevelDB at {path}: {exc}") from exc
        self._lock = threading.Lock()
        self.path = os.fspath(path)

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def write(self, changes: Mapping[bytes, bytes | None], *, sync: bool = True) -> None:
        if self._db.closed:
            raise StorageError("store is closed")
        with self._lock:
            with self._db.write_batch(sync=sync) as batch:
                for key, value in changes.items():
                    if value is None:
                        batch.delete(key)
                    else:
                        batch.put(key, value)

    def iterate(self, prefix: bytes, *, start: bytes | None = None,
                reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        if start is not None:
            iterator = self._db.iterator(start=start, prefix=None, reverse=reverse)
            for key, value in iterator:
                if not key.startswith(prefix):
                    break
                yield key, value
            return
        yield from self._db.iterator(prefix=prefix, reverse=reverse)

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()
