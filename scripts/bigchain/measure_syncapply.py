"""The observer's block-sync work on the big chain, in one process: what it costs, and where it goes.

``big_chain.py catchup`` times a real observer against running validators; its CPU figure mixes
the sync with the node's other work, and the box's two cores are shared with the validators that
serve the blocks. This replays the same chain through the same code path without the network, so
the sync path's own CPU can be read (and profiled):

* validator-0's LevelDB is hard-linked (``snapshot_data``) and read as the serving node reads it
  (``Ledger.vouched_block_with_certificate``: header chain re-checked) into ranges of ≤ 500 blocks
  framed as ``GET /api/v1/blocks/raw`` frames them;
* each range is decoded as block sync decodes it (``node.sync.decode_block_range``: every block
  and certificate strictly, canonical form checked) and applied inside ``Ledger.committing()`` with
  ``Ledger.apply_synced``: every certificate checked against the set in force at its height, every
  last commit checked, every transaction decoded strictly and applied by the state machine, the
  app hash compared with the header's, everything written to a **fresh LevelDB** as one synced
  batch per range. Ballot and registration signatures are trusted under the certificate, as the
  observer trusts them (docs/NODE.md §5).

Reported: CPU per vote, split into serving (reading the source store and framing: the validators'
work, not the observer's), decoding the ranges and applying them — the last split again into the
main thread and LevelDB's background thread (flushing and compacting; the process CPU minus the
main thread's); the target's size when closed and once compacted through (``compact_range`` over
every key: no obsolete tables, no log). ``--compression none`` / ``--write-buffer-mb N`` open the target
with other LevelDB options than a node's (to see what its background work costs);
``--profile FILE`` writes a cProfile of the decode + apply part and prints its top functions.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import shutil
import time
from pathlib import Path
from typing import Any

import msgpack

from chain.ledger import Ledger
from chain.storage import LevelStore
from genesis.model import load_genesis
from node.sync import RANGE_BLOCKS, decode_block_range

from bigchain.snapshot import snapshot_data

VOTE_PREFIX = b"\x94\xa9vote.cast"


def serve_range(source: Ledger, first: int, last: int) -> bytes:
    """``/api/v1/blocks/raw?from=first&to=last`` as a node serves it."""
    parts = []
    for height in range(first, last + 1):
        raw = source.vouched_block_with_certificate(height)
        if raw is None:
            break
        parts.append(raw)
    header: bytes = msgpack.Packer().pack_array_header(len(parts))
    return header + b"".join(parts)


def directory_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.iterdir() if entry.is_file())


def measure(chain_dir: Path, work: Path, *, blocks: int | None = None, profile: Path | None = None,
            top: int = 40, compression: str | None = "snappy", write_buffer_mb: int = 16) -> dict[str, Any]:
    genesis = load_genesis(chain_dir / "net" / "genesis.json")
    snapshot_data(chain_dir / "net" / "validator-0" / "data", work / "source")
    source_store = LevelStore(work / "source", create=False)
    target_store = LevelStore(work / "target", compression=compression, write_buffer_size=write_buffer_mb << 20)
    try:
        source = Ledger(source_store, genesis.params)
        target = Ledger(target_store, genesis.params)
        height = source.height if blocks is None else min(blocks, source.height)
        serve_s = decode_s = apply_s = 0.0
        apply_thread_s = 0.0
        process_started = time.process_time()
        votes = txs = 0
        profiler = cProfile.Profile(time.process_time) if profile is not None else None
        started = time.perf_counter()
        first = 1
        while first <= height:
            last = min(height, first + RANGE_BLOCKS - 1)
            t0 = time.process_time()
            data = serve_range(source, first, last)
            t1 = time.process_time()
            serve_s += t1 - t0
            if profiler is not None:
                profiler.enable()
            entries = decode_block_range(data)
            t2 = time.process_time()
            decode_s += t2 - t1
            thread0 = time.thread_time()
            with target.committing():
                for block, certificate in entries:
                    target.apply_synced(block, certificate)
                    txs += len(block.txs)
                    votes += sum(1 for raw in block.txs if raw.startswith(VOTE_PREFIX))
            apply_thread_s += time.thread_time() - thread0
            apply_s += time.process_time() - t2
            if profiler is not None:
                profiler.disable()
            first = last + 1
        wall = time.perf_counter() - started
        process_s = time.process_time() - process_started
        source_block = source.block(target.height)
        if target.height != height or source_block is None or source_block.hash() != target.last_block_hash:
            raise RuntimeError("the replayed chain does not match the source")
        result: dict[str, Any] = {
            "chain": str(chain_dir), "blocks": height, "txs": txs, "votes": votes,
            "leveldb": {"compression": compression, "write_buffer_mb": write_buffer_mb},
            "wall_s": round(wall, 2),
            "process_cpu_s": round(process_s, 2),
            "votes_per_s_wall": round(votes / wall) if wall else None,
            "serve_cpu_s": round(serve_s, 2),
            "decode_cpu_s": round(decode_s, 2),
            "apply_cpu_s": round(apply_s, 2),
            "apply_main_thread_cpu_s": round(apply_thread_s, 2),
            "sync_cpu_us_per_vote": round((decode_s + apply_s) * 1e6 / votes, 1) if votes else None,
            "decode_us_per_vote": round(decode_s * 1e6 / votes, 1) if votes else None,
            "apply_us_per_vote": round(apply_s * 1e6 / votes, 1) if votes else None,
            "apply_main_thread_us_per_vote": round(apply_thread_s * 1e6 / votes, 1) if votes else None,
            "apply_leveldb_background_us_per_vote": round((apply_s - apply_thread_s) * 1e6 / votes, 1)
            if votes else None,
            "serve_us_per_vote": round(serve_s * 1e6 / votes, 1) if votes else None,
            "synced_writes": target.store.flushes,
            "profiled": profile is not None,
        }
        if profiler is not None and profile is not None:
            profiler.dump_stats(str(profile))
            text = io.StringIO()
            stats = pstats.Stats(profiler, stream=text)
            stats.sort_stats("tottime").print_stats(top)
            stats.sort_stats("cumulative").print_stats(top)
            print(text.getvalue())
        target_store.close()
        result["target_bytes_closed"] = directory_bytes(work / "target")
        # the same store compacted through (no obsolete tables, no log): what it holds, at its compression
        compacted = LevelStore(work / "target", compression=compression, write_buffer_size=write_buffer_mb << 20)
        compacted.compact(b"")
        compacted.close()
        result["target_bytes_compacted"] = directory_bytes(work / "target")
        result["target_bytes_compacted_per_vote"] = round(result["target_bytes_compacted"] / votes, 1) if votes else None
        return result
    finally:
        source_store.close()
        target_store.close()
        shutil.rmtree(work / "source", ignore_errors=True)
        shutil.rmtree(work / "target", ignore_errors=True)
