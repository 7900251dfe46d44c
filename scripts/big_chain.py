"""Ten program-years on one chain: build a 10,000,000-ballot chain and measure it.

    .venv/bin/python scripts/big_chain.py plan  [--ballots 10000000]
    nice -n 15 .venv/bin/python scripts/big_chain.py build [--dir /work/big-chain] [--ballots 10000000]
                                                          [--workers 2] [--seed 1]

``build`` writes the chain offline (no network) through the real apply path — see
scripts/bigchain/build.py for what is real and how resuming works; run it again after any stop
and it continues. ``plan`` prints the campaigns, their ballot counts and windows.
The measurements (docs/BENCHMARKS.md, "10 million ballots") are further sub-commands.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
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
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
