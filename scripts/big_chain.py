"""Ten program-years on one chain: build a 10,000,000-ballot chain and measure it.

    .venv/bin/python scripts/big_chain.py plan  [--ballots 10000000]
    nice -n 15 .venv/bin/python scripts/big_chain.py build [--dir /work/big-chain] [--ballots 10000000]
                                                          [--workers 2] [--seed 1]

``build`` writes the chain offline (no network) through the real apply path — see
scripts/bigchain/build.py for what is real and how resuming works; run it again after any stop
and it continues. ``plan`` prints the campaigns, their ballot counts and windows.
The measurements (docs/BENCHMARKS.md, "10 million ballots") are further sub-commands: ``node``,
``network``, ``apply``, ``disk``, ``catchup`` (a fresh observer's block sync of the whole chain),
``backup`` (``veche node backup`` / ``restore`` of a copy) and ``equal-shares`` (the first
equal-shares computation of the closed campaigns: seconds, the node's and its worker's memory);
``syncapply`` replays the observer's block-sync path in one process (no network) for its CPU per
vote and a profile.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT)]
# worker processes import bigchain.* and chain.* too
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "scripts"), str(ROOT), os.environ.get("PYTHONPATH", "")])

DEFAULT_DIR = Path("/work/big-chain")


def cmd_plan(args: argparse.Namespace) -> None:
    from bigchain.plan import make_plan

    anchor = int(time.time() * 1000)
    total = 0
    for year in make_plan(args.ballots, args.seed, anchor):
        for campaign in year.campaigns:
            ballot = campaign.json["ballot"]
            rule = campaign.json["rule"]
            print(f"{year.label}  {campaign.campaign_id:<18} {campaign.kind:<9} {ballot['type']:<10} "
                  f"{rule['name']:<15} {len(campaign.initiatives):>4} initiatives {campaign.ballots:>10,} ballots"
                  + ("  (genesis)" if campaign.genesis else "") + ("  (closed by the committee)"
                                                                   if campaign.close_by_committee else ""))
            total += campaign.ballots
    print(f"total {total:,} ballots in {sum(len(y.campaigns) for y in make_plan(args.ballots, args.seed, anchor))} "
          "campaigns")


def cmd_build(args: argparse.Namespace) -> None:
    from bigchain.build import build

    build(args.dir, args.ballots, args.seed, args.workers, progress=not args.quiet)


@contextlib.contextmanager
def copies(args: argparse.Namespace, what: str, *, make: bool = True) -> Iterator[Path]:
    """A fresh ``<work>/veche-big-<what>-XXXX/run`` for a measurement's copies (made unless ``make`` is
    false: some measurements create it themselves); removed afterwards unless ``--keep``."""
    import shutil
    import tempfile

    base = args.work if args.work is not None else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"veche-big-{what}-", dir=base)) / "run"
    if make:
        work.mkdir()
    try:
        yield work
    finally:
        if not args.keep:
            shutil.rmtree(work.parent, ignore_errors=True)


def emit(result: dict[str, object], args: argparse.Namespace) -> None:
    import json

    result = {"load_before": LOAD_BEFORE, "load_after": [round(x, 2) for x in os.getloadavg()], **result}
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"command": " ".join(sys.argv), "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                                     **result}, ensure_ascii=False) + "\n")


def cmd_node(args: argparse.Namespace) -> None:
    from bigchain.measure_node import measure

    with copies(args, "node", make=False) as work:
        emit(measure(args.dir, work, settle=args.settle, samples=args.samples, full_campaign=args.campaign,
                     block_walk=args.block_walk), args)


def cmd_network(args: argparse.Namespace) -> None:
    from bigchain.measure_network import measure

    with copies(args, "network") as work:
        emit(measure(args.dir, work, rounds=args.rounds, rate=args.rate, duration=args.duration,
                     warmup=args.warmup, keep=args.keep), args)


def cmd_apply(args: argparse.Namespace) -> None:
    from bigchain.measure_apply import measure

    with copies(args, "apply") as work:
        emit(measure(args.dir, work, rounds=args.rounds, votes=args.votes, per_block=args.per_block), args)


def cmd_disk(args: argparse.Namespace) -> None:
    """Bytes per ballot and per key prefix, on a hard-linked copy (opening a LevelDB may compact it)."""
    from bigchain.disk import files_by_kind, leveldb_stats, usage
    from bigchain.snapshot import snapshot_data

    source = args.dir / "net" / "validator-0" / "data"
    with copies(args, "disk", make=False) as work:
        snapshot_data(source, work)
        before = files_by_kind(source)
        rows = usage(work)
        ballots = next(row.keys for row in rows if row.prefix == "S/b/")
        total = sum(before.values())
        emit({"chain": str(args.dir), "ballots": ballots, "directory_bytes": before,
              "bytes_per_ballot": round(total / ballots, 1) if ballots else None,
              "table_bytes_per_ballot": round(before["tables"] / ballots, 1) if ballots else None,
              "prefixes": [{**row.to_json(), "table_bytes_per_ballot": round(row.table_bytes / ballots, 1)
                            if ballots else None} for row in rows],
              "leveldb_stats": leveldb_stats(work).splitlines()}, args)


def cmd_equal_shares(args: argparse.Namespace) -> None:
    """The first equal-shares computation of the closed campaigns: a real node, or in this process."""
    from bigchain.measure_equal_shares import measure_inprocess, measure_node

    with copies(args, "equal-shares", make=args.way != "node") as work:
        if args.way == "node":
            emit(measure_node(args.dir, work), args)
        else:
            emit(measure_inprocess(args.dir, work, campaign=args.campaign, node_path=args.only != "verify",
                                   verify_path=args.only != "node"), args)


def cmd_catchup(args: argparse.Namespace) -> None:
    from bigchain.measure_catchup import measure

    with copies(args, "catchup", make=False) as work:
        emit(measure(args.dir, work, validators=args.validators, settle=args.settle, timeout=args.timeout), args)


def cmd_syncapply(args: argparse.Namespace) -> None:
    from bigchain.measure_syncapply import measure

    with copies(args, "syncapply") as work:
        emit(measure(args.dir, work, blocks=args.blocks, profile=args.profile,
                     compression=None if args.compression == "none" else args.compression,
                     write_buffer_mb=args.write_buffer_mb), args)


def cmd_backup(args: argparse.Namespace) -> None:
    from bigchain.measure_backup import measure

    with copies(args, "backup") as work:
        emit(measure(args.dir, work, year_ballots=args.year_ballots), args)


LOAD_BEFORE = [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="print the campaigns of the plan")
    plan.add_argument("--ballots", type=int, default=10_000_000)
    plan.add_argument("--seed", type=int, default=1)
    plan.set_defaults(run=cmd_plan)
    build = sub.add_parser("build", help="build (or resume building) the chain")
    build.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    build.add_argument("--ballots", type=int, default=10_000_000)
    build.add_argument("--seed", type=int, default=1)
    build.add_argument("--workers", type=int, default=2, help="signing processes")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.set_defaults(run=cmd_build)

    def measurement(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the chain directory (build --dir)")
        command.add_argument("--work", type=Path, default=None, help="where the copies go (default: temp dir)")
        command.add_argument("--out", type=Path, default=None, help="append the JSON result to this file")
        command.add_argument("--keep", action="store_true", help="keep the copies")
        return command

    node = measurement("node", "one validator on a copy: start-up, memory, tx/proof lookups, ballot pages")
    node.add_argument("--settle", type=float, default=20.0)
    node.add_argument("--samples", type=int, default=200, help="tx lookups")
    node.add_argument("--campaign", default=None, help="also read this whole campaign page by page")
    node.add_argument("--block-walk", action="store_true",
                      help="read ballot pages by the block walk (as a store from before the index), not the index")
    node.set_defaults(run=cmd_node)

    network = measurement("network", "a new campaign at --rate votes/s on the big chain vs an empty one, alternated")
    network.add_argument("--rounds", type=int, default=2)
    network.add_argument("--rate", type=float, default=1000)
    network.add_argument("--duration", type=float, default=60)
    network.add_argument("--warmup", type=float, default=5)
    network.set_defaults(run=cmd_network)

    apply = measurement("apply", "CPU per vote applied and committed on the big chain vs an empty one, "
                                 "main thread and LevelDB's background apart")
    apply.add_argument("--rounds", type=int, default=2)
    apply.add_argument("--votes", type=int, default=60_000)
    apply.add_argument("--per-block", type=int, default=500)
    apply.set_defaults(run=cmd_apply)

    disk = measurement("disk", "bytes per ballot and per key prefix of validator-0's LevelDB, LevelDB's compaction table")
    disk.set_defaults(run=cmd_disk)
    shares = measurement("equal-shares", "seconds and peak memory of the first equal-shares computation of "
                                         "each closed campaign (a real node, or --way inprocess)")
    shares.add_argument("--way", choices=("node", "inprocess"), default="node")
    shares.add_argument("--campaign", default=None, help="inprocess: only this campaign")
    shares.add_argument("--only", choices=("node", "verify"), default=None,
                        help="inprocess: only the node's computation, or only veche verify's")
    shares.set_defaults(run=cmd_equal_shares)

    catchup = measurement("catchup", "a fresh observer block-syncs the whole chain from running validators (copies): "
                                     "votes/s, CPU per vote, peak RSS, time to first verified answer")
    catchup.add_argument("--validators", type=int, default=3, help="validators running (3 of 4 are a quorum)")
    catchup.add_argument("--settle", type=float, default=10.0, help="seconds to keep sampling after the catch-up")
    catchup.add_argument("--timeout", type=float, default=7200.0)
    catchup.set_defaults(run=cmd_catchup)

    syncapply = measurement("syncapply", "the observer's block-sync path in one process, without the network: "
                                         "serve, decode and apply every block into a fresh LevelDB; CPU per vote")
    syncapply.add_argument("--blocks", type=int, default=None, help="only the first N blocks")
    syncapply.add_argument("--profile", type=Path, default=None, help="write a cProfile of decode + apply here")
    syncapply.add_argument("--compression", choices=("snappy", "none"), default="snappy",
                           help="the target LevelDB's compression (a node's: snappy)")
    syncapply.add_argument("--write-buffer-mb", type=int, default=16, help="the target's write buffer (a node's: 16)")
    syncapply.set_defaults(run=cmd_syncapply)

    backup = measurement("backup", "`veche node backup` of a running validator on a copy, then "
                                   "`veche node restore` into a fresh home and its start")
    backup.add_argument("--year-ballots", type=int, default=1_000_000,
                        help="ballots of one program-year, for the yearly growth (computed, not measured)")
    backup.set_defaults(run=cmd_backup)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
