"""Measure how well a time-order attacker links voter-held ballots to citizens (tests/gateway/unlinking.py).

    .venv/bin/python scripts/unlinkability.py [--voters 1000] [--min-delay 0] [--max-delay 20] [--tick 0.5]
                                              [--concurrency 32] [--json]

Runs N citizens through a real gateway (LevelDB store, log) with its cookie-less relay and fake nodes
over a real ledger; then pairs the gateway's records with the chain's ballots by time order and prints
how many pairs are right: ``relayed`` (the chain as it is), ``undelayed`` (the order ballots reached the
relay, i.e. without the delay) and chance (1/N).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.gateway.unlinking import measure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voters", type=int, default=1000)
    parser.add_argument("--min-delay", type=float, default=0.0)
    parser.add_argument("--max-delay", type=float, default=20.0)
    parser.add_argument("--tick", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="veche-unlink-") as scratch:
        result = asyncio.run(measure(Path(scratch), voters=args.voters, delay=(args.min_delay, args.max_delay),
                                     tick=args.tick, concurrency=args.concurrency)).as_dict()
    result["concurrency"] = args.concurrency
    result["load_average"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['voters']} voters, relay delay {args.min_delay:g}..{args.max_delay:g} s, tick {args.tick:g} s, "
          f"{args.concurrency} at once ({result['seconds']} s; load {result['load_average']:.1f})")
    print(f"time-order attacker, relayed ballots:  {result['relayed_matches']} right = {result['relayed_rate']:.2%}")
    print(f"time-order attacker, without delay:    {result['undelayed_matches']} right = "
          f"{result['undelayed_rate']:.2%}")
    print(f"chance (a random pairing):             {result['chance_rate']:.2%}")
    print(f"gateway log lines: {result['gateway_log_lines']}; gateway store keys: {result['gateway_store_keys']}")


if __name__ == "__main__":
    main()
