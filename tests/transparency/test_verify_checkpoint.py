"""``veche verify`` at scale: its memory does not grow with the chain, and a stopped run continues."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import node.verify
from chain.crypto import SigningKey
from chain.storage import LevelStore
from chain.tx import Tx
from genesis.model import parse_genesis
from node.cli_transparency import verify_command
from node.verify import Entry, verify_home
from tests.transparency.chainkit import ChainBuilder, genesis_document, make_keys
from tests.transparency.conftest import BuiltChain


def run_verify(*args: str) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(verify_command, [*args, "--json"])
    assert result.stdout.strip(), result.stderr
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_a_run_stopped_at_60_percent_continues_from_its_checkpoint(honest_chain: BuiltChain, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = tmp_path / "checkpoint"
    stop_at = honest_chain.vote_heights[int(len(honest_chain.vote_heights) * 0.6)]
    real = node.verify.iter_store_entries

    def interrupted(store: Any, start: int, end: int) -> Iterator[Entry]:
        for entry in real(store, start, end):
            if entry.height == stop_at:
                raise KeyboardInterrupt   # the observer presses Ctrl-C here
            yield entry

    monkeypatch.setattr(node.verify, "iter_store_entries", interrupted)
    monkeypatch.setattr(node.verify, "CHUNK_TXS", 150)   # a chunk per block (real chunks: ~2,000 txs)
    first = CliRunner().invoke(verify_command, ["--home", str(honest_chain.home), "--checkpoint", str(checkpoint),
                                                "--workers", "0", "--json"])
    assert first.exit_code != 0 and "run the same command again to continue" in first.stderr
    monkeypatch.setattr(node.verify, "iter_store_entries", real)

    code, report, _ = run_verify("--home", str(honest_chain.home), "--checkpoint", str(checkpoint))
    assert code == 0 and report["ok"] is True, report
    # chunks of blocks replay as a unit; all blocks before the chunk holding stop_at were kept
    assert 0 < report["resumed_from"] < stop_at
    assert report["blocks"] == honest_chain.height - report["resumed_from"]
    assert report["height"] == honest_chain.height
    fresh = verify_home(honest_chain.home)
    assert {c: v["result_hash"] for c, v in report["campaigns"].items()} == \
        {c: v.result_hash for c, v in fresh.campaigns.items()}

    code, again, _ = run_verify("--home", str(honest_chain.home), "--checkpoint", str(checkpoint))
    assert code == 0 and again["ok"] is True
    assert again["resumed_from"] == again["height"] == honest_chain.height and again["blocks"] == 0


def test_a_checkpoint_of_another_chain_or_a_foreign_folder_is_refused(honest_chain: BuiltChain,
                                                                      tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    result = CliRunner().invoke(verify_command, ["--home", str(honest_chain.home), "--checkpoint", str(other)])
    assert result.exit_code != 0 and "neither empty nor a verify checkpoint" in result.output + result.stderr
    assert (other / "notes.txt").read_text(encoding="utf-8") == "mine"
    checkpoint = tmp_path / "checkpoint"
    code, _, _ = run_verify("--home", str(honest_chain.home), "--checkpoint", str(checkpoint))
    assert code == 0
    small = small_chain(tmp_path / "small", voters=10)
    result = CliRunner().invoke(verify_command, ["--home", str(small), "--checkpoint", str(checkpoint)])
    assert result.exit_code != 0 and "checkpoint of another chain" in result.output + result.stderr


def small_chain(home: Path, voters: int, per_block: int = 500) -> Path:
    keys = make_keys()
    document = genesis_document(keys)
    home.mkdir(parents=True)
    (home / "genesis.json").write_text(json.dumps(document), encoding="utf-8")
    store = LevelStore(home / "data")
    builder = ChainBuilder(store, parse_genesis(document), keys)
    start = builder.ledger.last_time_ms + 5_000
    builder.add_block([builder.campaign("parks", voting_start=start),
                       builder.initiative("parks", "swings", "north", 400)])
    keys_ = [SigningKey.generate() for _ in range(voters)]
    time_ms = start
    for i in range(0, voters, per_block):
        chunk = keys_[i:i + per_block]
        txs: list[Tx] = [builder.registration("parks", chunk)]
        txs += [builder.vote(k, "parks", "north", ["swings"]) for k in chunk]
        time_ms += 1000
        builder.add_block(txs, time_ms=time_ms, checked=lambda _h: True)
    store.close()
    return home


def replay_peak(home: Path) -> int:
    tracemalloc.start()
    try:
        report = verify_home(home, workers=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.ok, report.error
    return peak


def test_the_replay_keeps_no_per_vote_state_in_memory(tmp_path: Path) -> None:
    """Four times the ballots, the same peak: the replayed state is on disk, not in the heap."""
    small = replay_peak(small_chain(tmp_path / "small", voters=6_000))
    large = replay_peak(small_chain(tmp_path / "large", voters=24_000))
    # in memory the state costs ~0.5 KB a vote: 18,000 more votes would add ~9 MB
    assert large - small < 2_500_000, (small, large)
