"""Perturbations, each applied to one node (or one split) while the load keeps running.

Every perturbation returns a ``FaultRecord``: when the fault began and ended (the process came
back, the link healed), how far the rest of the network got meanwhile, and when the network had
*recovered* — every node answering again and within one block of the highest node, with at least
one block committed after the fault ended. A recovery that does not happen within
``recovery_timeout_s`` is a failure (``catch-up that stalls``, ``rounds that never end``).

Kinds:
  kill9      SIGKILL, down for ``down_s``, start again
  sigstop    SIGSTOP for ``hold_s`` (default 10 s), then SIGCONT
  restart    SIGTERM (must exit within 20 s), start again
  partition  the target alone on one side, every other node on the majority side; ``hold_s``
  split      the target and the next validator vs the rest (no side has a quorum with n = 4)
  wipe       SIGKILL, delete ``data/`` (``signing-state.bin`` stays), start: block sync from peers
  delete-signing-state, corrupt-table, fill-disk   the machine's own faults (``machine.py``)
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from veche_chaos.cluster import Cluster
from veche_chaos.fabric import Fabric
from veche_chaos.machine import MACHINE_KINDS, corrupt_table, delete_signing_state, fill_disk
from veche_chaos.observe import CommitWatcher

log = logging.getLogger("veche.chaos.perturb")

KINDS = ("kill9", "sigstop", "restart", "partition", "split", "wipe", *MACHINE_KINDS)


@dataclass(slots=True)
class FaultRecord:
    kind: str
    target: str
    started: float
    ended: float = 0.0
    recovered: float | None = None
    height_before: int = 0
    height_at_end: int = 0
    majority_progress: int | None = None      # blocks the nodes outside the fault committed meanwhile
    minority_progress: int | None = None      # blocks the cut-off side committed meanwhile (partitions)
    sides: list[list[str]] = field(default_factory=list)
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.ended - self.started

    @property
    def recovery_s(self) -> float | None:
        return None if self.recovered is None else self.recovered - self.ended

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["duration_s"] = round(self.duration_s, 3)
        data["recovery_s"] = None if self.recovery_s is None else round(self.recovery_s, 3)
        return data

    def fail(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)
        log.error("fault %s on %s: %s", self.kind, self.target, problem)


class Perturber:
    def __init__(self, cluster: Cluster, fabric: Fabric, watcher: CommitWatcher, *, hold_s: float = 10.0,
                 down_s: float = 3.0, recovery_timeout_s: float = 90.0) -> None:
        self.cluster = cluster
        self.fabric = fabric
        self.watcher = watcher
        self.hold_s = hold_s
        self.down_s = down_s
        self.recovery_timeout_s = recovery_timeout_s
        self.records: list[FaultRecord] = []

    # --- helpers ------------------------------------------------------------------------------------

    def _heights(self, names: list[str]) -> dict[str, int]:
        return {n: h for n in names if (h := self.watcher.fresh_height(n, within=3.0)) is not None}

    def _progress(self, before: dict[str, int], after: dict[str, int]) -> int | None:
        gains = [after[n] - before[n] for n in before if n in after]
        return max(gains) if gains else None

    async def _await_recovery(self, record: FaultRecord) -> None:
        nodes = self.cluster.nodes
        end_height = record.height_at_end

        def recovered() -> bool:
            return self.watcher.all_caught_up(nodes, within=1.5) and self.watcher.max_height() > end_height

        if await self.watcher.wait_for(recovered, self.recovery_timeout_s, step=0.05):
            record.recovered = time.time()
        else:
            heights = {n: self.watcher.node_height(n) for n in nodes}
            record.fail(f"not recovered {self.recovery_timeout_s:.0f} s after the fault ended: heights {heights}")

    async def _hold(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    # --- the perturbations --------------------------------------------------------------------------

    async def apply(self, kind: str, target: str) -> FaultRecord:
        record = FaultRecord(kind, target, time.time())
        others = [n for n in self.cluster.nodes if n != target]
        before = self._heights(self.cluster.nodes)
        record.height_before = max(before.values(), default=0)
        log.info("fault %s on %s begins (height %d)", kind, target, record.height_before)
        try:
            if kind == "kill9":
                await self.cluster.kill(target)
                await self._hold(self.down_s)
                record.ended = time.time()
                await self.cluster.start(target)
            elif kind == "sigstop":
                self.cluster.pause(target)
                await self._hold(self.hold_s)
                self.cluster.resume(target)
                record.ended = time.time()
            elif kind == "restart":
                record.detail["stop_seconds"] = round(await self.cluster.stop(target), 3)
                record.ended = time.time()
                await self.cluster.start(target)
            elif kind == "wipe":
                await self.cluster.kill(target)
                wiped = self.cluster.wipe_data(target)
                record.detail["wiped"] = str(wiped)
                record.detail["signing_state_kept"] = (self.cluster.home(target) / "signing-state.bin").exists()
                record.ended = time.time()
                await self.cluster.start(target)
            elif kind == "delete-signing-state":
                record.detail.update(await delete_signing_state(self.cluster, target, self.down_s))
                record.ended = time.time()
            elif kind == "corrupt-table":
                record.detail.update(await corrupt_table(self.cluster, target))
                record.ended = time.time()
            elif kind == "fill-disk":
                record.detail.update(await fill_disk(self.cluster, self.watcher, target, self.hold_s))
                record.ended = time.time()
            elif kind in ("partition", "split"):
                minority = [target]
                if kind == "split":
                    validators = self.cluster.validators
                    minority.append(validators[(validators.index(target) + 1) % len(validators)]
                                    if target in validators else validators[0])
                majority = [n for n in self.cluster.nodes if n not in minority]
                record.sides = [sorted(minority), sorted(majority)]
                await self.fabric.partition([set(minority), set(majority)])
                await self.watcher.refresh()  # heights once the cut is in place, not a poll from before it
                split_before = self._heights(self.cluster.nodes)
                await self._hold(self.hold_s)
                await self.watcher.refresh()
                split_after = self._heights(self.cluster.nodes)
                record.minority_progress = self._progress({n: split_before[n] for n in minority if n in split_before},
                                                          split_after)
                record.majority_progress = self._progress({n: split_before[n] for n in majority if n in split_before},
                                                          split_after)
                await self.fabric.heal()
                record.ended = time.time()
                self._check_sides(record, minority, majority)
            else:
                raise ValueError(f"unknown perturbation {kind!r} (one of {', '.join(KINDS)})")
        except Exception as exc:  # noqa: BLE001 - a failed instrument is a failed fault, not a crash
            record.fail(f"{exc.__class__.__name__}: {exc}")
            if not record.ended:
                record.ended = time.time()
            if self.fabric.partitioned is not None:
                await self.fabric.heal()
        after = self._heights(self.cluster.nodes)
        record.height_at_end = max(after.values(), default=0)
        if record.majority_progress is None:
            record.majority_progress = self._progress({n: before[n] for n in others if n in before}, after)
        await self._await_recovery(record)
        self.records.append(record)
        log.info("fault %s on %s: %.1f s, recovered in %s s", kind, target, record.duration_s,
                 "—" if record.recovery_s is None else f"{record.recovery_s:.1f}")
        return record

    def _check_sides(self, record: FaultRecord, minority: list[str], majority: list[str]) -> None:
        validators = set(self.cluster.validators)
        n = len(validators)
        quorum = (2 * n) // 3 + 1
        majority_validators = len(validators & set(majority))
        minority_validators = len(validators & set(minority))
        if minority_validators < quorum and (record.minority_progress or 0) > 1:
            record.fail(f"the side {minority} without a quorum committed {record.minority_progress} blocks")
        if majority_validators < quorum and (record.majority_progress or 0) > 1:
            record.fail(f"the side {majority} without a quorum committed {record.majority_progress} blocks")
        if majority_validators >= quorum and self.hold_s >= 5 and not record.majority_progress:
            record.fail(f"the side {majority} holds a quorum but committed nothing in {self.hold_s:.0f} s")
