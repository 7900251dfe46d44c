"""The first equal-shares computation of the big chain's closed campaigns: seconds and memory.

Two ways, each on a hard-linked copy of validator-0's chain (``snapshot_data``):

``node`` — a real ``python -m node`` for validator-0 alone (no quorum: it opens its chain and serves
its API; its results service computes every closed equal-shares campaign it holds no result for, as
a validator does at its first start after such a campaign closes). Every 0.2 s the node's and its
child processes' (the equal-shares worker) RssAnon and VmHWM are read from /proc; it ends when
every closed equal-shares campaign's tally says ``result_status: "final"``. Seconds per campaign
come from the node's own log line (read from the store → worker → result published).

``inprocess`` — this process opens the copy as a node does (``Ledger``) and runs, per campaign,
the node's results service (``node.results.Results``: the store read in a thread, the rule in a
spawned worker) and then ``veche verify``'s in-process path (``compute_equal_shares_result``);
``--only node`` / ``--only verify`` runs one of the two.
Before each, the peak (VmHWM) is reset (``/proc/self/clear_refs``), so each figure is the peak of
that computation alone, the opened chain included.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path
from typing import Any

from chain.ledger import Ledger
from chain.records import STATUS_CLOSED
from chain.results import compute_equal_shares_result
from chain.storage import LevelStore
from genesis.model import load_genesis
from node.results import Results, computed_key
from tests.node.netkit import get_json

from bigchain.snapshot import BigNet, copy_layout, proc_status, snapshot_data

PUBLISHED = re.compile(r"equal-shares result of campaign (\S+) published: (\d+) winners, hash (\w+) "
                       r"\(([\d.]+) s(?:; (\d+) ballots, (\d+) distinct)?\)")


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found.extend(children)
            pending.extend(children)
    return found


class Sampler:
    """RssAnon / VmHWM of a process and of its descendants, every ``interval`` seconds, in a thread."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.node_rss_anon = 0
        self.node_hwm = 0
        self.child_rss_anon = 0
        self.child_hwm = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def sample(self) -> None:
        try:
            own = proc_status(self.pid)
        except OSError:
            return
        self.node_rss_anon = max(self.node_rss_anon, own["RssAnon"])
        self.node_hwm = max(self.node_hwm, own["VmHWM"])
        for child in descendants(self.pid):
            try:
                status = proc_status(child)
            except (OSError, KeyError):
                continue
            self.child_rss_anon = max(self.child_rss_anon, status.get("RssAnon", 0))
            self.child_hwm = max(self.child_hwm, status.get("VmHWM", 0))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def to_json(self) -> dict[str, float]:
        return {"node_vmhwm_mb": mb(self.node_hwm), "node_rss_anon_max_mb": mb(self.node_rss_anon),
                "worker_vmhwm_mb": mb(self.child_hwm), "worker_rss_anon_max_mb": mb(self.child_rss_anon)}


def mb(kilobytes: int) -> float:
    return round(kilobytes / 1024, 1)


def measure_node(chain_dir: Path, run_dir: Path, *, timeout: float = 1800.0) -> dict[str, Any]:
    copy_layout(chain_dir, run_dir, data_for=("validator-0",), new_ports=True)
    net = BigNet(run_dir)
    name = "validator-0"
    url = net.urls[name]
    result: dict[str, Any] = {"chain": str(chain_dir), "way": "node"}
    try:
        started = time.perf_counter()
        net.start(name)
        with Sampler(net.pid(name)) as sampler:
            net.wait_up(name, timeout=900)
            result["start_to_api_s"] = round(time.perf_counter() - started, 2)
            campaigns = get_json(f"{url}/api/v1/campaigns", 60.0)["campaigns"]
            shares = {c["campaign_id"]: c["total_ballots"] for c in campaigns
                      if c["status"] == STATUS_CLOSED and c["rule"] == "equal-shares"}
            pending = set(shares)
            deadline = time.monotonic() + timeout
            while pending and time.monotonic() < deadline:
                for campaign_id in sorted(pending):
                    tally = get_json(f"{url}/api/v1/campaigns/{campaign_id}/tally", 60.0)
                    if tally["result_status"] == "final":
                        pending.discard(campaign_id)
                time.sleep(0.5)
            result["start_to_all_published_s"] = round(time.perf_counter() - started, 2)
        if pending:
            raise RuntimeError(f"no result after {timeout} s for {sorted(pending)}:\n{net.log_tail(name, 40)}")
        result["memory"] = sampler.to_json()
        result["memory_end_mb"] = {k: mb(v) for k, v in proc_status(net.pid(name)).items()}
        published = {m.group(1): {"winners": int(m.group(2)), "hash_prefix": m.group(3), "seconds": float(m.group(4)),
                                   **({"distinct_ballots": int(m.group(6))} if m.group(6) else {})}
                     for m in PUBLISHED.finditer(net.log_tail(name, 2000))}
        result["campaigns"] = {cid: {"ballots": shares[cid], **published.get(cid, {})} for cid in sorted(shares)}
    finally:
        net.close()
    return result


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def measure_inprocess(chain_dir: Path, work: Path, *, campaign: str | None = None,
                      node_path: bool = True, verify_path: bool = True) -> dict[str, Any]:
    data = work / "data"
    snapshot_data(chain_dir / "net" / "validator-0" / "data", data)
    genesis = load_genesis(chain_dir / "net" / "genesis.json")
    store = LevelStore(data)
    result: dict[str, Any] = {"chain": str(chain_dir), "way": "inprocess"}
    try:
        started = time.perf_counter()
        ledger = Ledger(store, genesis.params)
        result["open_s"] = round(time.perf_counter() - started, 2)
        result["opened_mb"] = {k: mb(v) for k, v in proc_status_self().items()}
        closed = sorted(cid for cid, c in ledger.state.campaigns.items()
                        if c.status == STATUS_CLOSED and c.spec.rule.name == "equal-shares")
        targets = [campaign] if campaign else closed
        rows: dict[str, Any] = {}
        for campaign_id in targets:
            row: dict[str, Any] = {"ballots": ledger.state.campaigns[campaign_id].total_ballots}
            store.write({computed_key(campaign_id): None}, sync=True)
            if node_path:
                results = Results(ledger)
                results.computed.pop(campaign_id, None)
                reset_peak()
                before = proc_status_self()
                with Sampler(_self_pid()) as sampler:
                    started = time.perf_counter()
                    asyncio.run(results._compute(campaign_id))
                    seconds = time.perf_counter() - started
                results.close()
                winners, digest = results.computed[campaign_id]
                row["node"] = {"seconds": round(seconds, 2), "rss_anon_before_mb": mb(before["RssAnon"]),
                               **sampler.to_json(), "winners": len(winners), "hash": digest.hex()}
            if verify_path:
                reset_peak()
                before = proc_status_self()
                with Sampler(_self_pid()) as sampler:
                    started = time.perf_counter()
                    verified = compute_equal_shares_result(ledger.state, store, ledger.state.campaigns[campaign_id])
                    seconds = time.perf_counter() - started
                row["verify"] = {"seconds": round(seconds, 2), "rss_anon_before_mb": mb(before["RssAnon"]),
                                 "vmhwm_mb": sampler.to_json()["node_vmhwm_mb"],
                                 "rss_anon_max_mb": sampler.to_json()["node_rss_anon_max_mb"],
                                 "winners": len(verified[0]), "hash": verified[1].hex()}
                if node_path:
                    row["verify"]["same_result"] = verified == results.computed[campaign_id]
            rows[campaign_id] = row
        result["campaigns"] = rows
    finally:
        store.close()
    return result


def _self_pid() -> int:
    import os

    return os.getpid()


def proc_status_self() -> dict[str, int]:
    return proc_status(_self_pid())
