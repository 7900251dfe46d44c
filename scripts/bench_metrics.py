#!/usr/bin/env python3
"""Benchmark the node's metrics: the calls on the hot path and one scrape of ``/metrics``.

What a node does per p2p envelope, per POST and per block is a handful of ``inc``/``observe`` calls
on ``node.metrics.NodeMetrics``; a Prometheus scrape renders every metric. This prints, for each kind
of call, nanoseconds per call (best of ``--rounds`` rounds of ``--calls`` calls) and the time of one
``render()`` of a registry filled like a 4-validator node's after a busy run (every label set the
node creates: peers, rejection codes, shed reasons, message kinds), plus its size.

    .venv/bin/python scripts/bench_metrics.py [--calls 200000] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.metrics import NodeMetrics  # noqa: E402

PEERS = ("validator-1", "validator-2", "validator-3")
CODES = ("bad_signature", "duplicate", "unknown_campaign", "double_vote", "voting_closed", "mempool_full")


def filled() -> NodeMetrics:
    """A registry with every label set a busy validator ends up with."""
    metrics = NodeMetrics()
    metrics.bind_live(height=lambda: 12345, mempool_size=lambda: 321, mempool_bytes=lambda: 65432,
                      peers_connected=lambda: 3, sync_target=lambda: 12345, catching_up=lambda: 0,
                      consensus_round=lambda: 0)
    for peer in PEERS:
        metrics.p2p_received.inc(peer, amount=100_000)
        metrics.p2p_sent.inc(peer, amount=100_000)
        metrics.p2p_duplicates.inc(peer, amount=10)
        metrics.p2p_stale_proposals.inc(peer)
        metrics.p2p_dropped.inc(peer, "tx", amount=3)
        metrics.p2p_rejected.inc(peer, "bad_signature")
        metrics.consensus_rejected.inc(peer, "late_vote")
        metrics.sync_bad_peer.inc(peer)
        metrics.evidence.inc(peer)
    for code in CODES:
        metrics.txs_rejected.inc(code, amount=7)
    for reason in ("mempool_full", "busy", "backlog", "over_budget", "node_over_budget"):
        metrics.requests_shed.inc(reason)
    for kind in ("proposal", "prevote", "precommit", "evidence"):
        metrics.consensus_sent.inc(kind, amount=1000)
    for source in ("client", "peer"):
        metrics.txs_accepted.inc(source, amount=50_000)
    for via in ("consensus", "sync"):
        metrics.blocks_committed.inc(via, amount=6000)
    for value in (0.0004, 0.003, 0.02, 0.2, 0.6, 1.2, 4.0):
        for histogram in (metrics.commit_latency, metrics.commit_write, metrics.signing_write, metrics.loop_lag,
                          metrics.gossip_wait, metrics.mempool_wait):
            histogram.observe(value)
    return metrics


def per_call_ns(action: Callable[[], None], calls: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            action()
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    metrics = filled()
    results = {
        "inc_labeled_ns": per_call_ns(lambda: metrics.p2p_received.inc("validator-2"), args.calls, args.rounds),
        "inc_two_labels_amount_ns": per_call_ns(lambda: metrics.txs_rejected.inc("duplicate", amount=3),
                                                args.calls, args.rounds),
        "inc_unlabeled_ns": per_call_ns(lambda: metrics.txs_committed.inc(amount=5), args.calls, args.rounds),
        "observe_ns": per_call_ns(lambda: metrics.commit_write.observe(0.004), args.calls, args.rounds),
    }
    renders = max(20, args.calls // 2000)
    text = metrics.render()
    results["render_us"] = per_call_ns(lambda: metrics.render() and None, renders, args.rounds) / 1000
    results["render_bytes"] = len(text.encode())
    results["series"] = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    if args.json:
        print(json.dumps(results))
        return
    for key, value in results.items():
        print(f"{key:28} {value:12,.1f}")


if __name__ == "__main__":
    main()
