"""Consensus messages per height on a loopback testnet of real validator processes, from /metrics.

    .venv/bin/python scripts/bench_messages.py [--rate 300] [--duration 20] [--validators 4] [--json]

Starts ``--validators`` validators (no observer), waits 2 s, snapshots every validator's
``veche_consensus_messages_sent_total{kind}`` (one per copy queued to a peer link),
``veche_p2p_stale_proposals_total`` (proposals of decided heights received) and
``veche_p2p_sent_total`` (envelopes), sends signed votes at ``--rate`` per second for
``--duration`` seconds (``--rate 0``: idle, heartbeat blocks only), snapshots again and prints the
differences summed over the validators, in total and per committed height.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_network import drive  # noqa: E402
from tests.node.netkit import LocalNet, http_get  # noqa: E402
from tests.node.votes import demo_plan, make_batches  # noqa: E402

COUNTED = re.compile(r'^(veche_consensus_messages_sent_total\{kind="[a-z]+"\}|veche_p2p_stale_proposals_total|'
                     r'veche_p2p_sent_total|veche_height)(?:\{[^}]*\})?\s+([0-9.e+]+)$', re.M)


def snapshot(net: LocalNet) -> tuple[dict[str, float], list[float]]:
    totals: dict[str, float] = {}
    heights: list[float] = []
    for name in net.validators:
        _, body = http_get(net.urls[name] + "/metrics")
        for key, value in COUNTED.findall(body.decode()):
            if key == "veche_height":
                heights.append(float(value))
            else:
                totals[key] = totals.get(key, 0.0) + float(value)
    return totals, heights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300, help="offered votes per second (0: idle)")
    parser.add_argument("--duration", type=float, default=20, help="measured window, seconds")
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="veche-bench-messages-"))
    net = LocalNet(directory / "net", validators=args.validators, observers=0)
    try:
        total = int(args.rate * (args.duration + 3)) + 100
        batches = make_batches(demo_plan(net.directory), total, 100) if args.rate else []
        net.start_all()
        time.sleep(2)
        before, heights_before = snapshot(net)
        if args.rate:
            asyncio.run(drive(net, batches, args.rate, 1, args.duration, 100))
        else:
            time.sleep(args.duration)
        after, heights_after = snapshot(net)
    finally:
        net.close()
        shutil.rmtree(directory, ignore_errors=True)
    heights = min(b - a for a, b in zip(heights_before, heights_after))
    counts = {key: after[key] - before.get(key, 0.0) for key in sorted(after)}
    result = {"validators": args.validators, "rate": args.rate, "heights": heights,
              "per_height": {key: round(value / heights, 2) if heights else None for key, value in counts.items()},
              "totals": counts}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.validators} validators, {args.rate:g} votes/s, {heights:g} heights committed in the window")
    for key, value in counts.items():
        print(f"  {key:<58} {value:>8g}  {result['per_height'][key]:>7} per height")


if __name__ == "__main__":
    main()
