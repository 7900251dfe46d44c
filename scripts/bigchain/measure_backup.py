"""What ``veche node backup`` and ``veche node restore`` cost on the big chain.

1. **Backup, online.** validator-0 runs alone (``python -m node``, fresh ports) on a hard-linked copy of
   the chain, the equal-shares results of its closed campaigns computed on the copy beforehand (what a
   validator that has run for years holds). Once it is quiet, ``veche node backup --home HOME --out
   FILE`` runs as the operator runs it (a subprocess of the installed CLI): it asks the node for a
   consistent LevelDB snapshot over ``GET /admin/v1/backup`` (the home's admin token), streams it to a
   file, then reads the whole file back and checks it (SHA-256, record count, header) before renaming
   it into place. Measured: wall seconds, the file's bytes and bytes per ballot, the CLI's CPU and
   peak RSS (``wait4``), and the node's CPU and RssAnon / VmHWM while it served the backup.
2. **Restore.** A fresh home (the same testnet layout, no ``data/``, the node stopped): ``veche node
   restore FILE --home HOME`` (checks the whole file, writes a staging LevelDB, renames it into place,
   opens the ledger at the backup's height and app hash) — wall seconds, CPU, peak RSS, bytes on disk
   after — then ``python -m node`` on the restored home: seconds from its process start until
   ``/api/v1/status`` answers at the backup's height, and its memory.
3. **One program-year.** The CLI backs up the whole store (it has no "up to height" option), so a
   yearly backup costs the whole chain each year; the growth one more year adds is *computed* from
   this run's bytes and seconds per ballot × ``year_ballots`` (labelled as an estimate, not measured).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.node.netkit import get_json, wait_for

from bigchain.measure_catchup import wait_quiet
from bigchain.measure_network import MemorySampler, precompute_equal_shares
from bigchain.snapshot import BigNet, copy_layout, dir_bytes, proc_status

NAME = "validator-0"
BACKUP_LINE = re.compile(r"height (\d+), app hash ([0-9a-f]+), (\d+) records")


def run_cli(args: list[str], log: Path, timeout: float = 7200.0) -> dict[str, Any]:
    """``veche ARGS`` as a subprocess: exit code, wall seconds, CPU seconds and peak RSS (wait4), output."""
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "node.cli", *args], stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError(f"veche {' '.join(args)} ran longer than {timeout:.0f} s")
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    output = log.read_text(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"veche {' '.join(args)} exited with {process.returncode}:\n{output}")
    return {"seconds": round(seconds, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "output": output.strip().splitlines()}


def measure(chain_dir: Path, run_dir: Path, *, year_ballots: int = 1_000_000) -> dict[str, Any]:
    source = run_dir / "source"
    copy_layout(chain_dir, source, data_for=(NAME,), new_ports=True)
    result: dict[str, Any] = {"chain": str(chain_dir)}
    started = time.perf_counter()
    result["equal_shares_s"] = precompute_equal_shares(source / NAME / "data", source / "genesis.json")
    result["equal_shares_precompute_s"] = round(time.perf_counter() - started, 1)
    backup_file = run_dir / "chain.backup"

    # --- backup of a running validator -----------------------------------------------------------
    net = BigNet(source)
    try:
        net.start(NAME)
        net.wait_up(NAME, timeout=900)
        result["node_settle_s"] = wait_quiet(net, [NAME])
        url = net.urls[NAME]
        height = net.height(NAME)
        campaigns = get_json(f"{url}/api/v1/campaigns", 60.0)["campaigns"]
        ballots = sum(c["total_ballots"] for c in campaigns)
        home = net.homes[NAME]
        wait_for(lambda: (home / "admin-token").exists(), 60, "the node's admin token")
        data_bytes = dir_bytes(home / "data")
        result.update({"height": height, "ballots": ballots, "node_data_bytes": data_bytes})
        print(f"validator-0 up at height {height:,} ({ballots:,} ballots, {data_bytes / 1e9:.2f} GB); backing up",
              flush=True)
        cpu_before = net.cpu_seconds(NAME)
        hwm_before = proc_status(net.pid(NAME))["VmHWM"]
        with MemorySampler(net, [NAME]) as memory:
            cli = run_cli(["node", "backup", "--home", str(home), "--out", str(backup_file)], run_dir / "backup.log")
        node_cpu = net.cpu_seconds(NAME) - cpu_before
        after = proc_status(net.pid(NAME))
        line = next((text for text in cli["output"] if text.startswith("backup of ")), "")
        parsed = BACKUP_LINE.search(line)
        if parsed is None or "taken while the node ran" not in line:
            raise RuntimeError(f"not an online backup, or an unexpected answer: {cli['output']}")
        backup_height, records = int(parsed.group(1)), int(parsed.group(3))
        size = backup_file.stat().st_size
        result["backup"] = {
            "online": True, "height": backup_height, "records": records, "seconds": cli["seconds"],
            "file_bytes": size, "bytes_per_ballot": round(size / ballots, 1) if ballots else None,
            "file_over_node_data": round(size / data_bytes, 3) if data_bytes else None,
            "mb_per_s": round(size / 1e6 / cli["seconds"], 1) if cli["seconds"] else None,
            "cli_cpu_s": cli["cpu_s"], "cli_peak_rss_mb": cli["peak_rss_mb"],
            "node_cpu_s": round(node_cpu, 2),
            "node_rss_anon_peak_mb": memory.peaks_mb()[NAME]["RssAnon"],
            "node_vm_hwm_mb_before": round(hwm_before / 1024, 1), "node_vm_hwm_mb_after": round(after["VmHWM"] / 1024, 1),
            "cli_says": line,
        }
    finally:
        net.close()

    # --- restore into a fresh home, then start it ------------------------------------------------
    fresh = run_dir / "restored"
    copy_layout(chain_dir, fresh, data_for=(), new_ports=True)
    restored_home = fresh / NAME
    cli = run_cli(["node", "restore", str(backup_file), "--home", str(restored_home)], run_dir / "restore.log")
    restored_bytes = dir_bytes(restored_home / "data")
    net = BigNet(fresh)
    try:
        started = time.perf_counter()
        net.start(NAME)
        net.wait_up(NAME, timeout=900)
        up = time.perf_counter() - started
        wait_for(lambda: net.height(NAME) >= backup_height, 900, f"the restored node at height {backup_height}",
                 interval=0.1)
        at_height = time.perf_counter() - started
        status = net.status(NAME)
        memory_up = proc_status(net.pid(NAME))
        result["restore"] = {
            "seconds": cli["seconds"], "cli_cpu_s": cli["cpu_s"], "cli_peak_rss_mb": cli["peak_rss_mb"],
            "data_bytes": restored_bytes, "data_bytes_per_ballot": round(restored_bytes / ballots, 1) if ballots else None,
            "node_start_to_status_s": round(up, 2), "node_start_to_full_height_s": round(at_height, 2),
            "node_height": status["height"], "node_memory_mb": {k: round(v / 1024, 1) for k, v in memory_up.items()},
            "cli_says": [text for text in cli["output"] if text.startswith("restored ")],
        }
    finally:
        net.close()

    per_ballot_s = result["backup"]["seconds"] / ballots if ballots else 0.0
    bytes_per_ballot = result["backup"]["file_bytes"] / ballots if ballots else 0.0
    result["one_program_year_estimate"] = {
        "what": f"computed, not measured: this run's backup bytes and seconds per ballot × {year_ballots:,} ballots "
                "(the CLI backs up the whole store; each yearly backup costs the whole chain)",
        "year_ballots": year_ballots,
        "backup_bytes_growth": round(bytes_per_ballot * year_ballots),
        "backup_seconds_growth": round(per_ballot_s * year_ballots, 1),
    }
    return result
