"""Transactions: PROTOCOL §2 (envelope, decoding order), §2.2/§14.1-§14.2/§15.1/§16 body schemas."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .codec import dec, enc, sha256

MAX_TX_BYTES = 65_536
ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
SET_TYPES = ("choose-1", "approval", "knapsack")
SCORED_TYPES = ("cumulative", "ordinal")
RULES = ("top-n", "greedy", "greedy-no-skip", "equal-shares")
COUNTING_RULES = ("top-n", "greedy", "greedy-no-skip")
KINDS = ("campaign.create", "initiative.submit", "initiative.review", "voters.register", "vote.cast",
         "campaign.close", "progress.report", "validators.update", "keys.rotate", "protocol.upgrade",
         "tokens.issued")
# Transactions: §2 decoding and body schemas


class Bad(Exception):
    """A body or envelope fails its schema (a DecodeError in the docs)."""


def _is_uint(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2 ** 63


def _uint(x: Any, what: str) -> int:
    if not _is_uint(x):
        raise Bad(f"{what}: not a uint")
    return int(x)


def _id(x: Any, what: str) -> str:
    if not isinstance(x, str) or not ID_RE.fullmatch(x):
        raise Bad(f"{what}: not an id")
    return x


def _text(x: Any, n: int, what: str, *, plus: bool = False) -> str:
    if not isinstance(x, str) or len(x) > n:
        raise Bad(f"{what}: not text({n})")
    if plus and (x == "" or x.isspace()):
        raise Bad(f"{what}: must hold a non-whitespace character")
    return x


def _bin(x: Any, n: int, what: str, *, optional: bool = False) -> bytes:
    if not isinstance(x, bytes) or not (len(x) == n or (optional and len(x) == 0)):
        raise Bad(f"{what}: not bin({n})")
    return x


def _arr(x: Any, lo: int, hi: int, what: str) -> list[Any]:
    if not isinstance(x, list) or not lo <= len(x) <= hi:
        raise Bad(f"{what}: not an array of {lo}..{hi}")
    return x


def _one_of(x: Any, options: tuple[str, ...], what: str) -> str:
    if not isinstance(x, str) or x not in options:
        raise Bad(f"{what}: not one of {options}")
    return x


def check_ballot_spec(b: Any) -> None:
    if not isinstance(b, list) or not b:
        raise Bad("ballot: not an array")
    kind = _one_of(b[0], SET_TYPES + SCORED_TYPES, "ballot.type")
    sizes = {"choose-1": 3, "approval": 3, "knapsack": 4, "cumulative": 6, "ordinal": 4}
    if len(b) != sizes[kind]:
        raise Bad("ballot: wrong length for its type")
    lo, hi = _uint(b[1], "min_choices"), _uint(b[2], "max_choices")
    if kind == "choose-1" and (lo, hi) != (1, 1):
        raise Bad("choose-1 has min = max = 1")
    if not 1 <= lo <= hi <= 64:
        raise Bad("1 <= min_choices <= max_choices <= 64")
    if kind == "knapsack":
        _uint(b[3], "max_sum_cost")
    elif kind == "cumulative":
        mn, mx, mp = (_uint(v, "points") for v in b[3:6])
        if max(mn, mx, mp) > 1_000_000 or mx < 1 or mn > mx or mp > mx or mx < lo or mn > hi * (mp or mx):
            raise Bad("cumulative limits")
    elif kind == "ordinal":
        rp = _arr(b[3], 1, 64, "rank_points")
        if any(not _is_uint(p) or not 1 <= p <= 1_000_000 for p in rp) or len(rp) != hi:
            raise Bad("rank_points")
        if any(rp[i] < rp[i + 1] for i in range(len(rp) - 1)):
            raise Bad("rank_points must not increase")


def check_certification_key(n: Any) -> None:
    """§16.1: an RSA modulus, big-endian, 384..512 bytes, top bit set, odd (e is always 65537)."""
    if not isinstance(n, bytes) or not 384 <= len(n) <= 512 or n[0] < 0x80 or n[-1] % 2 == 0:
        raise Bad("certification_key: not an odd 3072..4096-bit modulus in whole bytes")


def check_body(kind: str, body: Any) -> None:
    if not isinstance(body, list):
        raise Bad("body: not an array")
    if kind == "campaign.create":
        if len(body) not in (16, 17):
            raise Bad("campaign.create: 16 or 17 fields")
        _id(body[0], "campaign_id")
        _text(body[1], 200, "title", plus=True)
        _one_of(body[2], ("adult", "children"), "track")
        districts = _arr(body[3], 1, 512, "districts")
        seen: set[str] = set()
        for d in districts:
            if not isinstance(d, list) or len(d) != 3:
                raise Bad("district: 3 fields")
            seen.add(_id(d[0], "district_id"))
            _text(d[1], 200, "district name", plus=True)
            _uint(d[2], "district budget")
        if len(seen) != len(districts):
            raise Bad("district ids repeat")
        check_ballot_spec(body[4])
        r = body[5]
        if not isinstance(r, list) or len(r) != 5:
            raise Bad("rule: 5 fields")
        name = _one_of(r[0], RULES, "rule.name")
        scope = _one_of(r[1], ("district", "campaign"), "rule.scope")
        top_n, _, budget = _uint(r[2], "top_n"), _uint(r[3], "min_votes"), _uint(r[4], "budget")
        if top_n and name != "top-n":
            raise Bad("top_n only for top-n")
        if scope == "campaign" and name != "top-n" and budget == 0:
            raise Bad("a campaign-scope budget rule needs a budget")
        if b := body[4]:
            if b[0] == "knapsack" and b[3] == 0 and any(d[2] == 0 for d in districts):
                raise Bad("knapsack cap 0 needs district budgets")
        if _uint(body[6], "min_cost") > _uint(body[7], "max_cost"):
            raise Bad("min_cost > max_cost")
        for c in _arr(body[8], 0, 64, "categories"):
            _text(c, 64, "category", plus=True)
        times = [_uint(x, "time") for x in body[9:13]]
        if not times[0] <= times[1] <= times[2] < times[3]:
            raise Bad("schedule out of order")
        _bin(body[13], 32, "gateway")
        _uint(body[14], "registration_cap")
        _one_of(body[15], ("district", "campaign"), "ballots_per_voter")
        if len(body) == 17:
            check_certification_key(body[16])
    elif kind == "initiative.submit":
        if len(body) != 8:
            raise Bad("initiative.submit: 8 fields")
        _id(body[0], "campaign_id"), _id(body[1], "initiative_id"), _id(body[2], "district_id")
        _text(body[3], 300, "title", plus=True)
        _text(body[4], 64, "category", plus=True)
        if _uint(body[5], "cost") == 0:
            raise Bad("cost must be > 0")
        _text(body[6], 4000, "summary")
        _bin(body[7], 32, "document_hash", optional=True)
    elif kind == "initiative.review":
        if len(body) != 4:
            raise Bad("initiative.review: 4 fields")
        _id(body[0], "campaign_id"), _id(body[1], "initiative_id")
        if not isinstance(body[2], bool):
            raise Bad("approve: not a bool")
        _text(body[3], 1000, "reason", plus=not body[2])
    elif kind == "voters.register":
        if len(body) != 2:
            raise Bad("voters.register: 2 fields")
        _id(body[0], "campaign_id")
        keys = _arr(body[1], 1, 1024, "voter_keys")
        for k in keys:
            _bin(k, 32, "voter key")
        if len(set(keys)) != len(keys):
            raise Bad("voter keys repeat")
    elif kind == "vote.cast":
        if len(body) not in (3, 4, 5):
            raise Bad("vote.cast: 3, 4 or 5 fields")
        _id(body[0], "campaign_id"), _id(body[1], "district_id")
        choices = [_id(c, "choice") for c in _arr(body[2], 1, 64, "choices")]
        scored = len(body) == 4 or (len(body) == 5 and _arr(body[3], 0, 64, "points") != [])
        if not scored:
            if any(choices[i].encode() >= choices[i + 1].encode() for i in range(len(choices) - 1)):
                raise Bad("choices: not distinct and sorted")
        else:
            points = _arr(body[3], 1, 64, "points")
            if len(points) != len(choices) or any(not _is_uint(p) or not 1 <= p <= 1_000_000 for p in points):
                raise Bad("points")
            keys = [(-p, c.encode()) for p, c in zip(points, choices)]
            if any(keys[i] >= keys[i + 1] for i in range(len(keys) - 1)) or len(set(choices)) != len(choices):
                raise Bad("scored ballot: not in canonical order")
        if len(body) == 5:      # §16.3: [token_campaign_id, token]
            token = body[4]
            if not isinstance(token, list) or len(token) != 2:
                raise Bad("token: not [campaign_id, token]")
            _id(token[0], "token_campaign_id")
            if not isinstance(token[1], bytes) or not 384 <= len(token[1]) <= 512:
                raise Bad("token: not bin(384..512)")
    elif kind == "campaign.close":
        if len(body) != 2:
            raise Bad("campaign.close: 2 fields")
        _id(body[0], "campaign_id")
        _text(body[1], 1000, "reason", plus=True)
    elif kind == "progress.report":
        if len(body) != 7:
            raise Bad("progress.report: 7 fields")
        _id(body[0], "campaign_id"), _id(body[1], "initiative_id")
        _one_of(body[2], ("contract", "works", "done", "cancelled"), "stage")
        if _uint(body[3], "percent") > 100:
            raise Bad("percent > 100")
        _uint(body[4], "spent")
        _text(body[5], 2000, "note")
        _bin(body[6], 32, "evidence_hash", optional=True)
    elif kind == "validators.update":
        if len(body) != 3:
            raise Bad("validators.update: 3 fields")
        _text(body[0], 1000, "reason", plus=True)
        add, remove = _arr(body[1], 0, 64, "add"), _arr(body[2], 0, 64, "remove")
        if not add and not remove:
            raise Bad("nothing to change")
        for v in add:
            if not isinstance(v, list) or len(v) != 4:
                raise Bad("validator: 4 fields")
            _id(v[0], "name"), _text(v[1], 200, "operator", plus=True), _bin(v[2], 32, "public_key")
            if not isinstance(v[3], str) or len(v[3]) > 200:
                raise Bad("url")
        for what, idx in (("names", 0), ("keys", 2)):
            vals = [bytes(v[idx]) if isinstance(v[idx], bytes) else v[idx] for v in add]
            if len(set(vals)) != len(vals):
                raise Bad(f"added {what} repeat")
        urls = [v[3] for v in add if v[3]]
        if len(set(urls)) != len(urls):
            raise Bad("added urls repeat")
        names = [_id(r, "remove") for r in remove]
        if len(set(names)) != len(names):
            raise Bad("removed names repeat")
    elif kind == "keys.rotate":
        if len(body) != 6:
            raise Bad("keys.rotate: 6 fields")
        role = _one_of(body[0], ("committee", "district", "gateway"), "role")
        _id(body[1], "subject")
        old, new = _bin(body[2], 32, "old", optional=True), _bin(body[3], 32, "new", optional=True)
        threshold = _uint(body[4], "threshold")
        _text(body[5], 1000, "reason", plus=True)
        if role == "committee" and threshold < 1:
            raise Bad("committee threshold >= 1")
        if role != "committee" and (threshold != 0 or (not old and not new)):
            raise Bad("district/gateway rotation")
        if old and new and old == new:
            raise Bad("new key equals old")
    elif kind == "tokens.issued":       # §16.4
        if len(body) != 3:
            raise Bad("tokens.issued: 3 fields")
        _id(body[0], "campaign_id")
        _uint(body[1], "batch")
        if not 1 <= _uint(body[2], "count") <= 65_536:
            raise Bad("count: not 1..65536")
    elif kind == "protocol.upgrade":
        if len(body) != 3:
            raise Bad("protocol.upgrade: 3 fields")
        if _uint(body[0], "version") < 2 or _uint(body[1], "height") < 1:
            raise Bad("version >= 2, height >= 1")
        _text(body[2], 1000, "reason", plus=True)


@dataclass
class Tx:
    raw: bytes
    hash: bytes
    kind: str
    chain_id: str
    body: list[Any]
    signers: list[bytes]   # ascending
    signatures: list[bytes]

    def signing_bytes(self) -> bytes:
        return b"veche/v1/" + self.kind.encode() + self.chain_id.encode() + enc(self.body)


def decode_tx(raw: bytes, chain_id: str) -> Tx:
    if len(raw) > MAX_TX_BYTES:
        raise Bad("too_large")
    try:
        v = dec(raw)
    except ValueError as exc:
        raise Bad(str(exc)) from None
    if not isinstance(v, list) or len(v) != 4:
        raise Bad("envelope: not a 4-element array")
    kind, cid, body, sigs = v
    if kind not in KINDS:
        raise Bad(f"unknown_kind {kind!r}")
    if cid != chain_id:
        raise Bad(f"wrong_chain {cid!r}")
    check_body(kind, body)
    pairs = _arr(sigs, 1, 16, "signatures")
    signers, signatures = [], []
    for p in pairs:
        if not isinstance(p, list) or len(p) != 2:
            raise Bad("signature pair")
        signers.append(_bin(p[0], 32, "public_key"))
        signatures.append(_bin(p[1], 64, "signature"))
    if any(signers[i] >= signers[i + 1] for i in range(len(signers) - 1)):
        raise Bad("signature pairs not in strictly ascending key order")
    return Tx(raw, sha256(raw), kind, cid, body, signers, signatures)


