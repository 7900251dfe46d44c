"""The soak summary reports memory growth and latency over time from the sampler's rows."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from veche_chaos.soak import slope_per_hour, summarize, write_csv


def _row(t: float, rss_mib: dict[str, float], p99: float | None, committed: int = 100,
         anon_mib: dict[str, float] | None = None) -> dict[str, Any]:
    row = {"t": t, "height": int(t), "heights": {}, "mempool": {},
           "rss_kib": {name: int(value * 1024) for name, value in rss_mib.items()}, "committed_votes": committed,
           "latency": {"count": committed, "p50": None if p99 is None else p99 / 2, "p99": p99, "max": p99}}
    if anon_mib is not None:
        row["anon_kib"] = {name: int(value * 1024) for name, value in anon_mib.items()}
    return row


def test_slope_is_per_hour_and_needs_enough_points() -> None:
    assert slope_per_hour([(0, 1.0), (1, 2.0)]) is None
    rising = [(float(t), 50 + t / 60) for t in range(0, 600, 60)]   # +1 MiB per minute
    slope = slope_per_hour(rising)
    assert slope is not None and abs(slope - 60) < 1e-6
    assert slope_per_hour([(0.0, 5.0)] * 6) is None


def test_summary_separates_a_leak_from_a_flat_process(tmp_path: Path) -> None:
    rows = [_row(1000 + 10 * i, {"validator-0": 60.0, "leaky": 60.0 + i}, 0.3 if i < 30 else 1.2)
            for i in range(40)]
    summary = summarize(rows)
    memory = summary["memory"]
    assert memory["validator-0"]["growth_mib_per_hour"] == 0.0
    assert memory["leaky"]["growth_mib_per_hour"] == 360.0          # 1 MiB per 10 s
    assert memory["leaky"]["peak_mib"] == 99.0 and memory["leaky"]["start_mib"] == 60.0
    assert summary["latency"]["interval_p99_median_first_quarter"] == 0.3
    assert summary["latency"]["interval_p99_median_last_quarter"] == 1.2
    assert summary["latency"]["interval_p99_worst"] == 1.2
    assert summary["committed_votes_per_s"] == round(4000 / 390, 1)
    path = tmp_path / "samples.csv"
    write_csv(rows, path)
    table = list(csv.reader(path.open(encoding="utf-8")))
    assert table[0][-2:] == ["rss_mib_leaky", "rss_mib_validator-0"] and len(table) == 41
    assert summarize([]) == {"samples": 0}


def test_heap_growth_is_told_apart_from_mapped_files(tmp_path: Path) -> None:
    # RSS climbs 1 MiB per 10 s in both, but only "leaky"'s heap (RssAnon) does; the other's climb is
    # mapped files (LevelDB tables), which the kernel can take back.
    rows = [_row(1000 + 10 * i, {"mapped": 60.0 + i, "leaky": 60.0 + i}, 0.3,
                 anon_mib={"mapped": 40.0, "leaky": 40.0 + i}) for i in range(40)]
    memory = summarize(rows)["memory"]
    assert memory["mapped"]["growth_mib_per_hour"] == 360.0 and memory["mapped"]["anon_growth_mib_per_hour"] == 0.0
    assert memory["leaky"]["anon_growth_mib_per_hour"] == 360.0
    assert memory["leaky"]["anon_start_mib"] == 40.0 and memory["leaky"]["anon_end_mib"] == 79.0
    path = tmp_path / "samples.csv"
    write_csv(rows, path)
    table = list(csv.reader(path.open(encoding="utf-8")))
    assert table[0][-2:] == ["anon_mib_leaky", "anon_mib_mapped"] and table[-1][-2:] == ["79.0", "40.0"]
    assert "anon_start_mib" not in summarize([_row(1000 + 10 * i, {"old": 60.0}, 0.3) for i in range(10)])["memory"]["old"]
