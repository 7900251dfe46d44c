"""Backups of a node's LevelDB: a consistent snapshot taken while the node runs, and a checked restore.

File format (docs/OPERATOR.md "Backup and restore")::

  magic     16 bytes  b"VECHE-BACKUP-v1\\n"
  frames    u32 length ‖ canonical msgpack, repeated:
              first   header  [chain_id, genesis_hash, height, app_hash, created_ms, node, signing_state]
              then    records [[key, value], ...]            (≤ 4 MiB and ≤ 16,384 records each)
  end       u32 0 ‖ u64 record count ‖ sha256(every byte before this digest)

The records are every key of the store as one LevelDB snapshot saw it (blocks, certificates, state,
evidence), so the restored store is exactly the store at one instant: every block up to ``height``
complete, nothing of the next. ``signing_state`` is the signing-state file's bytes at the same
moment (empty for an observer), kept for comparison only: a restore never writes a signing state
over one already in the home (see ``restore_signing_state``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from chain import codec
from chain.errors import DecodeError, StorageError, VecheError
from chain.records import read_u64
from chain.state import APP_HASH_KEY, HEIGHT_KEY

MAGIC = b"VECHE-BACKUP-v1\n"
FRAME = struct.Struct(">I")
END = struct.Struct(">IQ")
CHUNK_BYTES = 4 * 1024 * 1024
# A frame is decoded strictly (chain.codec's limits: ≤ 65,536 items in an array, ≤ 65,536 arrays in a
# value); a store is mostly small records (40–90 bytes), so 4 MiB of them would be far more.
CHUNK_RECORDS = 16_384
MAX_FRAME_BYTES = 64 * 1024 * 1024
RESTORE_BATCH_BYTES = 16 * 1024 * 1024


class BackupError(VecheError):
    """A backup that cannot be made, read or restored; the message says what to do."""

    code = "backup"


@dataclass(frozen=True, slots=True)
class BackupHeader:
    chain_id: str
    genesis_hash: bytes
    height: int
    app_hash: bytes
    created_ms: int
    node: str
    signing_state: bytes

    def encode(self) -> bytes:
        return codec.encode([self.chain_id, self.genesis_hash, self.height, self.app_hash, self.created_ms,
                             self.node, self.signing_state])

    @classmethod
    def decode(cls, data: bytes) -> "BackupHeader":
        try:
            raw = codec.decode(data, max_bytes=MAX_FRAME_BYTES)
        except DecodeError as exc:
            raise BackupError(f"the backup's header does not decode: {exc.message}") from exc
        if not (isinstance(raw, list) and len(raw) == 7 and isinstance(raw[0], str) and isinstance(raw[1], bytes)
                and isinstance(raw[2], int) and isinstance(raw[3], bytes) and isinstance(raw[4], int)
                and isinstance(raw[5], str) and isinstance(raw[6], bytes)):
            raise BackupError("the backup's header is malformed")
        return cls(raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6])


def store_height(items: dict[bytes, bytes]) -> tuple[int, bytes]:
    raw_height = items.get(HEIGHT_KEY)
    return (0 if raw_height is None else read_u64(raw_height)), items.get(APP_HASH_KEY, b"")


# --- writing -----------------------------------------------------------------------------------------


class BackupWriter:
    """Frames a backup; ``chunks`` yields the file's bytes piece by piece (for a file or an HTTP stream)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self.records = 0

    def _frame(self, payload: bytes) -> bytes:
        data = FRAME.pack(len(payload)) + payload
        self._digest.update(data)
        return data

    def chunks(self, header: BackupHeader, items: Iterable[tuple[bytes, bytes]]) -> Iterator[bytes]:
        self._digest.update(MAGIC)
        yield MAGIC
        yield self._frame(header.encode())
        batch: list[list[bytes]] = []
        size = 0
        for key, value in items:
            batch.append([key, value])
            size += len(key) + len(value) + 8
            self.records += 1
            if size >= CHUNK_BYTES or len(batch) >= CHUNK_RECORDS:
                yield self._frame(codec.encode(batch))
                batch, size = [], 0
        if batch:
            yield self._frame(codec.encode(batch))
        end = END.pack(0, self.records)
        self._digest.update(end)
        yield end + self._digest.digest()


def write_backup(path: str | os.PathLike[str], header: BackupHeader, items: Iterable[tuple[bytes, bytes]]) -> None:
    """Write a backup file of ``items`` (a store snapshot's records, in key order) under ``header``."""
    with open(path, "wb") as handle:
        for chunk in BackupWriter().chunks(header, items):
            handle.write(chunk)


def header_of(get: Any, *, chain_id: str, genesis_hash: bytes, node: str, signing_state: bytes) -> BackupHeader:
    """The header for a snapshot whose ``get`` reads its ``M/`` keys."""
    raw_height = get(HEIGHT_KEY)
    height = 0 if raw_height is None else read_u64(raw_height)
    return BackupHeader(chain_id, genesis_hash, height, get(APP_HASH_KEY) or b"", int(time.time() * 1000), node,
                        signing_state)


# --- reading and restoring ------------------------------------------------------------------------------


def _read_exact(handle: IO[bytes], size: int, digest: Any) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise BackupError("the backup file is truncated")
    digest.update(data)
    return data


def read_backup(handle: IO[bytes]) -> tuple[BackupHeader, Iterator[list[tuple[bytes, bytes]]]]:
    """The header, and the record batches in order; the last ``next`` checks count and digest (raises
    ``BackupError`` at the first thing that does not check)."""
    digest = hashlib.sha256()
    if _read_exact(handle, len(MAGIC), digest) != MAGIC:
        raise BackupError("not a Veche backup file (wrong magic)")
    (length,) = FRAME.unpack(_read_exact(handle, FRAME.size, digest))
    if not 0 < length <= MAX_FRAME_BYTES:
        raise BackupError("the backup's header frame is malformed")
    header = BackupHeader.decode(_read_exact(handle, length, digest))

    def batches() -> Iterator[list[tuple[bytes, bytes]]]:
        count = 0
        while True:
            (length,) = FRAME.unpack(_read_exact(handle, FRAME.size, digest))
            if length == 0:
                (records,) = struct.unpack(">Q", _read_exact(handle, 8, digest))
                expected = digest.digest()
                if handle.read(32) != expected or handle.read(1):
                    raise BackupError("the backup's checksum does not match: the file is damaged or incomplete")
                if records != count:
                    raise BackupError(f"the backup announces {records} records and holds {count}")
                return
            if length > MAX_FRAME_BYTES:
                raise BackupError("a backup frame is too large")
            try:
                raw = codec.decode(_read_exact(handle, length, digest), max_bytes=MAX_FRAME_BYTES)
            except DecodeError as exc:
                raise BackupError(f"a backup frame does not decode: {exc.message}") from exc
            if not isinstance(raw, list) or not all(isinstance(r, list) and len(r) == 2 and isinstance(r[0], bytes)
                                                    and isinstance(r[1], bytes) for r in raw):
                raise BackupError("a backup frame is not a list of [key, value]")
            count += len(raw)
            yield [(key, value) for key, value in raw]
    return header, batches()


def restore_store(path: str | os.PathLike[str], target: Path) -> BackupHeader:
    """Write the backup at ``path`` into a new LevelDB at ``target`` (which must not hold data).

    The records go to ``<target>.restoring`` first; only when the whole file checked (digest, count)
    and the restored metadata agrees with the header is it renamed to ``target``.
    """
    from chain.storage import LevelStore

    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: a restore never writes over data (stop the node and move "
                          f"{target} away first)")
    staging = target.with_name(target.name + ".restoring")
    if staging.exists():
        shutil.rmtree(staging)
    try:
        with open(path, "rb") as handle:
            header, batches = read_backup(handle)
            store = LevelStore(staging)
            try:
                meta: dict[bytes, bytes] = {}
                for batch in batches:
                    store.write(dict(batch), sync=False)
                    meta.update((key, value) for key, value in batch if key.startswith(b"M/"))
                store.write({}, sync=True)
            finally:
                store.close()
    except FileNotFoundError:
        raise BackupError(f"backup file {path} does not exist") from None
    except (OSError, StorageError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BackupError(f"cannot restore into {staging}: {exc}") from exc
    except BackupError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if store_height(meta) != (header.height, header.app_hash):
        shutil.rmtree(staging, ignore_errors=True)
        raise BackupError("the backup's records disagree with its header (height or app hash)")
    if target.exists():
        target.rmdir()
    os.replace(staging, target)
    return header
