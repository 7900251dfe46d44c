"""A fresh observer block-syncs the whole big chain from running validators; when can it first answer?

Validators 0 … ``validators``-1 run as ``python -m node`` on hard-linked copies of the big chain (3 of
the 4 are a quorum: with 3 they keep committing heartbeat blocks on top; the layout's ports, because
the genesis names them). The equal-shares results of the closed campaigns are computed on the
copies before they start (what validators that have run for years already hold), so the
validators spend their CPU serving blocks, not computing results. Once they are quiet, the
layout's ``observer-0`` — ``"role": "observer"``, the validators as peers, the public genesis, an
**empty data directory** — starts (``python -m node --home …``, as docs/NODE.md §11 step 7 runs an
observer) and block-syncs from genesis.

What its catch-up includes (node/sync.py, ``Ledger.apply_synced``): every block's commit certificate
checked (a quorum of valid precommit signatures of the set in force at that height, from the set
history the observer itself builds from genesis as it applies blocks; the big chain holds no set
change, so that is the genesis set), each block's ``last_commit`` checked, every transaction decoded
strictly and applied by the state machine, the app hash of every block compared with its header's,
everything written to LevelDB (one synced batch per fetched range of ≤ 500 blocks). **Ballot and
registration signatures are not re-checked** (trusted under a valid certificate, docs/NODE.md §5
"Trust choice"); ``veche verify`` re-checks them all. Also in the observer's process CPU: reading
the ballots of each closed equal-shares campaign it passes (node/results.py: a thread), serving this
script's polls (status every ``POLL_S``), its forwarder's status polls. The equal-shares rule itself
runs in a child process the node spawns: its CPU and peak RSS are reported apart
(``results_worker_*``) and added in ``cpu_us_per_vote_with_results_worker``.

Measured, from the observer's process start (``Popen``):
  * ``first_status_s``: its API answers (at height 0: it can say nothing about a campaign yet);
  * ``reached_height_s``: its status reports the validators' height at the moment it started → votes/s
    and blocks/s over the whole catch-up; the node's own "block sync: from … / reached …" lines give
    the sync alone;
  * **time to first verified answer** about the newest campaign, two answers, each at the first
    poll that gets it: ``first_receipt_proof_s`` — it serves ``GET /api/v1/txs/{hash}`` for the
    chain's last ballot (a ballot of the newest campaign), and that answer, turned into a receipt
    (``node.voter.device.receipt_from_proof``), checks as ``veche receipt verify`` checks it
    (``chain.lightclient.follow_set_changes`` over the observer's ``/api/v1/validators/changes``
    from the genesis file, then ``chain.receipt.verify_receipt``: signatures, Merkle path,
    certificate), and the observer's block at that height has the receipt's hash;
    ``first_full_tally_s`` — its tally of that campaign counts all its ballots with the validators'
    result hash. The observer has re-executed every block up to there under checked certificates,
    so its own tally is verified by replay; the product has no state proof (the app hash is a hash
    chain over each block's state changes, docs/PROTOCOL.md §4), so no answer comes before the
    replay reaches the ballot's block;
  * the syncing process's CPU (utime + stime at ``reached_height``) per vote, its peak RSS
    (VmHWM) and its RssAnon sampled every ``POLL_S``; the same for its equal-shares worker;
  * ``veche receipt verify`` (the CLI, a subprocess) against the caught-up observer, timed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from chain.errors import VecheError
from chain.lightclient import follow_set_changes, proofs_from_json
from chain.receipt import verify_receipt
from chain.tx import decode_tx
from genesis.model import Genesis, load_genesis
from node.voter.device import receipt_from_proof
from tests.node.netkit import get_json, http_get, wait_for

from bigchain.measure_network import precompute_equal_shares
from bigchain.snapshot import BigNet, copy_layout, proc_status, snapshot_data
from bigchain.synclog import log_time, sync_reached, sync_spans

OBSERVER = "observer-0"
POLL_S = 0.2
WALK_BLOCKS = 500


def wait_quiet(net: BigNet, names: list[str], cores: float = 0.25, window: float = 3.0,
               timeout: float = 600.0) -> float:
    """Seconds until ``names`` together use less than ``cores`` (a copied LevelDB is compacted when opened)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = sum(net.cpu_seconds(name) for name in names)
        time.sleep(window)
        if (sum(net.cpu_seconds(name) for name in names) - before) / window < cores:
            break
    return round(time.monotonic() - started, 1)


def last_ballot(url: str, height: int) -> dict[str, Any]:
    """The chain's last ``vote.cast`` at or below ``height`` (walking down the blocks)."""
    for h in range(height, max(0, height - WALK_BLOCKS), -1):
        block = get_json(f"{url}/api/v1/blocks/{h}", 60.0)
        for index in range(len(block["txs"]) - 1, -1, -1):
            found = get_json(f"{url}/api/v1/txs/{block['txs'][index]}", 60.0)
            tx = decode_tx(bytes.fromhex(found["proof"]["tx"]))
            if tx.kind == "vote.cast":
                return {"tx_hash": tx.hash.hex(), "height": h, "index": index,
                        "campaign_id": tx.body.campaign_id}
    raise RuntimeError(f"no ballot in the {WALK_BLOCKS} blocks below height {height}")


def check_receipt(url: str, genesis: Genesis, found: dict[str, Any]) -> dict[str, Any]:
    """The observer's answer for a tx, checked as ``veche receipt verify`` checks a receipt."""
    tx = decode_tx(bytes.fromhex(found["proof"]["tx"]))
    receipt = receipt_from_proof(genesis.chain_id, genesis.hash.hex(), tx, found)
    changes = get_json(f"{url}/api/v1/validators/changes", 60.0)
    schedule = follow_set_changes(genesis.chain_id, genesis.params.validators, proofs_from_json(changes))
    checked = verify_receipt(receipt, genesis.params, schedule.at)
    block = get_json(f"{url}/api/v1/blocks/{checked.height}", 60.0)
    if block["hash"] != checked.header.hash().hex():
        raise RuntimeError(f"the observer's block {checked.height} is not the receipt's")
    return receipt


def cpu_of(pid: int) -> float:
    """utime + stime of one process, seconds (its children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """The live child processes of ``pid`` (the equal-shares worker the node spawns, and its helpers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


class Children:
    """CPU and peak RSS of a process's children, sampled (a child's figures are kept after it exits)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu: dict[int, float] = {}
        self.hwm_kb: dict[int, int] = {}

    def sample(self) -> None:
        for child in children_of(self.pid):
            try:
                self.cpu[child] = cpu_of(child)
                self.hwm_kb[child] = proc_status(child)["VmHWM"]
            except (OSError, KeyError):
                continue

    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())

    def peak_mb(self) -> float:
        return round(max(self.hwm_kb.values(), default=0) / 1024, 1)


def try_json(url: str, timeout: float = 5.0) -> dict[str, Any] | None:
    try:
        status, body = http_get(url, timeout)
    except OSError:
        return None
    if status != 200:
        return None
    value: dict[str, Any] = json.loads(body)
    return value


def measure(chain_dir: Path, run_dir: Path, *, validators: int = 3, settle: float = 10.0,
            timeout: float = 7200.0) -> dict[str, Any]:
    names = [f"validator-{i}" for i in range(validators)]
    copy_layout(chain_dir, run_dir, data_for=("validator-0",))
    result: dict[str, Any] = {"chain": str(chain_dir), "validators_running": validators}
    data0 = run_dir / "validator-0" / "data"
    genesis_file = run_dir / "genesis.json"
    started = time.perf_counter()
    result["equal_shares_s"] = precompute_equal_shares(data0, genesis_file)
    result["equal_shares_precompute_s"] = round(time.perf_counter() - started, 1)
    for name in names[1:]:
        snapshot_data(data0, run_dir / name / "data")
    genesis = load_genesis(genesis_file)
    net = BigNet(run_dir)
    try:
        for name in names:
            net.start(name)
        for name in names:
            net.wait_up(name, timeout=900)
        result["validators_settle_s"] = wait_quiet(net, names)
        url0 = net.urls["validator-0"]
        height = net.height("validator-0")
        campaigns = get_json(f"{url0}/api/v1/campaigns", 60.0)["campaigns"]
        ballots = sum(c["total_ballots"] for c in campaigns)
        target = last_ballot(url0, height)
        tally0 = get_json(f"{url0}/api/v1/campaigns/{target['campaign_id']}/tally", 60.0)
        result.update({"height": height, "ballots": ballots, "campaigns": len(campaigns),
                       "newest_campaign": {"id": target["campaign_id"], "ballots": tally0["total_ballots"]},
                       "last_ballot": {"tx_hash": target["tx_hash"], "height": target["height"]}})
        print(f"validators up at height {height:,} ({ballots:,} ballots); starting the observer", flush=True)

        url = net.urls[OBSERVER]
        moments: dict[str, float] = {}
        memory: list[dict[str, int]] = []
        last_seen = 0
        last_print = 0.0
        started_wall = time.time()
        started = time.perf_counter()
        net.start(OBSERVER)
        pid = net.pid(OBSERVER)
        children = Children(pid)
        cpu_at_reached: float | None = None
        children_cpu_at_reached = 0.0
        memory_at_reached: dict[str, int] = {}
        receipt: dict[str, Any] = {}
        while "reached_height" not in moments or "first_receipt_proof" not in moments \
                or "first_full_tally" not in moments:
            now = time.perf_counter() - started
            if now > timeout:
                raise TimeoutError(f"the observer did not catch up in {timeout:.0f} s (at {last_seen:,} of {height:,})")
            if not net.alive(OBSERVER):
                raise RuntimeError(f"the observer exited:\n{net.log_tail(OBSERVER)}")
            memory.append(proc_status(pid))
            children.sample()
            status = try_json(f"{url}/api/v1/status", 2.0)
            if status is not None:
                moments.setdefault("first_status", time.perf_counter() - started)
                last_seen = int(status["height"])
            if last_seen >= target["height"] and "first_receipt_proof" not in moments:
                found = try_json(f"{url}/api/v1/txs/{target['tx_hash']}", 10.0)
                if found is not None and found["status"] == "committed":
                    check_receipt(url, genesis, found)
                    moments["first_receipt_proof"] = time.perf_counter() - started
                    receipt = receipt_from_proof(genesis.chain_id, genesis.hash.hex(),
                                                 decode_tx(bytes.fromhex(found["proof"]["tx"])), found)
            if last_seen >= target["height"] and "first_full_tally" not in moments:
                tally = try_json(f"{url}/api/v1/campaigns/{target['campaign_id']}/tally", 30.0)
                if tally is not None and tally["total_ballots"] == tally0["total_ballots"] \
                        and tally["result_hash"] == tally0["result_hash"]:
                    moments["first_full_tally"] = time.perf_counter() - started
            if last_seen >= height and "reached_height" not in moments:
                moments["reached_height"] = time.perf_counter() - started
                cpu_at_reached = net.cpu_seconds(OBSERVER)
                children.sample()
                children_cpu_at_reached = children.cpu_seconds()
                memory_at_reached = proc_status(pid)
            if time.monotonic() - last_print > 30:
                last_print = time.monotonic()
                print(f"  {now:7.1f} s: observer at {last_seen:,} of {height:,}", flush=True)
            time.sleep(POLL_S)
        reached = moments["reached_height"]
        assert cpu_at_reached is not None
        log = net.homes[OBSERVER] / "node.log"
        try:
            wait_for(lambda: sync_reached(log.read_text(errors="replace"), height) is not None, 60,
                     "the observer's 'block sync: reached' line")
        except TimeoutError:
            pass
        # the settle: results of closed equal-shares campaigns, if the observer computes them after the sync
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            memory.append(proc_status(pid))
            children.sample()
            time.sleep(POLL_S)
        cpu_settled = net.cpu_seconds(OBSERVER)
        final = proc_status(pid)
        text = log.read_text(errors="replace")
        spans = sync_spans(text)
        sync = sync_reached(text, height)
        first_from = spans[0] if spans else None
        sync_s = (sync.end_time - first_from.start_time) if sync is not None and first_from is not None \
            and sync.end_time is not None else None

        receipt_path = run_dir / "receipt.json"
        receipt_path.write_text(json.dumps(receipt), encoding="utf-8")
        cli_started = time.perf_counter()
        cli = subprocess.run([sys.executable, "-m", "node.cli", "receipt", "verify", str(receipt_path),
                              "--node", url, "--genesis", str(genesis_file)],
                             capture_output=True, text=True, timeout=300)
        cli_s = time.perf_counter() - cli_started

        result.update({
            "observer": {
                "first_status_s": round(moments["first_status"], 2),
                "reached_height_s": round(reached, 2),
                "votes_per_s_from_process_start": round(ballots / reached),
                "blocks_per_s_from_process_start": round(height / reached, 1),
                "sync_seconds_log": round(sync_s, 2) if sync_s else None,
                "votes_per_s_sync_log": round(ballots / sync_s) if sync_s else None,
                "blocks_per_s_sync_log": round((sync.reached - first_from.from_height) / sync_s, 1)
                if sync_s and sync is not None and sync.reached is not None and first_from is not None else None,
                "sync_spans": [span.to_json() for span in spans],
                "cpu_seconds_at_reached": round(cpu_at_reached, 2),
                "cpu_us_per_vote": round(cpu_at_reached * 1e6 / ballots, 1),
                "cpu_seconds_after_settle": round(cpu_settled, 2),
                "results_worker_cpu_seconds_at_reached": round(children_cpu_at_reached, 2),
                "results_worker_cpu_seconds_after_settle": round(children.cpu_seconds(), 2),
                "cpu_us_per_vote_with_results_worker": round((cpu_at_reached + children_cpu_at_reached) * 1e6
                                                             / ballots, 1),
                "results_worker_vm_hwm_mb": children.peak_mb(),
                "rss_anon_max_mb": round(max(m["RssAnon"] for m in memory) / 1024, 1),
                "vm_hwm_mb_at_reached": round(memory_at_reached["VmHWM"] / 1024, 1),
                "vm_hwm_mb_after_settle": round(final["VmHWM"] / 1024, 1),
                "memory_after_settle_mb": {k: round(v / 1024, 1) for k, v in final.items()},
            },
            "time_to_first_verified_answer_s": round(min(moments["first_receipt_proof"],
                                                         moments["first_full_tally"]), 2),
            "first_receipt_proof_s": round(moments["first_receipt_proof"], 2),
            "first_full_tally_s": round(moments["first_full_tally"], 2),
            "receipt_verify_cli": {"seconds": round(cli_s, 2), "exit": cli.returncode,
                                   "last_line": (cli.stdout.strip().splitlines() or [cli.stderr.strip()])[-1]},
            "observer_start_wall": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started_wall)),
            "log_equal_shares": [f"+{(log_time(line) or started_wall) - started_wall:.1f} s: "
                                 + line.split("] ", 1)[-1] for line in text.splitlines()
                                 if "equal-shares result" in line][-12:],
        })
        # the header carries the app hash: the same block hash is the same state
        result["block_hash_matches_at_height"] = (net.block_hash(OBSERVER, height)
                                                  == net.block_hash("validator-0", height))
    except VecheError as exc:
        raise RuntimeError(f"the observer's answer does not check: {exc.message}") from exc
    finally:
        net.close()
    return result
