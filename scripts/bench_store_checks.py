"""What the machine-fault checks cost when a node serves blocks (docs/BENCHMARKS.md).

    .venv/bin/python scripts/bench_store_checks.py [--blocks 200] [--ballots 200] [--passes 5]

Builds a chain offline in LevelDB (``--blocks`` blocks of ``--ballots`` signed ballots each, quorum
certificates), compacts it, and then times, over every block, warm (after one untimed pass):

* ``raw``       ``Ledger.raw_block_with_certificate`` on a store read without checksum checks
                (the reads before issue 13);
* ``crc``       the same with ``verify_checksums`` (every LevelDB block's CRC32C checked);
* ``vouched``   ``Ledger.vouched_block_with_certificate`` with checksums: what the API now serves
                (decode, tx root, last-commit hash, certificate and hash index compared).

Prints CPU microseconds per block and MB of block bytes per CPU-second for each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain.crypto import SigningKey  # noqa: E402
from chain.ledger import Ledger  # noqa: E402
from chain.storage import LevelStore  # noqa: E402
from tests.transparency.chainkit import ChainBuilder, build_genesis, make_keys  # noqa: E402


def build(directory: Path, blocks: int, ballots: int) -> tuple[Path, object]:
    keys = make_keys()
    genesis = build_genesis(keys)
    data = directory / "data"
    store = LevelStore(data)
    builder = ChainBuilder(store, genesis, keys)
    builder.add_block([builder.campaign("c1", voting_start=builder.ledger.last_time_ms + 5_000)])
    builder.add_block([builder.initiative("c1", f"i-{d}", d, 100) for d in ("north", "south")])
    builder.add_block([], time_ms=builder.ledger.last_time_ms + 10_000)
    for number in range(blocks):
        voters = [SigningKey.generate() for _ in range(ballots)]
        txs = [builder.registration("c1", voters)]
        districts = ["north" if i % 2 else "south" for i in range(ballots)]
        txs += [builder.vote(v, "c1", d, [f"i-{d}"]) for v, d in zip(voters, districts)]
        builder.add_block(txs, checked=lambda tx_hash: True)
        if number % 50 == 0:
            print(f"built block {builder.ledger.height}", file=sys.stderr)
    store.close()
    return data, genesis


def timed(ledger: Ledger, method: str, passes: int) -> tuple[float, int]:
    read = getattr(ledger, method)
    for height in range(1, ledger.height + 1):
        read(height)
    total_bytes = 0
    started = time.process_time()  # CPU time of this process: the box may be shared
    for _ in range(passes):
        for height in range(1, ledger.height + 1):
            total_bytes += len(read(height))
    return time.process_time() - started, total_bytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=200)
    parser.add_argument("--ballots", type=int, default=200)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="veche-bench-store-") as folder:
        data, genesis = build(Path(folder), args.blocks, args.ballots)
        import plyvel

        db = plyvel.DB(str(data))
        db.compact_range()
        db.close()
        for name, verify, method in (("raw", False, "raw_block_with_certificate"),
                                     ("crc", True, "raw_block_with_certificate"),
                                     ("vouched", True, "vouched_block_with_certificate")):
            store = LevelStore(data, verify_checksums=verify)
            ledger = Ledger(store, genesis.params)  # type: ignore[attr-defined]
            seconds, size = timed(ledger, method, args.passes)
            count = ledger.height * args.passes
            print(f"{name:8s} {seconds / count * 1e6:9.1f} CPU-µs/block  {size / seconds / 1e6:8.1f} MB/CPU-s  "
                  f"({count} block reads, {size / count / 1024:.1f} KiB/block)")
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
