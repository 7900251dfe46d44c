"""The replay's own LevelDB: what ``veche verify`` rebuilds, on disk, so its memory stays bounded.

The replay keeps the state (``S/``), the tx index (``T/``, replay protection), the metadata (``M/``)
and only the **last** block with its certificate (``B/``, ``C/``: the ledger reads the top block
when it opens, to extend it). Block hashes and the ballot index are not kept: the replay checks each
block once and never reads it back. Memory is LevelDB's write buffers and block cache (tens of
MB, whatever the chain's length), not the chain.

A **checkpoint** is such a store in a directory the observer names (``veche verify --checkpoint
DIR``) and keeps: each replayed block lands in it as one atomic LevelDB batch, and every
``SYNC_EVERY_S`` seconds (and when the run ends) a synced write makes what was written so far
durable, so a run that stops — Ctrl-C, kill, a crash, a power cut — leaves the replay at some
height H with exactly the state of H. The next run opens it, checks it belongs to the same genesis,
and continues at H + 1: nothing before H is replayed again. Every block after H is still checked
against the replayed state and must extend block H.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from chain.ballot_index import BALLOT_INDEX_PREFIX
from chain.ledger import BLOCK_PREFIX, CERT_PREFIX, HASH_PREFIX

SYNC_EVERY_S = 5.0
SYNC_KEY = b"R/synced"
MARKER = "veche-verify-checkpoint.json"
DATA = "replay"


class ReplayStore:
    """A ``KeyValueStore`` over the replay's LevelDB (see the module docstring)."""

    DROPPED = (HASH_PREFIX, BALLOT_INDEX_PREFIX)
    KEPT_TOP = (BLOCK_PREFIX, CERT_PREFIX)

    def __init__(self, path: Path, *, resume: bool = False) -> None:
        import plyvel

        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        # Most reads during a replay are misses (a new voter's ballot, a new tx hash): a Bloom filter
        # saves a disk probe per read. Tables of 16 MB keep the file count (and reopened files) low.
        self._db = plyvel.DB(str(path), create_if_missing=True, error_if_exists=not resume, bloom_filter_bits=10,
                             lru_cache_size=32 * 1024 * 1024, write_buffer_size=32 * 1024 * 1024,
                             max_file_size=16 * 1024 * 1024, max_open_files=2000)
        self.get = self._db.get
        self._top: list[bytes] = [key for prefix in self.KEPT_TOP for key, _ in self._db.iterator(prefix=prefix)]
        self._synced = time.monotonic()

    def write(self, changes: Mapping[bytes, bytes | None], *, sync: bool = True) -> None:
        top = [key for key in changes if key.startswith(self.KEPT_TOP)]
        now = time.monotonic()
        durable = now - self._synced >= SYNC_EVERY_S
        with self._db.write_batch(sync=durable) as batch:
            for key, value in changes.items():
                if key.startswith(self.DROPPED):
                    continue
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
            if top:
                for old in self._top:
                    if old not in changes:
                        batch.delete(old)
        if top:
            self._top = top
        if durable:
            self._synced = now

    def iterate(self, prefix: bytes, *, start: bytes | None = None,
                reverse: bool = False, bulk: bool = False) -> Iterator[tuple[bytes, bytes]]:
        if start is None:
            yield from self._db.iterator(prefix=prefix, reverse=reverse, fill_cache=not bulk)
            return
        for key, value in self._db.iterator(start=start, reverse=reverse, fill_cache=not bulk):
            if not key.startswith(prefix):
                break
            yield key, value

    def sync(self) -> None:
        if not self._db.closed:
            self._db.put(SYNC_KEY, b"", sync=True)   # a synced write makes every earlier one durable
            self._synced = time.monotonic()

    def close(self) -> None:
        if not self._db.closed:
            self.sync()
            self._db.close()


def open_checkpoint(directory: Path, genesis_hash: bytes) -> tuple[ReplayStore, bool]:
    """The replay store kept in ``directory``, and whether it continues an earlier run.

    ``directory`` is new (or empty) — then it is made a checkpoint of this genesis — or a checkpoint
    an earlier run left for the same genesis; anything else is refused (ValueError), so a typo does
    not replay into someone's data directory.
    """
    marker = directory / MARKER
    if marker.is_file():
        try:
            recorded: Any = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{marker} is unreadable: {exc}") from exc
        if not isinstance(recorded, dict) or recorded.get("genesis_hash") != genesis_hash.hex():
            raise ValueError(f"{directory} is the checkpoint of another chain (genesis "
                             f"{recorded.get('genesis_hash') if isinstance(recorded, dict) else '?'}); "
                             "use a new directory for this one")
        return ReplayStore(directory / DATA, resume=True), True
    if directory.exists() and any(directory.iterdir()):
        raise ValueError(f"{directory} is neither empty nor a verify checkpoint; name a new or empty directory")
    directory.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps({"genesis_hash": genesis_hash.hex(), "what": "veche verify checkpoint: the "
                               "replayed state; run veche verify with the same --checkpoint to continue"}) + "\n",
                   encoding="utf-8")
    os.replace(tmp, marker)
    return ReplayStore(directory / DATA, resume=True), False
