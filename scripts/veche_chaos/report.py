"""The run's summary: perturbations, vote accounting, commit latency around faults, invariants.

Latency classes, by the moment a vote was first offered: *during* a fault (between its start and
its end: process back, link healed), *after* a fault (from its end until the network had recovered
plus ``AFTER_MARGIN_S``), and *calm* (everything else, the baseline).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from veche_chaos.invariants import Check
from veche_chaos.perturb import FaultRecord
from veche_chaos.tracking import DIRECT, FLOOD, GATEWAY, Tracker, TxRecord, latency_summary

AFTER_MARGIN_S = 5.0


@dataclass(slots=True)
class RunSummary:
    title: str
    seconds: float
    fabric: dict[str, Any]
    faults: list[FaultRecord]
    votes: dict[str, dict[str, int]]
    duplicated: int
    latency: dict[str, dict[str, float | int | None]]
    checks: list[Check]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return self.votes["total"]["lost"]

    @property
    def ok(self) -> bool:
        return (all(c.ok for c in self.checks) and all(f.ok for f in self.faults) and self.lost == 0
                and self.duplicated == 0 and all(extra_ok for extra_ok in self.extra.get("gates", {}).values()))

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "ok": self.ok, "seconds": round(self.seconds, 1), "fabric": self.fabric,
                "faults": [f.to_json() for f in self.faults], "votes": self.votes, "lost": self.lost,
                "duplicated": self.duplicated, "latency": self.latency,
                "invariants": [c.to_json() for c in self.checks], **self.extra}


def classify(record: TxRecord, faults: Sequence[FaultRecord]) -> str:
    moment = record.offered
    for fault in faults:
        if fault.started <= moment <= fault.ended:
            return "during_faults"
    for fault in faults:
        until = (fault.recovered if fault.recovered is not None else fault.ended + 60) + AFTER_MARGIN_S
        if fault.ended < moment <= until:
            return "after_faults"
    return "calm"


def latency_by_class(tracker: Tracker, faults: Sequence[FaultRecord], sources: Sequence[str]) -> dict[str, Any]:
    groups: dict[str, list[TxRecord]] = {"calm": [], "during_faults": [], "after_faults": []}
    everything: list[TxRecord] = []
    for record in tracker.votes():
        if record.source not in sources or record.committed is None:
            continue
        groups[classify(record, faults)].append(record)
        everything.append(record)
    result = {name: latency_summary(records) for name, records in groups.items()}
    result["all"] = latency_summary(everything)
    return result


def vote_accounting(tracker: Tracker) -> dict[str, dict[str, int]]:
    table = {source: tracker.counts(source) for source in (DIRECT, GATEWAY, FLOOD)}
    table["total"] = tracker.counts()
    return table


def duplicated_count(checks: Sequence[Check]) -> int:
    for check in checks:
        if check.name == "no_duplicates":
            detail = check.detail
            return (len(detail.get("repeated", [])) + len(detail.get("double_ballots", []))
                    + len(detail.get("watcher_duplicates", [])))
    return 0


def _fmt(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def render(summary: RunSummary) -> str:
    lines = [f"=== {summary.title} ({summary.seconds:.0f} s, fabric {summary.fabric.get('kind')}) ==="]
    if summary.faults:
        lines.append("")
        lines.append("Perturbations")
        lines.append(f"  {'#':>2}  {'kind':<10} {'target':<12} {'fault s':>8} {'others +blk':>11} "
                     f"{'cut-off +blk':>12} {'recovery s':>10}  result")
        for number, fault in enumerate(summary.faults, 1):
            lines.append(f"  {number:>2}  {fault.kind:<10} {fault.target:<12} {fault.duration_s:>8.1f} "
                         f"{_fmt(fault.majority_progress):>11} {_fmt(fault.minority_progress):>12} "
                         f"{_fmt(fault.recovery_s, 1):>10}  {'ok' if fault.ok else 'FAILED: ' + '; '.join(fault.problems)}")
    lines.append("")
    lines.append("Votes                   direct   gateway     flood     total")
    for key, label in (("offered", "offered"), ("acknowledged", "acknowledged"), ("committed", "committed"),
                       ("lost", "lost (must be 0)"), ("committed_without_ack", "committed, no ack")):
        counts = [summary.votes[s][key] for s in (DIRECT, GATEWAY, FLOOD, "total")]
        lines.append(f"  {label:<20}" + "".join(f"{v:>10}" for v in counts))
    lines.append(f"  {'duplicated (must be 0)':<20}{summary.duplicated:>40}")
    lines.append("")
    lines.append("Commit latency, s (first offer → first seen in a block)    n      p50      p99      max")
    for name in ("calm", "during_faults", "after_faults", "all"):
        row = summary.latency.get(name, {})
        lines.append(f"  {name:<55}{_fmt(row.get('count')):>6} {_fmt(row.get('p50')):>8} {_fmt(row.get('p99')):>8} "
                     f"{_fmt(row.get('max')):>8}")
    for key, value in summary.extra.get("notes", {}).items():
        lines.append(f"  {key}: {value}")
    gates = summary.extra.get("gates", {})
    if gates:
        lines.append("")
        lines.append("Gates")
        for name, passed in gates.items():
            lines.append(f"  {'OK    ' if passed else 'FAILED'} {name}")
    lines.append("")
    lines.append("Invariants")
    for check in summary.checks:
        lines.append(f"  {'OK    ' if check.ok else 'FAILED'} {check.name:<16} {check.summary}")
    lines.append("")
    lines.append(f"RESULT: {'PASS' if summary.ok else 'FAIL'}")
    return "\n".join(lines)


def write_json(summary: RunSummary, path: str) -> None:
    with open(path, "w", encoding="utf-8") as out:
        json.dump(summary.to_json(), out, indent=1, default=str)
        out.write("\n")
