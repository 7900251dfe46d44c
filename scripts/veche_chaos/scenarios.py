"""Phases beyond the perturbation plan: one Byzantine validator among honest ones.

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

from veche_chaos.observe import get_json
from veche_chaos.runner import Context

log = logging.getLogger("veche.chaos.byzantine")

DEFAULT_BYZANTINE_BEHAVIOURS = "equivocate-proposals,equivocate-votes,garbage"
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
