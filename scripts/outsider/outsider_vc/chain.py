"""Blocks and certificates (PROTOCOL §5, §7, §15.4), the node's public API (NODE.md §7) and the
replay that ``veche verify`` does (TRANSPARENCY.md §3, §7)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from .codec import ZERO32, dec, enc, ed25519_ok, genesis_hash, load_json_strict, merkle_root, sha256, u64
from .results import compute_result
from .roster import campaign_body, genesis_roster, initiative_body, quorum
from .state import Reject, State
from .txs import Bad, Tx, _is_uint, check_body, decode_tx

MAX_BLOCK_TXS = 20_000
MAX_BLOCK_BYTES = 8 * 1024 * 1024


class Fault(Exception):
    """A check failed. ``height`` is the block it failed in (None: not a block's fault)."""

    def __init__(self, message: str, height: int | None = None) -> None:
        super().__init__(message)
        self.height = height


class Unreachable(Exception):
    """The node did not answer, or its answers are not the API."""

# --------------------------------------------------------------------------------------------
# Blocks and certificates (§5, §7)


@dataclass
class Block:
    header: list[Any]
    header_bytes: bytes
    txs: list[bytes]
    last_commit: list[Any] | None
    size: int

    @property
    def hash(self) -> bytes:
        return sha256(self.header_bytes)


def parse_entry(entry: Any, h: int) -> tuple[Block, list[Any]]:
    if not isinstance(entry, list) or len(entry) != 2:
        raise Fault(f"block {h}: an entry is not [block, certificate]", h)
    block, cert = entry
    if not isinstance(block, list) or len(block) != 3 or not isinstance(block[0], list) or len(block[0]) != 9:
        raise Fault(f"block {h}: not a block", h)
    header, txs, last_commit = block
    if not isinstance(txs, list) or any(not isinstance(t, bytes) for t in txs):
        raise Fault(f"block {h}: transactions are not byte strings", h)
    if last_commit is not None and not isinstance(last_commit, list):
        raise Fault(f"block {h}: last_commit is neither a certificate nor nil", h)
    types = (str, int, int, int, bytes, bytes, bytes, int, bytes)
    for v, t in zip(header, types):
        if not isinstance(v, t) or isinstance(v, bool):
            raise Fault(f"block {h}: header field of the wrong type", h)
    if any(len(header[i]) != 32 for i in (4, 5, 6, 8)):
        raise Fault(f"block {h}: header hash of the wrong length", h)
    return Block(header, enc(header), txs, last_commit, len(enc(block))), cert


def check_certificate(cert: Any, h: int, block_hash: bytes, chain_id: str, keys: list[bytes], at: int) -> None:
    where = f"block {at}: certificate of height {h}"
    if not isinstance(cert, list) or len(cert) != 4:
        raise Fault(f"{where} is malformed", at)
    ch, rnd, bh, sigs = cert
    if not _is_uint(ch) or not _is_uint(rnd) or not isinstance(bh, bytes) or not isinstance(sigs, list):
        raise Fault(f"{where} is malformed", at)
    if ch != h or bh != block_hash:
        raise Fault(f"{where} is for another block (height {ch}, hash {bh.hex()[:16]})", at)
    if len(sigs) > 1024:
        raise Fault(f"{where} has too many signatures", at)
    message = b"veche/v1/consensus.precommit" + chain_id.encode() + enc([ch, rnd, bh])
    last = -1
    for s in sigs:
        if not isinstance(s, list) or len(s) != 2 or not _is_uint(s[0]) or not isinstance(s[1], bytes) \
                or len(s[1]) != 64:
            raise Fault(f"{where}: malformed signature entry", at)
        if s[0] <= last:
            raise Fault(f"{where}: validator indices not strictly ascending", at)
        last = s[0]
        if s[0] >= len(keys):
            raise Fault(f"{where}: validator index {s[0]} out of range", at)
        if not ed25519_ok(keys[s[0]], s[1], message):
            raise Fault(f"{where}: bad precommit signature of validator {s[0]}", at)
    if len(sigs) < quorum(len(keys)):
        raise Fault(f"{where} has {len(sigs)} signatures, quorum is {quorum(len(keys))}", at)


# --------------------------------------------------------------------------------------------
# The node's public API (NODE.md §7)


def http_get(url: str, timeout: float = 30.0) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:   # noqa: S310 - user-given node URL
            data: bytes = response.read()
            return data
    except urllib.error.HTTPError as exc:
        raise Unreachable(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise Unreachable(f"{url}: {exc}") from None


def get_json(url: str) -> Any:
    try:
        return json.loads(http_get(url))
    except json.JSONDecodeError:
        raise Unreachable(f"{url}: not JSON") from None


class Verifier:
    def __init__(self, genesis_text: str, node: str) -> None:
        self.node = node.rstrip("/")
        self.doc = load_json_strict(genesis_text)
        self.genesis_hash = genesis_hash(self.doc)
        self.chain_id: str = self.doc["chain_id"]
        self.roster0 = genesis_roster(self.doc)
        self.state = State(self.chain_id, self.roster0)
        self.height = 0
        self.prev_hash = ZERO32
        self.prev_time: int = self.doc["genesis_time_ms"]
        self.app_hash = b""
        self.prev_cert: bytes | None = None
        self.txs = 0
        self.votes = 0

    def apply_genesis(self) -> None:
        s = self.state
        s.height, s.time = 0, self.doc["genesis_time_ms"]
        k = self.roster0.threshold
        signers = sorted(bytes(c[1]) for c in self.roster0.committee)[:k]
        for kind, objects in (("campaign.create", self.doc.get("campaigns", [])),
                              ("initiative.submit", self.doc.get("initiatives", []))):
            for o in objects:
                body = campaign_body(o, self.roster0) if kind == "campaign.create" else initiative_body(o)
                check_body(kind, body)
                tx = Tx(b"", b"", kind, self.chain_id, body, signers, [])
                try:
                    s.apply(tx, set(), genesis=True)
                except Reject as exc:
                    raise Fault(f"genesis data does not apply: {exc}", 0) from None
        self.app_hash = sha256(self.genesis_hash, u64(0), sha256(s.take_changes()))

    def check_node_genesis(self) -> None:
        status = get_json(self.node + "/api/v1/status")
        if status.get("chain_id") != self.chain_id or status.get("genesis_hash") != self.genesis_hash.hex():
            raise Fault(f"the node serves another chain (genesis hash {status.get('genesis_hash')}, "
                        f"ours {self.genesis_hash.hex()})")
        served = load_json_strict(http_get(self.node + "/api/v1/genesis").decode("utf-8"))
        if genesis_hash(served) != self.genesis_hash:
            raise Fault("the node's genesis document hashes to another value")

    def fetch(self, start: int) -> list[Any]:
        data = http_get(f"{self.node}/api/v1/blocks/raw?from={start}")
        try:
            page = dec(data, big=True)
        except ValueError as exc:
            raise Fault(f"block {start}: the page does not decode: {exc}", start) from None
        if not isinstance(page, list):
            raise Fault(f"block {start}: the page is not an array", start)
        return page

    def run_blocks(self, until: int | None = None) -> None:
        while until is None or self.height < until:
            page = self.fetch(self.height + 1)
            if not page:
                return
            for entry in page:
                if until is not None and self.height >= until:
                    return
                self.check_block(entry)

    def unpublished_results(self) -> dict[str, Any]:
        """Every campaign's recomputed result, compared with nothing (after a fault)."""
        out: dict[str, Any] = {}
        for cid in sorted(self.state.campaigns, key=lambda x: x.encode()):
            c = self.state.campaigns[cid]
            winners, rhash = compute_result(c)
            out[cid] = {"status": c.status, "total_ballots": c.total_ballots, "winners": winners,
                        "result_hash": rhash.hex(), "published_result_hash": None, "matches": None}
        return out

    def check_block(self, entry: Any) -> None:
        h = self.height + 1
        block, cert = parse_entry(entry, h)
        chain_id, height, rnd, t, prev, tx_root, app_hash, proposer, lc_hash = block.header
        s = self.state
        if chain_id != self.chain_id:
            raise Fault(f"block {h}: chain id {chain_id!r}", h)
        if height != h:
            raise Fault(f"block {h}: height {height}", h)
        if prev != self.prev_hash:
            raise Fault(f"block {h}: previous hash does not match block {h - 1}", h)
        keys = s.roster_at(h).validator_keys()
        if proposer != (h + rnd) % len(keys):
            raise Fault(f"block {h}: proposer {proposer} is not (h + r) mod n", h)
        if not t > self.prev_time:
            raise Fault(f"block {h}: time not after the previous block's", h)
        if len(block.txs) > MAX_BLOCK_TXS or block.size > MAX_BLOCK_BYTES:
            raise Fault(f"block {h}: too large", h)
        if merkle_root(block.txs) != tx_root:
            raise Fault(f"block {h}: tx root does not match its transactions", h)
        expected_lc = ZERO32 if block.last_commit is None else sha256(enc(block.last_commit))
        if lc_hash != expected_lc:
            raise Fault(f"block {h}: last commit hash does not match", h)
        if (block.last_commit is None) != (h == 1):
            raise Fault(f"block {h}: last_commit present iff height > 1", h)
        if block.last_commit is not None and enc(block.last_commit) != self.prev_cert:
            check_certificate(block.last_commit, h - 1, self.prev_hash, self.chain_id,
                              s.roster_at(h - 1).validator_keys(), h)
        check_certificate(cert, h, block.hash, self.chain_id, keys, h)
        # transactions
        s.begin_block(h, t)
        seen: set[bytes] = set()
        votes = 0
        for i, raw in enumerate(block.txs):
            try:
                tx = decode_tx(raw, self.chain_id)
            except Bad as exc:
                raise Fault(f"block {h}: transaction {i} does not decode: {exc}", h) from None
            try:
                s.apply(tx, seen)
            except Reject as exc:
                raise Fault(f"block {h}: transaction {i} ({tx.kind} {tx.hash.hex()}) is refused: {exc}", h) from None
            seen.add(tx.hash)
            votes += tx.kind == "vote.cast"
        s.committed |= seen
        version = s.version_at(h)
        computed = sha256(self.app_hash, u64(h), sha256(s.take_changes()),
                          u64(version) if version >= 2 else b"")
        if computed != app_hash:
            raise Fault(f"block {h}: app hash does not match the replayed state", h)
        self.app_hash, self.prev_hash, self.prev_time, self.height = computed, block.hash, t, h
        self.txs += len(block.txs)       # counted once the whole block checked
        self.votes += votes
        self.prev_cert = enc(cert)

    def results(self, *, wait_s: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for cid in sorted(self.state.campaigns, key=lambda x: x.encode()):
            c = self.state.campaigns[cid]
            winners, rhash = compute_result(c)
            if c.result is not None and c.result != (winners, rhash):
                raise Fault(f"campaign {cid}: recomputed result differs from the one stored at its close")
            published, matches = self.published(cid, rhash, c.status, wait_s)
            out[cid] = {"status": c.status, "total_ballots": c.total_ballots, "winners": winners,
                        "result_hash": rhash.hex(), "published_result_hash": published, "matches": matches}
        return out

    def published(self, cid: str, ours: bytes, status: str, wait_s: float) -> tuple[str | None, bool | None]:
        deadline = time.monotonic() + wait_s
        while True:
            tally = get_json(f"{self.node}/api/v1/campaigns/{cid}/tally")
            if tally.get("result_status") == "computing" and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            if tally.get("result_status") == "computing":
                return None, None
            published = tally.get("result_hash")
            if status == "open" and tally.get("height") != self.height:
                return published, None
            if published != ours.hex():
                raise Fault(f"campaign {cid}: published result hash {published} differs from the replayed "
                            f"{ours.hex()}")
            return published, True


def run(genesis_text: str, node: str, *, wait_s: float = 30.0) -> tuple[int, dict[str, Any]]:
    started = time.monotonic()
    v: Verifier | None = None
    report: dict[str, Any] = {"ok": False, "chain_id": None, "height": 0, "blocks": 0, "txs": 0, "votes": 0,
                              "first_bad_height": None, "error": None, "campaigns": {},
                              # TRANSPARENCY §3: the height a checkpointed run continued from; this
                              # verifier keeps no checkpoint, so it always replays from genesis
                              "resumed_from": 0}
    code = 0
    try:
        v = Verifier(genesis_text, node)
        report["chain_id"] = v.chain_id
        v.check_node_genesis()
        v.apply_genesis()
        for _ in range(5):   # an open campaign's tally moved on: replay the new blocks, compare again
            v.run_blocks()
            campaigns = v.results(wait_s=wait_s)
            if all(c["matches"] is not None or c["status"] == "closed" for c in campaigns.values()):
                break
        report["campaigns"] = campaigns
        report["ok"] = True
    except Fault as exc:
        code = 1
        report["error"] = str(exc)
        report["first_bad_height"] = exc.height
        if v is not None and exc.height:
            # the campaigns as they stood after the last block that checked (the failed block may
            # have been applied in part): replay again up to it
            good = Verifier(genesis_text, node)
            try:
                good.apply_genesis()
                good.run_blocks(until=exc.height - 1)
                report["campaigns"] = good.unpublished_results()
            except (Fault, Unreachable):
                pass
    except Unreachable as exc:
        code = 3
        report["error"] = str(exc)
    except (ValueError, KeyError, TypeError) as exc:
        code = 2
        report["error"] = f"cannot read the genesis file: {exc}"
    if v is not None:
        report.update(height=v.height, blocks=v.height, txs=v.txs, votes=v.votes)
        report["app_hash"] = v.app_hash.hex() if v.app_hash else None
    seconds = time.monotonic() - started
    report["seconds"] = round(seconds, 3)
    report["votes_per_second"] = round(report["votes"] / seconds, 1) if seconds > 0 else 0.0
    return code, report


