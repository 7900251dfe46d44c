"""Network-lifecycle faults under load (issue 14; docs/RELIABILITY.md "Lifecycle phases").

``replace_phase``   a validator is killed (-9) for good; a spare machine — a fresh home with a new
                    key, started now — is added and the dead one removed with ``veche validators
                    update``; gates: the change is in force two blocks after its commit, the new
                    validator's precommits appear in certificates, the network keeps committing.
``gateway_phase``   the gateway key is rotated mid-campaign (``veche keys rotate gateway``): the
                    direct load switches to the new key, the gateway process is restarted on its own
                    data with the new key (a new contractor taking over); gates: votes offered after
                    the switch commit, the old key gets ``revoked_key``.
``upgrade_phase``   one validator restarted with software limited to protocol version 1
                    (``VECHE_MAX_PROTOCOL_VERSION=1``), a version-2 upgrade scheduled ahead; gates: it
                    exits with code 8 before the height, the others cross it, and upgraded it catches up.

The invariant checker follows the set changes (certificates against the set in force at each height).
Each phase is listed among the perturbations (kinds ``replace``, ``gw-rotate``, ``upgrade``), so the
latency table tells votes offered during a phase, and in the minute after it, from calm ones.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp

from chain import codec
from chain.crypto import SigningKey, read_key_file, write_key_file
from chain.tx import make_registration
from veche_chaos.cluster import REPO_ROOT
from veche_chaos.load import CAMPAIGN
from veche_chaos.observe import get_json
from veche_chaos.perturb import FaultRecord
from veche_chaos.runner import Context

log = logging.getLogger("veche.chaos.lifecycle")

PROTOCOL_ENV = "VECHE_MAX_PROTOCOL_VERSION"
UPGRADE_AHEAD_BLOCKS = 100
"""Under load a block takes ~0.1-0.3 s: far enough ahead for the upgrade to commit first (it must be >= commit + 2)."""
AFTER_SWITCH_BLOCKS = 5


async def veche(*args: str, timeout: float = 180.0) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "node.cli", *args, cwd=REPO_ROOT,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


def _last_height(text: str, marker: str) -> int | None:
    for line in reversed(text.splitlines()):
        if marker in line:
            return int(line.rsplit("height ", 1)[1].split()[0])
    return None


async def _wait_height(context: Context, height: int, timeout: float) -> bool:
    watcher = context.watcher
    names = context.cluster.nodes
    return await watcher.wait_for(lambda: watcher.max_height() >= height and watcher.all_caught_up(names, within=2.0),
                                  timeout, step=0.2)


def _nodes_args(context: Context) -> list[str]:
    args: list[str] = []
    for name in context.cluster.validators[:3]:
        args += ["--node", context.cluster.url(name)]
    return args


async def replace_phase(context: Context, target: str = "validator-3") -> None:
    cluster = context.cluster
    if not cluster.spare_names:
        context.gate("replace: a spare machine exists (run with spares)", False)
        return
    spare = cluster.spare_names[0]
    started = time.time()
    await cluster.kill(target)
    cluster.retire(target)
    log.info("lifecycle: %s killed for good; starting the fresh machine %s", target, spare)
    await cluster.start(spare)
    key = read_key_file(cluster.home(spare) / "node-key.json")
    change = cluster.directory / "replace.json"
    change.write_text(json.dumps({
        "reason": f"{target}'s server is lost for good; {spare} replaces it",
        "add": [{"name": spare, "operator": "committee", "public_key": key.public_key.hex(),
                 "url": context.fabric.genesis_url(spare)}],
        "remove": [target]}))
    committee = str(cluster.directory / "keys" / "committee-0.json")
    code, out, err = await veche("validators", "update", str(change), "--key", committee, *_nodes_args(context))
    effective = _last_height(out, "in force from height")
    context.gate(f"replace: validators.update committed ({out.strip().splitlines()[1:2] or err.strip()[-200:]})",
                 code == 0 and effective is not None)
    if effective is None:
        return
    cluster.join(spare)
    in_force = await _wait_height(context, effective + AFTER_SWITCH_BLOCKS, 180)
    context.gate(f"replace: network past height {effective + AFTER_SWITCH_BLOCKS} with {spare} in {target}'s "
                 "place", in_force)
    signed = False
    async with aiohttp.ClientSession() as session:
        roster = await get_json(session, cluster.url(cluster.validators[0]) + f"/api/v1/validators?height={effective}")
        names = [v["name"] for v in roster.get("validators", [])] if isinstance(roster, dict) else []
        index = names.index(spare) if spare in names else -1
        for height in range(effective, effective + AFTER_SWITCH_BLOCKS + 1):
            block = await get_json(session, cluster.url(cluster.validators[0]) + f"/api/v1/blocks/{height}")
            if isinstance(block, dict) and any(i == index for i, _ in block["commit"]["signatures"]):
                signed = True
    context.gate(f"replace: {spare} signs certificates after height {effective}", signed)
    context.notes["replace"] = {"killed": target, "added": spare, "committed_at": _last_height(out, "committed at"),
                                "effective": effective, "seconds": round(time.time() - started, 1),
                                "validators": names}


async def gateway_phase(context: Context) -> None:
    cluster = context.cluster
    gateway_home = cluster.home(cluster.gateway_name)
    old = read_key_file(gateway_home / "gateway-key.json")
    new = SigningKey.generate()
    committee = str(cluster.directory / "keys" / "committee-0.json")
    code, out, err = await veche("keys", "rotate", "gateway", "gateway", "--new-public-key", new.public_key.hex(),
                                 "--reason", "the new gateway contractor takes over", "--key", committee,
                                 *_nodes_args(context))
    effective = _last_height(out, "in force from height")
    context.gate(f"gateway: keys.rotate committed ({err.strip()[-200:] or 'ok'})", code == 0 and effective is not None)
    if effective is None:
        return
    await _wait_height(context, effective, 120)
    if context.direct is not None:
        context.direct.gateway_key = new
    # the new contractor's gateway: the same data (voter vault, pending ballots), its own key
    await cluster.stop(cluster.gateway_name)
    (gateway_home / "gateway-key.json").unlink()
    write_key_file(gateway_home / "gateway-key.json", new)
    await cluster.start(cluster.gateway_name)
    switched = time.time()
    refused = ""
    async with aiohttp.ClientSession() as session:
        stale = make_registration(context.chain_id, old, CAMPAIGN, [SigningKey.generate().public_key])
        url = cluster.url(cluster.validators[0]) + "/api/v1/txs"
        async with session.post(url, data=codec.encode([stale.raw]),
                                headers={"Content-Type": "application/octet-stream"}) as response:
            answer = await response.json()
        rejected = answer.get("rejected", []) if isinstance(answer, dict) else []
        refused = rejected[0]["code"] if rejected else "accepted"
    context.gate(f"gateway: the old key is refused ({refused})", refused == "revoked_key")
    await asyncio.sleep(20)
    later = [r for r in context.tracker.votes() if r.acked is not None and r.offered >= switched]
    committed = sum(1 for r in later if r.committed is not None)
    context.gate(f"gateway: votes after the switch commit ({committed} of {len(later)} so far)", committed > 0)
    context.notes["gateway_rotation"] = {"effective": effective, "votes_after": len(later),
                                         "committed_after_20s": committed}


async def upgrade_phase(context: Context, laggard: str = "validator-2") -> None:
    cluster = context.cluster
    proc = cluster.procs[laggard]
    await cluster.stop(laggard)
    proc.env[PROTOCOL_ENV] = "1"                       # the old software
    await cluster.start(laggard)
    height = context.watcher.max_height() + UPGRADE_AHEAD_BLOCKS
    committee = str(cluster.directory / "keys" / "committee-0.json")
    code, out, err = await veche("upgrade", "schedule", "2", "--height", str(height), "--reason", "chaos: release 2",
                                 "--key", committee, *_nodes_args(context))
    context.gate(f"upgrade: version 2 scheduled at height {height} ({err.strip()[-200:] or 'ok'})", code == 0)
    if code != 0:
        return
    exit_code = await cluster.wait_exit(laggard, 240)
    log_text = (cluster.home(laggard) / "process.log").read_text(encoding="utf-8", errors="replace")
    context.gate(f"upgrade: {laggard} without support stopped before height {height} with exit code 8 "
                 f"(got {exit_code})", exit_code == 8 and f"STOPS BEFORE HEIGHT {height}" in log_text)
    others = [n for n in cluster.nodes if n != laggard]
    watcher = context.watcher
    crossed = await watcher.wait_for(lambda: all((watcher.node_height(n) or 0) >= height + 3 for n in others), 180,
                                     step=0.2)
    context.gate(f"upgrade: the others crossed height {height}", crossed)
    proc.env.pop(PROTOCOL_ENV, None)                    # upgraded
    if proc.running:
        await cluster.stop(laggard)
    await cluster.start(laggard)
    caught_up = await _wait_height(context, height + 5, 180)
    context.gate(f"upgrade: {laggard} upgraded catches up across the upgrade", caught_up)
    context.notes["upgrade"] = {"laggard": laggard, "height": height, "exit_code": exit_code}


async def _windowed(context: Context, kind: str, target: str, phase: Callable[[Context], Awaitable[None]]) -> None:
    """Run one phase and list it among the perturbations; it ends once its own gates saw the network well."""
    record = FaultRecord(kind, target, time.time(), height_before=context.watcher.max_height())
    try:
        await phase(context)
    finally:
        record.ended = record.recovered = time.time()
        record.height_at_end = context.watcher.max_height()
        record.majority_progress = record.height_at_end - record.height_before
        context.perturber.records.append(record)


async def lifecycle_phase(context: Context) -> None:
    """All three, in order (``scripts/chaos --lifecycle``)."""
    await _windowed(context, "replace", "validator-3", replace_phase)
    await asyncio.sleep(context.config.settle_s)
    await _windowed(context, "gw-rotate", "gateway", gateway_phase)
    await asyncio.sleep(context.config.settle_s)
    await _windowed(context, "upgrade", "validator-2", upgrade_phase)


__all__ = ["gateway_phase", "lifecycle_phase", "replace_phase", "upgrade_phase"]
