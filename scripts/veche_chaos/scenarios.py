"""Phases beyond the perturbation plan: one Byzantine validator among honest ones; a post-heal probe.

``byzantine_phase`` keeps the load running for ``BYZANTINE_SECONDS`` while the validator named in
``RunConfig.byzantine`` (started with ``VECHE_BYZANTINE``, see ``node/byzantine.py``) misbehaves,
then sets two gates:

- the network kept committing: the honest nodes advanced at least ``MIN_BLOCKS`` and acknowledged
  votes committed (the invariants then check they all did, exactly once);
- every honest node holds evidence against the Byzantine validator, both in
  ``GET /api/v1/evidence`` (each item decoded and verified by the invariant checker) and in the
  ``veche_equivocation_evidence_total{validator=...}`` counter of ``/metrics``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

import aiohttp

from chain.crypto import read_key_file
from veche_chaos.load import DirectLoad, NodeRing, ballot_options
from veche_chaos.observe import get_json
from veche_chaos.runner import Context

log = logging.getLogger("veche.chaos.byzantine")

DEFAULT_BYZANTINE_BEHAVIOURS = "equivocate-proposals,equivocate-votes,garbage,split"
"""The hardest case by default: with ``split`` no honest validator receives both signed versions of a
message, so every honest validator's evidence must come from relayed precommits, a commit
certificate or evidence gossip."""
BYZANTINE_SECONDS = 40.0
MIN_BLOCKS = 10
EVIDENCE_METRIC = re.compile(r'^veche_equivocation_evidence_total\{validator="([^"]+)"\}\s+(\d+(?:\.\d+)?)', re.M)


async def evidence_seen(session: aiohttp.ClientSession, url: str) -> tuple[set[int], dict[str, float]]:
    """(validator indexes in ``/api/v1/evidence``, evidence counter per validator name in ``/metrics``)."""
    listed: set[int] = set()
    answer = await get_json(session, url + "/api/v1/evidence", timeout=aiohttp.ClientTimeout(total=5))
    if isinstance(answer, dict):
        listed = {int(item["validator_index"]) for item in answer.get("evidence", [])}
    counters: dict[str, float] = {}
    try:
        async with session.get(url + "/metrics", timeout=aiohttp.ClientTimeout(total=5)) as response:
            text = await response.text()
        counters = {name: float(value) for name, value in EVIDENCE_METRIC.findall(text)}
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        pass
    return listed, counters


async def byzantine_phase(context: Context, seconds: float = BYZANTINE_SECONDS) -> None:
    cluster, watcher = context.cluster, context.watcher
    byzantine = sorted(context.config.byzantine)
    honest = [n for n in cluster.nodes if n not in context.config.byzantine]
    honest_validators = [n for n in cluster.validators if n not in context.config.byzantine]
    indexes = {cluster.validators.index(n) for n in byzantine}
    start_heights = {n: watcher.node_height(n) or 0 for n in honest}
    started = time.time()
    await asyncio.sleep(seconds)
    end_heights = {n: watcher.node_height(n) or 0 for n in honest}
    progress = min(end_heights[n] - start_heights[n] for n in honest)
    recent = [r for r in context.tracker.votes() if r.acked is not None and r.offered >= started]
    committed = sum(1 for r in recent if r.committed is not None)
    context.notes["byzantine"] = {"validators": byzantine, "behaviours": context.config.byzantine,
                                  "honest_blocks_during": progress, "votes_acked_during": len(recent),
                                  "of_them_committed_by_phase_end": committed}
    context.gate(f"network kept committing for {seconds:.0f} s with {', '.join(byzantine)} Byzantine "
                 f"(>= {MIN_BLOCKS} blocks on every honest node: {progress})",
                 progress >= MIN_BLOCKS and committed > 0)
    seen: dict[str, tuple[set[int], dict[str, float]]] = {}
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 30
        while True:
            for name in honest_validators:
                seen[name] = await evidence_seen(session, cluster.url(name))
            complete = all(indexes <= listed and all(counters.get(b, 0) >= 1 for b in byzantine)
                           for listed, counters in seen.values())
            if complete or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
    context.notes["evidence on honest validators"] = {
        name: {"evidence_api": sorted(listed), "metric": counters} for name, (listed, counters) in seen.items()}
    context.gate(f"evidence against {', '.join(byzantine)} on every honest validator (API and metric)", complete)


HEAL_PROBE_OFFSETS_S = (0.1, 0.3, 0.6, 1.0, 1.5, 2.5)


async def heal_probe_phase(context: Context, target: str = "validator-2", hold_s: float = 10.0,
                           limit_s: float = 3.0) -> None:
    """Cut ``target`` off for ``hold_s`` under load, heal, then post a few fresh votes straight to every
    node at each of ``HEAL_PROBE_OFFSETS_S`` after the heal: each node must get them committed within
    ``limit_s`` (a node still stuck behind the cut — a frozen connection, a back-off — shows here)."""
    cluster, tracker = context.cluster, context.tracker
    key = read_key_file(context.gateway_key_file)
    ballots = ballot_options(cluster.genesis_document)
    await context.fabric.partition([{target}, set(cluster.nodes) - {target}])
    await asyncio.sleep(hold_s)
    await context.fabric.heal()
    healed = time.time()
    sent: list[tuple[float, str, bytes]] = []
    pending: list[asyncio.Task[object]] = []
    async with aiohttp.ClientSession() as session:
        for offset in HEAL_PROBE_OFFSETS_S:
            await asyncio.sleep(max(0.0, healed + offset - time.time()))
            for node in cluster.nodes:
                ring = NodeRing([node], {node: cluster.url(node)})
                maker = DirectLoad(tracker, ring, context.chain_id, key, ballots, rate=0)
                txs = maker.make_batch(3)
                pending.append(asyncio.create_task(ring.send(session, tracker, txs)))
                sent.extend((offset, node, tx.hash) for tx in txs[1:])
        await asyncio.gather(*pending)
    await context.watcher.wait_for(lambda: all(tracker.records[h].committed is not None for _, _, h in sent), 30)
    worst: dict[str, float | None] = {}
    for _, node, tx_hash in sent:
        latency = tracker.records[tx_hash].latency
        previous = worst.get(node, 0.0)
        worst[node] = None if latency is None or previous is None else max(previous, latency)
    context.notes[f"after healing {target}: worst commit latency of votes posted to each node"] = {
        n: None if v is None else round(v, 2) for n, v in worst.items()}
    slow = sorted(n for n, v in worst.items() if v is None or v > limit_s)
    context.gate(f"votes posted to any node 0.1-2.5 s after {target} rejoined commit within {limit_s:.0f} s "
                 f"(slow: {', '.join(slow) or 'none'})", not slow)
