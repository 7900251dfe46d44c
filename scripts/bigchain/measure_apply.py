"""What one vote costs to apply and commit on top of the big chain vs on the same genesis empty, in-process.

On hard-linked copies (``copy_layout``), a new adult campaign is appended (``append_campaign``), then
``votes`` fresh signed ballots (registration + ballots, ``tests.node.votes.make_batches``) go through
``Ledger.build_block`` with every signature checked and ``Ledger.commit``, ``per_block`` at a time.
CPU is read two ways: the main thread (``time.thread_time``: decoding, signatures, the state machine,
building the synced batch) and the whole process (``time.process_time``), whose difference is
LevelDB's background thread — flushing the memtable and compacting. Runs alternate big, empty, …
so both see the same machine.
"""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from chain.tx import decode_tx
from tests.node.votes import make_batches

from bigchain.build import Chain
from bigchain.measure_network import append_campaign
from bigchain.snapshot import copy_layout


def one_run(kind: str, chain_dir: Path, work: Path, votes: int, per_block: int) -> dict[str, Any]:
    run_dir = work / f"{kind}-{time.time_ns()}" / "net"
    run_dir.parent.mkdir(parents=True)
    try:
        copy_layout(chain_dir, run_dir, data_for=("validator-0",) if kind == "big" else (), new_ports=True)
        plan = append_campaign(run_dir, f"apply-{kind}")
        batches = make_batches(plan, votes, per_block, processes=2)
        chain = Chain(run_dir.parent, net_dir=run_dir)
        process = thread = 0.0
        background_per_block: list[float] = []
        try:
            when = chain.ledger.last_time_ms + 1000
            for batch in batches:
                txs = [decode_tx(raw) for raw in batch]
                when += 1000
                p0, t0 = time.process_time(), time.thread_time()
                chain.add_block(txs, when)
                dp, dt = time.process_time() - p0, time.thread_time() - t0
                process += dp
                thread += dt
                background_per_block.append(dp - dt)
        finally:
            chain.close()
        return {"chain": kind, "votes": votes, "blocks": len(batches),
                "cpu_us_per_vote": round(process / votes * 1e6, 1),
                "main_thread_us_per_vote": round(thread / votes * 1e6, 1),
                "leveldb_background_us_per_vote": round((process - thread) / votes * 1e6, 1),
                "background_ms_per_block_p50": round(statistics.median(background_per_block) * 1000, 1)}
    finally:
        shutil.rmtree(run_dir.parent, ignore_errors=True)


def measure(chain_dir: Path, work: Path, *, rounds: int, votes: int, per_block: int) -> dict[str, Any]:
    runs = [one_run(kind, chain_dir, work, votes, per_block) for _ in range(rounds) for kind in ("big", "empty")]

    def mean(kind: str, key: str) -> float:
        return statistics.mean(float(r[key]) for r in runs if r["chain"] == kind)

    out: dict[str, Any] = {"rounds": rounds, "votes": votes, "per_block": per_block}
    for key in ("cpu_us_per_vote", "main_thread_us_per_vote", "leveldb_background_us_per_vote"):
        out[f"big_{key}"], out[f"empty_{key}"] = round(mean("big", key), 1), round(mean("empty", key), 1)
    out["ratio_empty_over_big_cpu"] = round(out["empty_cpu_us_per_vote"] / out["big_cpu_us_per_vote"], 3)
    out["ratio_empty_over_big_main_thread"] = round(
        out["empty_main_thread_us_per_vote"] / out["big_main_thread_us_per_vote"], 3)
    out["runs"] = runs
    return out
