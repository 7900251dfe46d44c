"""The invariants checked after every run, each an independent ``Check`` with its evidence.

1. ``agreement``      identical block hashes and header app hashes on all nodes at every common
                      height, and identical ``/status`` app hash once all nodes stand at one height;
2. ``no_duplicates``  no transaction hash twice in the chain, no voter with two ballots in one slot;
3. ``acked_committed`` every acknowledged vote committed exactly once: the commit watcher saw it,
                      and ``GET /api/v1/txs/{hash}`` on a node says ``committed`` at the same height
                      and index the chain scan found;
4. ``certificates``   every commit certificate (stored ones and each block's ``last_commit``, on
                      every node) verifies against the genesis validators;
5. ``no_double_sign`` no validator signed precommits for two blocks at one height and round in
                      any certificate anywhere, and no honest validator appears in any node's
                      ``/api/v1/evidence`` (each evidence item is decoded and verified);
6. ``verify``         ``veche verify --node URL --json`` exits 0 for every node;
7. ``processes``      no node or gateway exited without being told to;
8. ``equivocations``  the number of distinct (validator, height, round, step) slots at which an
                      honest validator signed twice, from every source that can show one: double
                      precommits in certificates, evidence items on every node, and the
                      ``EQUIVOCATION`` lines of every node's log (which survive a wiped or resynced
                      store) — must be 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from chain import codec
from chain.block import Block, CommitCertificate, ValidatorSet, verify_certificate
from chain.crypto import sha256, verify
from chain.errors import CertificateError, DecodeError
from chain.governance import effective_height, updated_validators
from chain.lightclient import ValidatorSchedule
from chain.tx import ValidatorsUpdate, VoteCast, decode_tx
from consensus.errors import ConsensusError
from consensus.messages import decode_evidence, verify_evidence
from genesis.model import parse_genesis
from veche_chaos.cluster import REPO_ROOT, Cluster
from veche_chaos.observe import CommitWatcher, get_bytes, get_json
from veche_chaos.tracking import Tracker

log = logging.getLogger("veche.chaos.invariants")

RANGE = 500
TX_CHECK_CONCURRENCY = 24
EQUIVOCATION_LINE = re.compile(r"EQUIVOCATION: validator (\S+) signed two different (\S+) messages at height (\d+) "
                               r"round (\d+)")


@dataclass(slots=True)
class Check:
    name: str
    ok: bool
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "summary": self.summary, "detail": self.detail}


@dataclass(slots=True)
class NodeChain:
    name: str
    blocks: list[Block]
    certificates: list[CommitCertificate]

    @property
    def height(self) -> int:
        return len(self.blocks)


async def fetch_chain(session: aiohttp.ClientSession, name: str, url: str, height: int) -> NodeChain:
    blocks: list[Block] = []
    certificates: list[CommitCertificate] = []
    start = 1
    while start <= height:
        data = await get_bytes(session, f"{url}/api/v1/blocks/raw?from={start}&to={min(height, start + RANGE - 1)}",
                               timeout=aiohttp.ClientTimeout(total=60))
        if data is None:
            raise RuntimeError(f"{name} did not serve blocks from {start}")
        value = codec.decode(data, max_bytes=1 << 28)
        if not isinstance(value, list) or not value:
            raise RuntimeError(f"{name} served an empty or malformed range from {start}")
        for item in value:
            blocks.append(Block.from_wire(item[0]))
            certificates.append(CommitCertificate.from_wire(item[1]))
        start = len(blocks) + 1
    return NodeChain(name, blocks, certificates)


def signed_precommits(certificates: Iterable[CommitCertificate]) -> dict[tuple[int, int, int], set[bytes]]:
    """(validator index, height, round) → every block hash that validator's precommit signature backs."""
    signed: dict[tuple[int, int, int], set[bytes]] = {}
    for certificate in certificates:
        for index, _signature in certificate.signatures:
            signed.setdefault((index, certificate.height, certificate.round), set()).add(certificate.block_hash)
    return signed


def double_signed(signed: dict[tuple[int, int, int], set[bytes]]) -> dict[tuple[int, int, int], set[bytes]]:
    return {slot: hashes for slot, hashes in signed.items() if len(hashes) > 1}


VALIDATORS_UPDATE_PREFIX = b"\x94\xb1validators.update"  # an encoded envelope whose kind is validators.update


class InvariantChecker:
    def __init__(self, cluster: Cluster, tracker: Tracker, watcher: CommitWatcher, *,
                 byzantine: Iterable[str] = (), tx_check_limit: int | None = None, verify_workers: int = 2) -> None:
        self.cluster = cluster
        self.tracker = tracker
        self.watcher = watcher
        self.byzantine = set(byzantine)
        self.tx_check_limit = tx_check_limit
        self.verify_workers = verify_workers
        genesis = parse_genesis(cluster.genesis_document)
        self.validators: ValidatorSet = genesis.params.validators
        self.schedule = ValidatorSchedule(self.validators)   # grown from the chain's validators.update (run)
        self.chain_id = genesis.chain_id
        self.names = [v.name for v in self.validators.validators]
        self.checks: list[Check] = []
        self.chains: dict[str, NodeChain] = {}

    def add(self, check: Check) -> None:
        self.checks.append(check)
        (log.info if check.ok else log.error)("invariant %s: %s — %s", check.name,
                                              "OK" if check.ok else "FAILED", check.summary)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    async def run(self) -> list[Check]:
        async with aiohttp.ClientSession() as session:
            statuses = {n: await get_json(session, self.cluster.url(n) + "/api/v1/status",
                                          timeout=aiohttp.ClientTimeout(total=10)) for n in self.cluster.nodes}
            for name, status in statuses.items():
                if isinstance(status, dict):
                    try:
                        self.chains[name] = await fetch_chain(session, name, self.cluster.url(name),
                                                              int(status["height"]))
                    except (RuntimeError, DecodeError) as exc:
                        log.error("cannot read the chain of %s: %s", name, exc)
            self.follow_set_changes()
            self.add(self.check_agreement(statuses))
            self.add(self.check_duplicates())
            self.add(await self.check_acked(session))
            self.add(self.check_certificates())
            self.add(await self.check_double_sign(session))
            self.add(await self.check_equivocations(session))
        self.add(await self.check_verify())
        self.add(self.check_processes())
        return self.checks

    def follow_set_changes(self) -> None:
        """The validator set in force at every height, from the reference chain's ``validators.update``
        transactions (each in force from its block + 2, docs/PROTOCOL.md §15)."""
        chain = self.reference()
        if chain is None:
            return
        for block in chain.blocks:
            validators = None
            for raw in block.txs:
                if not raw.startswith(VALIDATORS_UPDATE_PREFIX):
                    continue
                tx = decode_tx(raw)
                if isinstance(tx.body, ValidatorsUpdate):
                    base = validators if validators is not None else self.schedule.latest()
                    validators = ValidatorSet(updated_validators(base, tx.body))
            if validators is not None:
                self.schedule.add(effective_height(block.height), validators)

    def validators_at(self, height: int) -> ValidatorSet:
        return self.schedule.at(height)

    # --- 1 ----------------------------------------------------------------------------------------

    def check_agreement(self, statuses: dict[str, Any]) -> Check:
        missing = [n for n in self.cluster.nodes if n not in self.chains]
        chains = list(self.chains.values())
        divergent: list[dict[str, Any]] = []
        compared = 0
        if chains:
            top = max(c.height for c in chains)
            for height in range(1, top + 1):
                seen: dict[tuple[str, str], list[str]] = {}
                for chain in chains:
                    if chain.height >= height:
                        block = chain.blocks[height - 1]
                        key = (block.hash().hex(), block.header.app_hash.hex())
                        seen.setdefault(key, []).append(chain.name)
                if len(seen) > 1:
                    divergent.append({"height": height, "versions": {f"{k[0][:16]}/{k[1][:16]}": v
                                                                     for k, v in seen.items()}})
                    if len(divergent) >= 5:
                        break
                compared += 1
        final: dict[str, tuple[int, str]] = {n: (int(s["height"]), str(s["app_hash"]))
                                             for n, s in statuses.items() if isinstance(s, dict)}
        by_height: dict[int, set[str]] = {}
        for height, app_hash in final.values():
            by_height.setdefault(height, set()).add(app_hash)
        status_split = {h: sorted(v) for h, v in by_height.items() if len(v) > 1}
        heights = {n: c.height for n, c in self.chains.items()}
        ok = not missing and not divergent and not status_split and bool(chains)
        summary = (f"{len(chains)} nodes agree on every block hash and app hash up to height {compared}"
                   if ok else f"missing {missing}, divergent {divergent[:2]}, status app hashes {status_split}")
        return Check("agreement", ok, summary, {"heights": heights, "divergent": divergent,
                                                "status_app_hash_split": status_split, "unreachable": missing})

    # --- 2 ----------------------------------------------------------------------------------------

    def reference(self) -> NodeChain | None:
        honest = [c for n, c in self.chains.items() if n not in self.byzantine]
        return max(honest or self.chains.values(), key=lambda c: c.height, default=None)

    def check_duplicates(self) -> Check:
        chain = self.reference()
        if chain is None:
            return Check("no_duplicates", False, "no chain to scan")
        hashes: Counter[bytes] = Counter()
        ballots: Counter[tuple[str, bytes, str]] = Counter()
        for block in chain.blocks:
            for raw in block.txs:
                hashes[sha256(raw)] += 1
                tx = decode_tx(raw)
                body = tx.body
                if isinstance(body, VoteCast):
                    ballots[(body.campaign_id, tx.signers[0], body.district_id)] += 1
        repeated = [h.hex() for h, count in hashes.items() if count > 1]
        double_ballots = [f"{c}/{k.hex()[:16]}/{d}" for (c, k, d), count in ballots.items() if count > 1]
        watcher_dups = self.watcher.duplicates
        ok = not repeated and not double_ballots and not watcher_dups
        return Check("no_duplicates", ok,
                     f"{sum(hashes.values())} txs ({sum(ballots.values())} ballots) in {chain.height} blocks of "
                     f"{chain.name}: {len(repeated)} repeated hashes, {len(double_ballots)} voters with two ballots "
                     f"in one slot", {"repeated": repeated[:20], "double_ballots": double_ballots[:20],
                                      "watcher_duplicates": watcher_dups[:20]})

    # --- 3 ----------------------------------------------------------------------------------------

    async def check_acked(self, session: aiohttp.ClientSession) -> Check:
        chain = self.reference()
        positions: dict[bytes, tuple[int, int]] = {}
        if chain is not None:
            for block in chain.blocks:
                for index, raw in enumerate(block.txs):
                    positions.setdefault(sha256(raw), (block.height, index))
        acked = [r for r in self.tracker.votes() if r.acked is not None]
        lost = [r.tx_hash.hex() for r in acked if r.tx_hash not in positions]
        checked = acked if self.tx_check_limit is None else acked[: self.tx_check_limit]
        nodes = [n for n in self.cluster.nodes if n not in self.byzantine and n in self.chains]
        mismatched: list[dict[str, Any]] = []
        semaphore = asyncio.Semaphore(TX_CHECK_CONCURRENCY)

        async def one(number: int, tx_hash: bytes) -> None:
            node = nodes[number % len(nodes)]
            async with semaphore:
                answer = await get_json(session, f"{self.cluster.url(node)}/api/v1/txs/{tx_hash.hex()}",
                                        timeout=aiohttp.ClientTimeout(total=20))
            expected = positions.get(tx_hash)
            got = None
            if isinstance(answer, dict) and answer.get("status") == "committed":
                got = (answer.get("height"), answer.get("index"))
            if expected is None or got != expected:
                mismatched.append({"tx": tx_hash.hex(), "node": node, "chain": expected,
                                   "api": answer.get("status") if isinstance(answer, dict) else None})

        if nodes:
            await asyncio.gather(*(one(i, r.tx_hash) for i, r in enumerate(checked)))
        ok = not lost and not mismatched and bool(nodes)
        return Check("acked_committed", ok,
                     f"{len(acked)} acknowledged votes: {len(acked) - len(lost)} committed, {len(lost)} lost; "
                     f"{len(checked)} checked through GET /api/v1/txs/{{hash}}, {len(mismatched)} mismatches",
                     {"lost": lost[:50], "mismatched": mismatched[:20], "checked": len(checked)})

    # --- 4 and 5 -----------------------------------------------------------------------------------

    def _certificates(self) -> Iterable[tuple[str, CommitCertificate]]:
        for name, chain in self.chains.items():
            for certificate in chain.certificates:
                yield name, certificate
            for block in chain.blocks:
                if block.last_commit is not None:
                    yield name, block.last_commit

    def check_certificates(self) -> Check:
        bad: list[str] = []
        verified: set[bytes] = set()
        count = 0
        for name, certificate in self._certificates():
            count += 1
            key = certificate.hash()
            if key in verified:
                continue
            try:
                verify_certificate(certificate, self.validators_at(certificate.height), self.chain_id)
            except CertificateError as exc:
                bad.append(f"{name} h{certificate.height}: {exc.message}")
                continue
            verified.add(key)
        return Check("certificates", not bad, f"{count} certificates ({len(verified)} distinct) verify; "
                                              f"{len(bad)} do not", {"bad": bad[:20]})

    async def check_double_sign(self, session: aiohttp.ClientSession) -> Check:
        signed = signed_precommits(certificate for _, certificate in self._certificates())
        doubles = [{"validator": self._name(i, h), "height": h, "round": r, "blocks": sorted(b.hex()[:16] for b in hs)}
                   for (i, h, r), hs in double_signed(signed).items()]
        evidence: dict[str, list[dict[str, Any]]] = {}
        invalid: list[str] = []
        for node in self.cluster.nodes:
            answer = await get_json(session, self.cluster.url(node) + "/api/v1/evidence",
                                    timeout=aiohttp.ClientTimeout(total=10))
            if not isinstance(answer, dict):
                invalid.append(f"{node}: no evidence list")
                continue
            items = []
            for item in answer.get("evidence", []):
                try:
                    parsed = decode_evidence(bytes.fromhex(item["evidence"]))
                    verify_evidence(parsed, self.validators_at(parsed.height), self.chain_id,
                                    lambda pk, sig, msg: verify(pk, sig, msg, cache_key=True))
                except (ConsensusError, DecodeError, ValueError, KeyError) as exc:
                    invalid.append(f"{node}: {exc}")
                    continue
                items.append({"validator": self._name(parsed.validator_index, parsed.height), "height": parsed.height,
                              "round": parsed.round, "step": parsed.step})
            evidence[node] = items
        accused = {item["validator"] for items in evidence.values() for item in items}
        honest_accused = sorted(accused - self.byzantine)
        doubles_honest = [d for d in doubles if d["validator"] not in self.byzantine]
        ok = not doubles_honest and not honest_accused and not invalid
        return Check("no_double_sign", ok,
                     f"{len(signed)} signed precommit slots scanned: {len(doubles)} double-signed; evidence names "
                     f"{sorted(accused) or 'nobody'}; honest validators accused: {honest_accused or 'none'}",
                     {"double_signed": doubles[:20], "evidence": {n: len(v) for n, v in evidence.items()},
                      "evidence_items": {n: v[:10] for n, v in evidence.items()}, "invalid_evidence": invalid[:20]})

    async def check_equivocations(self, session: aiohttp.ClientSession) -> Check:
        slots: dict[str, set[tuple[str, int, int, str]]] = {"certificates": set(), "evidence": set(), "logs": set()}
        signed = signed_precommits(certificate for _, certificate in self._certificates())
        for (index, height, round_), _hashes in double_signed(signed).items():
            slots["certificates"].add((self._name(index, height), height, round_, "precommit"))
        for node in self.cluster.nodes:
            answer = await get_json(session, self.cluster.url(node) + "/api/v1/evidence",
                                    timeout=aiohttp.ClientTimeout(total=10))
            for item in answer.get("evidence", []) if isinstance(answer, dict) else []:
                slots["evidence"].add((self._name(int(item["validator_index"]), int(item["height"])), int(item["height"]),
                                       int(item["round"]), str(item["step"])))
            try:
                text = (self.cluster.home(node) / "process.log").read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
            for name, step, height, round_ in EQUIVOCATION_LINE.findall(text):
                slots["logs"].add((name, int(height), int(round_), step))
        honest = {source: {slot for slot in found if slot[0] not in self.byzantine} for source, found in slots.items()}
        total = set().union(*honest.values())
        counts = {source: len(found) for source, found in honest.items()}
        return Check("equivocations", not total,
                     f"{len(total)} equivocations by honest validators (certificates {counts['certificates']}, "
                     f"evidence {counts['evidence']}, node logs {counts['logs']})",
                     {"equivocations": len(total), "by_source": counts,
                      "slots": [list(slot) for slot in sorted(total)[:20]],
                      "byzantine_slots": len(set().union(*slots.values())) - len(total)})

    def _name(self, index: int, height: int) -> str:
        """The name of validator ``index`` of the set in force at ``height``."""
        validators = self.validators_at(height)
        return validators.validators[index].name if 0 <= index < validators.size else f"#{index}"

    # --- 6 and 7 -----------------------------------------------------------------------------------

    async def check_verify(self) -> Check:
        results: dict[str, Any] = {}
        failed: list[str] = []
        for node in self.cluster.nodes:
            started = time.monotonic()
            argv = [sys.executable, "-m", "node.cli", "verify", "--node", self.cluster.url(node), "--json",
                    "--workers", str(self.verify_workers)]
            process = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                           cwd=str(REPO_ROOT))
            try:
                out, err = await asyncio.wait_for(process.communicate(), 900)
            except TimeoutError:
                process.kill()
                await process.wait()
                failed.append(node)
                results[node] = {"ok": False, "error": "timed out"}
                continue
            try:
                report = json.loads(out.decode() or "{}")
            except ValueError:
                report = {"ok": False, "error": (out + err).decode(errors="replace")[-500:]}
            report["exit_code"] = process.returncode
            report["wall_seconds"] = round(time.monotonic() - started, 2)
            results[node] = {k: report.get(k) for k in ("ok", "exit_code", "height", "blocks", "votes", "error",
                                                        "first_bad_height", "votes_per_second", "wall_seconds")}
            if process.returncode != 0 or not report.get("ok"):
                failed.append(node)
        summary = ", ".join(f"{n} h{r.get('height')} {'ok' if n not in failed else 'FAILED'}"
                            for n, r in results.items())
        return Check("verify", not failed, f"veche verify --node: {summary}", results)

    def check_processes(self) -> Check:
        self.cluster.check_exits()
        exits = self.cluster.unexpected_exits
        return Check("processes", not exits, f"{len(exits)} unexpected process exits", {"exits": exits})
