"""The backup file of a store with many small records: written, read back, restored (real LevelDB).

A chain's store is mostly small records (the tx index, the ballot index, voter keys: 40–90 bytes a
record), so 4 MiB of them is far more than the 65,536 items the strict decoder allows in one array.
"""

from __future__ import annotations

from pathlib import Path

from chain.storage import LevelStore
from node.ops.backup import BackupHeader, read_backup, restore_store, write_backup

RECORDS = 120_000


def small_records() -> dict[bytes, bytes]:
    """Keys and values the size of a ``T/`` tx index entry: ≈ 45 bytes a record."""
    return {b"T/" + i.to_bytes(4, "big") * 8: i.to_bytes(8, "big") for i in range(RECORDS)}


def test_a_store_of_many_small_records_backs_up_reads_back_and_restores(tmp_path: Path) -> None:
    records = small_records()
    store = LevelStore(tmp_path / "source")
    try:
        store.write(records, sync=True)
        snapshot = store.snapshot()
        try:
            header = BackupHeader("veche-test", b"\x01" * 32, 0, b"", 1, "validator-0", b"")
            backup = tmp_path / "store.backup"
            write_backup(backup, header, snapshot.items())
        finally:
            snapshot.close()
    finally:
        store.close()

    with open(backup, "rb") as handle:
        read_header, batches = read_backup(handle)
        assert read_header == header
        assert sum(len(batch) for batch in batches) == RECORDS     # digest and count checked at the end

    restore_store(backup, tmp_path / "restored")
    restored = LevelStore(tmp_path / "restored", create=False)
    try:
        assert dict(restored.iterate(b"T/")) == records
    finally:
        restored.close()
