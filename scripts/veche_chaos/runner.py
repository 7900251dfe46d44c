"""One chaos run from an empty folder to a verdict.

1. ``init_testnet`` (4 validators + 1 observer + gateway by default) in a temporary or given
   folder; the fabric is set up and the configs rewritten for it; every process starts.
2. Load starts: direct registrations + votes, citizen flows through the gateway, a re-sender, the
   commit watcher and the sampler (heights, mempools, RSS, latency every few seconds).
3. After a warm-up, the perturbation plan runs — each fault waits for the network to recover and
   then ``settle_s`` of calm before the next. Other phases can replace or follow it: a Byzantine
   validator (``scenarios.py``), a flood (``flood.py``), a soak (``soak.py``).
4. The load stops; acknowledged votes are given ``drain_s`` to commit (the re-sender still works);
   the network must come to one height.
5. ``InvariantChecker`` runs; the summary is printed and written as JSON; everything is torn
   down (processes, namespaces or proxy). The verdict is ``RunSummary.ok``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.crypto import read_key_file
from veche_chaos.cluster import Cluster
from veche_chaos.fabric import Fabric, choose_fabric
from veche_chaos.invariants import InvariantChecker
from veche_chaos.load import DirectLoad, GatewayLoad, NodeRing, Outbox, Resubmitter, ballot_options
from veche_chaos.observe import CommitWatcher, Sampler
from veche_chaos.perturb import FaultRecord, Perturber
from veche_chaos.report import RunSummary, duplicated_count, latency_by_class, render, vote_accounting, write_json
from veche_chaos.tracking import DIRECT, GATEWAY, Tracker

log = logging.getLogger("veche.chaos")

SHORT_PLAN: tuple[tuple[str, str], ...] = (
    ("kill9", "validator-1"), ("sigstop", "validator-2"), ("partition", "validator-3"), ("wipe", "validator-0"),
    ("restart", "observer-0"),
)


def full_plan(validators: list[str], observers: list[str]) -> list[tuple[str, str]]:
    """Every kind on every node in turn (observers: the process faults, not partitions)."""
    plan: list[tuple[str, str]] = []
    for kind in ("kill9", "sigstop", "partition", "wipe", "restart", "split", "delete-signing-state",
                 "corrupt-table", "fill-disk"):
        targets = validators + (observers if kind in ("kill9", "sigstop", "wipe", "restart", "corrupt-table")
                                else [])
        if kind == "split":
            targets = validators[::2]
        if kind == "fill-disk":
            targets = validators[-1:]  # once: the tmpfs stays mounted for the rest of the run
        plan.extend((kind, target) for target in targets)
    return plan


@dataclass(slots=True)
class RunConfig:
    directory: Path | None = None
    fabric: str = "auto"
    validators: int = 4
    observers: int = 1
    direct_rate: float = 40.0
    gateway_rate: float = 1.5
    gateway_concurrency: int = 4
    plan: list[tuple[str, str]] | str = "short"
    repeat_for_s: float = 0.0           # keep cycling the plan until this much time has passed
    hold_s: float = 10.0
    down_s: float = 3.0
    settle_s: float = 4.0
    warmup_s: float = 8.0
    drain_s: float = 60.0
    recovery_timeout_s: float = 90.0
    resubmit_after_s: float = 6.0
    soak_s: float = 0.0
    fault_every_s: float = 0.0         # soak: one perturbation of the full plan this often (0 = none)
    sample_interval_s: float = 10.0
    byzantine: dict[str, str] = field(default_factory=dict)
    node_limits: dict[str, Any] = field(default_factory=dict)
    measured_node: str | None = None    # the flood target: it trusts the fabric's measurement address
    keep: bool = False
    json_out: Path | None = None
    verify_workers: int = 2
    tx_check_limit: int | None = None
    spares: int = 0                     # validator homes outside genesis, for the lifecycle phases
    title: str = "Veche chaos run"


@dataclass(eq=False)
class Context:
    """What a phase (faults, flood, soak) may use."""

    config: RunConfig
    cluster: Cluster
    fabric: Fabric
    tracker: Tracker
    watcher: CommitWatcher
    perturber: Perturber
    ring: NodeRing
    chain_id: str
    gateway_key_file: Path
    stop_load: asyncio.Event
    sampler: Sampler
    extra: dict[str, Any] = field(default_factory=dict)
    gates: dict[str, bool] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    direct: DirectLoad | None = None    # the direct load (the lifecycle phases switch its gateway key)

    def gate(self, name: str, passed: bool) -> None:
        self.gates[name] = passed
        (log.info if passed else log.error)("gate %s: %s", name, "OK" if passed else "FAILED")


Phase = Callable[[Context], Awaitable[None]]


class ChaosRun:
    def __init__(self, config: RunConfig, phases: list[Phase] | None = None) -> None:
        self.config = config
        self.phases = phases
        self.summary: RunSummary | None = None
        self.work_dir: Path | None = None

    async def execute(self) -> RunSummary:
        config = self.config
        started = time.time()
        temporary = config.directory is None
        work_dir = Path(tempfile.mkdtemp(prefix="veche-chaos-")) if temporary else Path(config.directory)  # type: ignore[arg-type]
        work_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir = work_dir
        fabric = choose_fabric(config.fabric, work_dir)
        cluster = Cluster(work_dir / "testnet", fabric, validators=config.validators, observers=config.observers,
                          node_limits=config.node_limits, measured_node=config.measured_node,
                          byzantine=config.byzantine, spares=config.spares)
        stop_load = asyncio.Event()
        stop_watch = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        try:
            layout = cluster.create()
            await fabric.setup()
            cluster.configure()
            log.info("testnet %s in %s, fabric %s", layout.chain_id, work_dir, fabric.kind)
            await cluster.start_all()
            tracker = Tracker()
            watcher = CommitWatcher(cluster, tracker)
            sampler = Sampler(cluster, watcher, tracker, work_dir / "samples.jsonl", config.sample_interval_s)
            ring = NodeRing(cluster.nodes, {n: cluster.url(n) for n in cluster.nodes})
            ballots = ballot_options(cluster.genesis_document)
            gateway_key = read_key_file(layout.gateway.key_file)
            direct = DirectLoad(tracker, ring, layout.chain_id, gateway_key, ballots, rate=config.direct_rate)
            resubmitter = Resubmitter(tracker, ring, resubmit_after_s=config.resubmit_after_s, direct=direct)
            tasks.append(asyncio.create_task(watcher.run(stop_watch), name="watcher"))
            tasks.append(asyncio.create_task(sampler.run(stop_watch), name="sampler"))
            tasks.append(asyncio.create_task(resubmitter.run(stop_watch), name="resubmitter"))
            load_tasks = []
            if config.direct_rate > 0:
                load_tasks.append(asyncio.create_task(direct.run(stop_load), name="direct-load"))
            gateway_load: GatewayLoad | None = None
            if config.gateway_rate > 0:
                gateway_load = GatewayLoad(tracker, cluster.gateway_url, Outbox(cluster.outbox_file), ballots,
                                           rate=config.gateway_rate, concurrency=config.gateway_concurrency)
                load_tasks.append(asyncio.create_task(gateway_load.run(stop_load), name="gateway-load"))
            perturber = Perturber(cluster, fabric, watcher, hold_s=config.hold_s, down_s=config.down_s,
                                  recovery_timeout_s=config.recovery_timeout_s)
            context = Context(config, cluster, fabric, tracker, watcher, perturber, ring, layout.chain_id,
                              layout.gateway.key_file, stop_load, sampler, direct=direct)
            exits = asyncio.create_task(self._watch_exits(cluster, stop_watch), name="exits")
            tasks.append(exits)
            await asyncio.sleep(config.warmup_s)
            for phase in self.phases if self.phases is not None else [run_plan]:
                await phase(context)
            stop_load.set()
            await asyncio.wait(load_tasks, timeout=40)
            await self._drain(context)
            stop_watch.set()
            await asyncio.wait(tasks, timeout=30)
            checker = InvariantChecker(cluster, tracker, watcher, byzantine=config.byzantine,
                                       tx_check_limit=config.tx_check_limit, verify_workers=config.verify_workers)
            checks = await checker.run()
            notes = dict(context.notes)
            notes["blocks"] = watcher.height
            notes["resubmitted votes"] = tracker.resubmitted
            if resubmitter.resigned:
                notes["registrations signed again (revoked key)"] = resubmitter.resigned
            if gateway_load is not None:
                notes["gateway flows"] = (f"{gateway_load.flows} completed, failed {tracker.gateway_flows_failed or 0}, "
                                          f"skipped (workers busy) {gateway_load.skipped}")
            notes["peak RSS MiB"] = {n: round(v / 1024, 1) for n, v in sampler.peak_rss_kib.items()}
            notes["max mempool"] = dict(watcher.max_mempool)
            summary = RunSummary(
                title=config.title, seconds=time.time() - started, fabric=fabric.describe(),
                faults=perturber.records, votes=vote_accounting(tracker), duplicated=duplicated_count(checks),
                latency=latency_by_class(tracker, perturber.records, (DIRECT, GATEWAY)), checks=checks,
                extra={"gates": context.gates, "notes": notes, "work_dir": str(work_dir), **context.extra,
                       "samples": str(work_dir / "samples.jsonl")})
            self.summary = summary
            print(render(summary), flush=True)
            if config.json_out is not None:
                write_json(summary, str(config.json_out))
            write_json(summary, str(work_dir / "summary.json"))
            dump_votes(tracker, work_dir / "votes.jsonl")
            return summary
        finally:
            stop_load.set()
            stop_watch.set()
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks, return_exceptions=True)
            await cluster.shutdown()
            await fabric.teardown()
            ok = self.summary is not None and self.summary.ok
            if temporary and ok and not config.keep:
                shutil.rmtree(work_dir, ignore_errors=True)
            elif not ok or config.keep:
                log.warning("run folder kept for inspection: %s", work_dir)

    async def _watch_exits(self, cluster: Cluster, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for record in cluster.check_exits():
                log.error("process %s exited on its own with code %s (see %s)", record["name"], record["code"],
                          record["log"])
            await asyncio.sleep(0.5)

    async def _drain(self, context: Context) -> None:
        """Give acknowledged votes time to commit, then wait for every node to reach one height."""
        tracker, watcher = context.tracker, context.watcher

        def drained() -> bool:
            return all(r.committed is not None for r in tracker.votes() if r.acked is not None)

        started = time.monotonic()
        await watcher.wait_for(drained, context.config.drain_s, step=0.25)
        context.notes["drain seconds"] = round(time.monotonic() - started, 1)
        names = [n for n in context.cluster.nodes if n not in context.config.byzantine]

        def level() -> bool:
            heights = [watcher.fresh_height(n, within=1.0) for n in names]
            return None not in heights and len(set(heights)) == 1 and (heights[0] or 0) >= watcher.height

        await watcher.wait_for(level, 30, step=0.2)


def dump_votes(tracker: Tracker, path: Path) -> None:
    """One line per vote: source, offered/acked/committed times, height, index, sends."""
    with path.open("w", encoding="utf-8") as out:
        for record in tracker.votes():
            out.write(json.dumps({"tx": record.tx_hash.hex(), "source": record.source, "offered": record.offered,
                                  "acked": record.acked, "committed": record.committed, "height": record.height,
                                  "index": record.index, "submits": record.submits,
                                  "rejections": record.rejections or None}) + "\n")


async def run_plan(context: Context) -> None:
    config = context.config
    cluster = context.cluster
    plan = (list(SHORT_PLAN) if config.plan == "short"
            else full_plan(cluster.validators, cluster.observers) if config.plan == "full"
            else list(config.plan))
    plan = [(kind, target) for kind, target in plan if target in cluster.procs]
    started = time.monotonic()
    cycle = 0
    while plan:
        for kind, target in plan:
            if cycle and time.monotonic() - started > config.repeat_for_s:
                return
            record: FaultRecord = await context.perturber.apply(kind, target)
            if not record.ok:
                log.error("fault %s on %s failed: %s", kind, target, record.problems)
            await asyncio.sleep(config.settle_s)
        cycle += 1
        if time.monotonic() - started > config.repeat_for_s:
            return
