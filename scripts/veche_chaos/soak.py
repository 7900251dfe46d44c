"""Soak: steady load for hours, memory and latency over time.

The sampler (``observe.Sampler``) writes one JSON line per ``sample_interval_s`` to
``samples.jsonl``: heights, mempools, ``VmRSS`` and ``RssAnon`` (the heap alone, without mapped
files such as LevelDB tables) of every process from ``/proc``, and the commit
latency of the honest votes that committed in the interval. ``soak`` runs the load for
``RunConfig.soak_s`` (a perturbation of the full plan every ``fault_every_s`` if set), then writes
``samples.csv`` (one row per sample, one RSS and one heap column per process) and a summary: RSS at
start, end and peak with the growth rate (least squares over the samples after the first tenth, MiB
per hour), the same for the heap (``anon_*``),
and latency per interval (median and worst of the per-interval p99, first quarter vs last quarter).
"""

from __future__ import annotations

import asyncio
import csv
import logging
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from veche_chaos.runner import Context, full_plan

log = logging.getLogger("veche.chaos.soak")

MIN_SAMPLES_FOR_SLOPE = 5


def slope_per_hour(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, in value units per hour."""
    if len(points) < MIN_SAMPLES_FOR_SLOPE:
        return None
    mean_t = statistics.fmean(t for t, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread * 3600


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _series(rows: Sequence[dict[str, Any]], key: str, name: str, start: float) -> list[tuple[float, float]]:
    """(seconds since ``start``, MiB) of one process from the rows' ``key`` map (``rss_kib``/``anon_kib``)."""
    return [(row["t"] - start, row[key][name] / 1024) for row in rows if name in row.get(key, {})]


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {"samples": 0}
    start = rows[0]["t"]
    steady = rows[len(rows) // 10:]
    names = sorted({name for row in rows for name in row["rss_kib"]})
    memory: dict[str, dict[str, float | None]] = {}
    for name in names:
        series = _series(rows, "rss_kib", name, start)
        slope = slope_per_hour(_series(steady, "rss_kib", name, start))
        memory[name] = {"start_mib": round(series[0][1], 1), "end_mib": round(series[-1][1], 1),
                        "peak_mib": round(max(v for _, v in series), 1),
                        "growth_mib_per_hour": None if slope is None else round(slope, 1)}
        anon = _series(rows, "anon_kib", name, start)
        if anon:  # the heap alone: mapped LevelDB tables grow with the database and are reclaimable
            anon_slope = slope_per_hour(_series(steady, "anon_kib", name, start))
            memory[name].update({"anon_start_mib": round(anon[0][1], 1), "anon_end_mib": round(anon[-1][1], 1),
                                 "anon_growth_mib_per_hour": None if anon_slope is None else round(anon_slope, 1)})
    p99s = [row["latency"]["p99"] for row in rows if row["latency"]["p99"] is not None]
    quarter = max(1, len(p99s) // 4)
    seconds = rows[-1]["t"] - start
    committed = sum(row["committed_votes"] for row in rows)
    return {
        "samples": len(rows), "seconds": round(seconds, 1), "memory": memory,
        "latency": {"interval_p99_median": _median(p99s), "interval_p99_worst": max(p99s) if p99s else None,
                    "interval_p99_median_first_quarter": _median(p99s[:quarter]),
                    "interval_p99_median_last_quarter": _median(p99s[-quarter:])},
        "committed_votes_per_s": round(committed / seconds, 1) if seconds > 0 else None,
        "height": rows[-1]["height"],
    }


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    names = sorted({name for row in rows for name in row["rss_kib"]})
    anon_names = sorted({name for row in rows for name in row.get("anon_kib", {})})
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["t", "height", "committed_votes", "p50_s", "p99_s", "max_s"]
                        + [f"rss_mib_{n}" for n in names] + [f"anon_mib_{n}" for n in anon_names])
        for row in rows:
            latency = row["latency"]
            anon = row.get("anon_kib", {})
            writer.writerow([round(row["t"], 3), row["height"], row["committed_votes"], latency["p50"], latency["p99"],
                             latency["max"]]
                            + [round(row["rss_kib"][n] / 1024, 1) if n in row["rss_kib"] else "" for n in names]
                            + [round(anon[n] / 1024, 1) if n in anon else "" for n in anon_names])


async def soak(context: Context) -> None:
    """Steady load for ``soak_s``; one perturbation of the full plan every ``fault_every_s`` (0 = none)."""
    config = context.config
    deadline = time.monotonic() + config.soak_s
    plan = full_plan(context.cluster.validators, context.cluster.observers)
    position = 0
    last_fault = time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
        due = config.fault_every_s > 0 and time.monotonic() - last_fault >= config.fault_every_s
        if due and time.monotonic() + 60 < deadline:
            kind, target = plan[position % len(plan)]
            position += 1
            await context.perturber.apply(kind, target)
            last_fault = time.monotonic()
    rows = list(context.sampler.rows)
    csv_path = context.sampler.path.with_suffix(".csv")
    write_csv(rows, csv_path)
    summary = summarize(rows)
    context.extra["soak"] = {**summary, "csv": str(csv_path), "jsonl": str(context.sampler.path)}
    growth = {n: m["growth_mib_per_hour"] for n, m in summary.get("memory", {}).items()}
    context.notes["soak memory (MiB start → end, peak; growth MiB/h)"] = {
        n: f"{m['start_mib']} → {m['end_mib']}, peak {m['peak_mib']}; {growth[n]}"
        for n, m in summary.get("memory", {}).items()}
    context.notes["soak heap, RssAnon (MiB start → end; growth MiB/h)"] = {
        n: f"{m['anon_start_mib']} → {m['anon_end_mib']}; {m['anon_growth_mib_per_hour']}"
        for n, m in summary.get("memory", {}).items() if "anon_start_mib" in m}
    context.notes["soak latency (per-interval p99)"] = summary.get("latency")
    log.info("soak summary: %s", summary)
