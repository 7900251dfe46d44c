#!/usr/bin/env python3
"""An independent Veche chain verifier, written from docs/ alone (PROTOCOL.md, TRANSPARENCY.md §7,
GENESIS.md, RULES.md, NODE.md §7) — it shares no code with the project.

    python3 scripts/outsider/verify_chain.py --genesis genesis.json --node URL [--json]

It trusts only the genesis file: it replays every block served by ``GET /api/v1/blocks/raw``
(block links, Merkle roots, commit certificates against the validator set in force at each height,
every transaction signature and voter-held token, the state machine, the app hash chain), recomputes
every campaign's tally and winners, and compares each result hash with the node's published tally.
Its ``--json`` output has the keys of ``veche verify --json`` (docs/TRANSPARENCY.md §3), plus
``app_hash``. The code is the package ``outsider_vc`` next to this file.

Dependencies: the Python standard library, ``msgpack`` (decoding only; every value is re-encoded
by the package's own canonical encoder and compared) and ``cryptography`` (Ed25519, RSA-PSS).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from outsider_vc.chain import run  # noqa: E402 - after the path of the package
from outsider_vc.codec import genesis_hash, load_json_strict  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--genesis", required=True, help="the genesis file you trust")
    parser.add_argument("--node", required=True, help="a node's API base URL")
    parser.add_argument("--genesis-hash", help="the published genesis hash (hex) to compare with")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for equal-shares results")
    args = parser.parse_args(argv)
    with open(args.genesis, encoding="utf-8") as f:
        text = f.read()
    if args.genesis_hash:
        try:
            ours = genesis_hash(load_json_strict(text)).hex()
        except ValueError as exc:
            print(f"cannot read the genesis file: {exc}", file=sys.stderr)
            return 2
        if ours != args.genesis_hash.lower():
            print(f"genesis hash {ours} is not the published {args.genesis_hash}", file=sys.stderr)
            return 2
    code, report = run(text, args.node, wait_s=args.wait)
    if args.json:
        print(json.dumps(report))
    elif report["ok"]:
        print(f"OK: {report['blocks']} blocks, {report['txs']} transactions, {report['votes']} votes, "
              f"app hash {report['app_hash']}")
        for cid, c in report["campaigns"].items():
            print(f"  {cid}: {c['status']}, {c['total_ballots']} ballots, winners {c['winners']}, "
                  f"result {c['result_hash']} ({'matches' if c['matches'] else 'not compared'})")
    else:
        where = f" at height {report['first_bad_height']}" if report["first_bad_height"] else ""
        print(f"FAILED{where}: {report['error']}")
    return code


if __name__ == "__main__":
    sys.exit(main())
