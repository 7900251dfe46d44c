"""Where a validator's bytes go: LevelDB's table files per key prefix, and its compaction state.

``approximate_sizes`` gives the bytes the table files spend on a key range (after compression and
LevelDB's per-entry overhead; the write-ahead log and the memtable are not in it), so the shares
below add up to the ``.ldb`` files, not to the whole directory. Key counts come from a scan.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.storage import prefix_end

# (prefix, what) — the node's key layout (chain/ledger.py, chain/records.py, node/evidence.py)
PREFIXES: tuple[tuple[bytes, str], ...] = (
    (b"B/", "blocks"),
    (b"C/", "commit certificates"),
    (b"H/", "block hash index"),
    (b"T/", "tx index"),
    (b"V/", "per-campaign ballot index"),
    (b"S/b/", "state: ballots"),
    (b"S/k/", "state: registered voter keys"),
    (b"S/n/", "state: voter-held nullifiers"),
    (b"S/", "state: everything else"),
    (b"M/", "metadata"),
    (b"E/", "evidence"),
)


@dataclass
class PrefixUsage:
    prefix: str
    what: str
    keys: int
    key_bytes: int
    value_bytes: int
    table_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "what": self.what, "keys": self.keys, "key_bytes": self.key_bytes,
                "value_bytes": self.value_bytes, "table_bytes": self.table_bytes}


def files_by_kind(path: Path) -> dict[str, int]:
    """Bytes of the directory by file kind: tables (.ldb/.sst), write-ahead log (.log), the rest."""
    out = {"tables": 0, "log": 0, "other": 0}
    for entry in os.scandir(path):
        if not entry.is_file():
            continue
        size = entry.stat().st_size
        if entry.name.endswith((".ldb", ".sst")):
            out["tables"] += size
        elif entry.name.endswith(".log") and entry.name != "LOG":
            out["log"] += size
        else:
            out["other"] += size
    return out


def usage(path: Path, *, count: bool = True) -> list[PrefixUsage]:
    """Per-prefix key counts and bytes of the LevelDB at ``path`` (opened read-only by convention)."""
    import plyvel

    db = plyvel.DB(str(path), create_if_missing=False)
    try:
        rows: list[PrefixUsage] = []
        claimed: list[bytes] = []
        for prefix, what in PREFIXES:
            stop = prefix_end(prefix)
            table = db.approximate_size(prefix, stop) if stop is not None else 0
            # a broader prefix listed after narrower ones gets only what they did not claim
            inner = [p for p in claimed if p.startswith(prefix) and p != prefix]
            for narrower in inner:
                narrower_stop = prefix_end(narrower)
                table -= db.approximate_size(narrower, narrower_stop) if narrower_stop is not None else 0
            keys = key_bytes = value_bytes = 0
            if count:
                for key, value in db.iterator(prefix=prefix):
                    if any(key.startswith(p) for p in inner):
                        continue
                    keys += 1
                    key_bytes += len(key)
                    value_bytes += len(value)
            rows.append(PrefixUsage(prefix.decode(), what, keys, key_bytes, value_bytes, max(0, table)))
            claimed.append(prefix)
        return rows
    finally:
        db.close()


def leveldb_stats(path: Path) -> str:
    """LevelDB's own compaction table (files and MB per level, compaction time and bytes moved)."""
    import plyvel

    db = plyvel.DB(str(path), create_if_missing=False)
    try:
        raw = db.get_property(b"leveldb.stats")
        return "" if raw is None else raw.decode()
    finally:
        db.close()
