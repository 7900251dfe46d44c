#!/usr/bin/env python3
"""An independent Veche chain verifier, written from docs/ alone (PROTOCOL.md, TRANSPARENCY.md §7,
GENESIS.md, RULES.md, NODE.md §7) — it shares no code with the project.

    python3 scripts/outsider/verify_chain.py --genesis genesis.json --node URL [--json]

It trusts only the genesis file: it replays every block served by ``GET /api/v1/blocks/raw``
(block links, Merkle roots, commit certificates against the validator set in force at each height,
every transaction signature, the state machine, the app hash chain), recomputes every campaign's
tally and winners, and compares each result hash with the node's published tally. Its ``--json``
output has the keys of ``veche verify --json`` (docs/TRANSPARENCY.md §3), plus ``app_hash``.

Dependencies: the Python standard library, ``msgpack`` (decoding only; every value is re-encoded
by this file's own canonical encoder and compared) and ``cryptography`` (Ed25519).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, NoReturn

import msgpack
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ZERO32 = b"\x00" * 32
SET_CHANGE_DELAY = 2
MAX_TX_BYTES = 65_536
MAX_BLOCK_TXS = 20_000
MAX_BLOCK_BYTES = 8 * 1024 * 1024
ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
SET_TYPES = ("choose-1", "approval", "knapsack")
SCORED_TYPES = ("cumulative", "ordinal")
RULES = ("top-n", "greedy", "greedy-no-skip", "equal-shares")
COUNTING_RULES = ("top-n", "greedy", "greedy-no-skip")
KINDS = ("campaign.create", "initiative.submit", "initiative.review", "voters.register", "vote.cast",
         "campaign.close", "progress.report", "validators.update", "keys.rotate", "protocol.upgrade")


class Fault(Exception):
    """A check failed. ``height`` is the block it failed in (None: not a block's fault)."""

    def __init__(self, message: str, height: int | None = None) -> None:
        super().__init__(message)
        self.height = height


class Unreachable(Exception):
    """The node did not answer, or its answers are not the API."""


# --------------------------------------------------------------------------------------------
# §1 canonical MessagePack


def enc(value: Any) -> bytes:
    out = bytearray()
    _enc(value, out)
    return bytes(out)


def _enc(v: Any, out: bytearray) -> None:
    if v is None:
        out.append(0xC0)
    elif v is True:
        out.append(0xC3)
    elif v is False:
        out.append(0xC2)
    elif isinstance(v, int):
        if v >= 0:
            if v <= 0x7F:
                out.append(v)
            elif v <= 0xFF:
                out += b"\xcc" + v.to_bytes(1, "big")
            elif v <= 0xFFFF:
                out += b"\xcd" + v.to_bytes(2, "big")
            elif v <= 0xFFFFFFFF:
                out += b"\xce" + v.to_bytes(4, "big")
            elif v < 2 ** 64:
                out += b"\xcf" + v.to_bytes(8, "big")
            else:
                raise ValueError("integer too large")
        elif v >= -32:
            out.append(v & 0xFF)
        elif v >= -128:
            out += b"\xd0" + v.to_bytes(1, "big", signed=True)
        elif v >= -32768:
            out += b"\xd1" + v.to_bytes(2, "big", signed=True)
        elif v >= -(2 ** 31):
            out += b"\xd2" + v.to_bytes(4, "big", signed=True)
        elif v >= -(2 ** 63):
            out += b"\xd3" + v.to_bytes(8, "big", signed=True)
        else:
            raise ValueError("integer too small")
    elif isinstance(v, str):
        b = v.encode("utf-8")
        n = len(b)
        if n < 32:
            out.append(0xA0 | n)
        elif n < 256:
            out += b"\xd9" + n.to_bytes(1, "big")
        elif n < 65536:
            out += b"\xda" + n.to_bytes(2, "big")
        else:
            out += b"\xdb" + n.to_bytes(4, "big")
        out += b
    elif isinstance(v, (bytes, bytearray)):
        n = len(v)
        if n < 256:
            out += b"\xc4" + n.to_bytes(1, "big")
        elif n < 65536:
            out += b"\xc5" + n.to_bytes(2, "big")
        else:
            out += b"\xc6" + n.to_bytes(4, "big")
        out += v
    elif isinstance(v, list):
        n = len(v)
        if n < 16:
            out.append(0x90 | n)
        elif n < 65536:
            out += b"\xdc" + n.to_bytes(2, "big")
        else:
            out += b"\xdd" + n.to_bytes(4, "big")
        for item in v:
            _enc(item, out)
    else:
        raise ValueError(f"not an allowed type: {type(v).__name__}")


def dec(data: bytes, *, big: bool = False) -> Any:
    """Strict decoding: the input must be exactly the canonical encoding of its value."""
    limit = 2 ** 31 if big else 65_536
    try:
        value = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True,
                                max_str_len=65_536, max_bin_len=limit, max_array_len=limit,
                                max_map_len=0, max_ext_len=0)
        again = enc(value)
    except Exception as exc:  # noqa: BLE001 - any decoder complaint is "not canonical"
        raise ValueError(f"not canonical msgpack ({exc.__class__.__name__}: {exc})") from None
    if again != data:
        raise ValueError("not canonical msgpack (a longer form than the shortest)")
    return value


def u64(x: int) -> bytes:
    return x.to_bytes(8, "big")


def u32(x: int) -> bytes:
    return x.to_bytes(4, "big")


def sha256(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def ed25519_ok(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        return True
    except (InvalidSignature, ValueError):
        return False


# --------------------------------------------------------------------------------------------
# §6 Merkle tree (RFC 6962)


def merkle_root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return sha256(b"")
    level = [sha256(b"\x00", leaf) for leaf in leaves]
    return _mth(level)


def _mth(hashes: list[bytes]) -> bytes:
    n = len(hashes)
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return sha256(b"\x01", _mth(hashes[:k]), _mth(hashes[k:]))


# --------------------------------------------------------------------------------------------
# GENESIS §1: strict JSON and RFC 8785


def load_json_strict(text: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise ValueError(f"repeated key {k!r}")
            out[k] = v
        return out

    def no_float(s: str) -> NoReturn:
        raise ValueError(f"a float is not allowed: {s}")

    value = json.loads(text, object_pairs_hook=pairs, parse_float=no_float, parse_constant=no_float)
    _check_json_ints(value)
    return value


def _check_json_ints(v: Any) -> None:
    if isinstance(v, bool):
        return
    if isinstance(v, int) and abs(v) > 2 ** 53 - 1:
        raise ValueError(f"integer beyond ±(2^53 - 1): {v}")
    if isinstance(v, list):
        for x in v:
            _check_json_ints(x)
    if isinstance(v, dict):
        for x in v.values():
            _check_json_ints(x)
    if isinstance(v, str):
        v.encode("utf-8")   # an unpaired surrogate has no UTF-8 form


def jcs(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return _jcs_str(v)
    if isinstance(v, list):
        return "[" + ",".join(jcs(x) for x in v) + "]"
    if isinstance(v, dict):
        items = sorted(v.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(_jcs_str(k) + ":" + jcs(x) for k, x in items) + "}"
    raise ValueError(f"not JSON: {type(v).__name__}")


_JCS_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _jcs_str(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in _JCS_ESCAPES:
            out.append(_JCS_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def genesis_hash(document: Any) -> bytes:
    return sha256(jcs(document).encode("utf-8"))


RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-]\d{2}:\d{2})")


def _days_from_civil(y: int, m: int, d: int) -> int:
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def time_ms(value: Any) -> int:
    """GENESIS §3: unix ms as an integer, or RFC 3339 text with an offset."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = RFC3339.fullmatch(value) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"not a time: {value!r}")
    y, mo, d, hh, mi, ss = (int(m.group(i)) for i in range(1, 7))
    frac = int((m.group(7) or "").ljust(3, "0"))
    tz = m.group(8)
    offset = 0 if tz == "Z" else (1 if tz[0] == "+" else -1) * (int(tz[1:3]) * 60 + int(tz[4:6])) * 60_000
    ms = _days_from_civil(y, mo, d) * 86_400_000 + ((hh * 60 + mi) * 60 + ss) * 1000 + frac - offset
    if ms < 0:
        raise ValueError("before 1970")
    return ms


# --------------------------------------------------------------------------------------------
# Rosters (PROTOCOL §15.2)


@dataclass
class Roster:
    validators: list[list[Any]]          # [name, operator, public_key, url]
    committee: list[list[Any]]           # [member_id, public_key]
    threshold: int
    district_operators: list[list[Any]]  # [district_id, public_key]
    gateways: list[list[Any]]            # [name, public_key]

    def encode_value(self) -> list[Any]:
        return [[list(v) for v in self.validators], [list(c) for c in self.committee], self.threshold,
                [list(d) for d in self.district_operators], [list(g) for g in self.gateways]]

    def copy(self) -> Roster:
        return Roster([list(v) for v in self.validators], [list(c) for c in self.committee], self.threshold,
                      [list(d) for d in self.district_operators], [list(g) for g in self.gateways])

    def validator_keys(self) -> list[bytes]:
        return [bytes(v[2]) for v in self.validators]

    def committee_keys(self) -> set[bytes]:
        return {bytes(c[1]) for c in self.committee}

    def operator_keys(self, district: str) -> set[bytes]:
        return {bytes(k) for d, k in self.district_operators if d == district}

    def gateway_key(self, name: str) -> bytes | None:
        for n, k in self.gateways:
            if n == name:
                return bytes(k)
        return None

    def gateway_name(self, key: bytes) -> str | None:
        for n, k in self.gateways:
            if bytes(k) == key:
                return str(n)
        return None

    def all_role_keys(self) -> dict[bytes, str]:
        roles: dict[bytes, str] = {}
        for v in self.validators:
            roles[bytes(v[2])] = "validator"
        for c in self.committee:
            roles[bytes(c[1])] = "committee"
        for d in self.district_operators:
            roles[bytes(d[1])] = "district"
        for g in self.gateways:
            roles[bytes(g[1])] = "gateway"
        return roles


def quorum(n: int) -> int:
    return (2 * n) // 3 + 1


# --------------------------------------------------------------------------------------------
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


def check_body(kind: str, body: Any) -> None:
    if not isinstance(body, list):
        raise Bad("body: not an array")
    if kind == "campaign.create":
        if len(body) != 16:
            raise Bad("campaign.create: 16 fields")
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
        if len(body) not in (3, 4):
            raise Bad("vote.cast: 3 or 4 fields")
        _id(body[0], "campaign_id"), _id(body[1], "district_id")
        choices = [_id(c, "choice") for c in _arr(body[2], 1, 64, "choices")]
        if len(body) == 3:
            if any(choices[i].encode() >= choices[i + 1].encode() for i in range(len(choices) - 1)):
                raise Bad("choices: not distinct and sorted")
        else:
            points = _arr(body[3], 1, 64, "points")
            if len(points) != len(choices) or any(not _is_uint(p) or not 1 <= p <= 1_000_000 for p in points):
                raise Bad("points")
            keys = [(-p, c.encode()) for p, c in zip(points, choices)]
            if any(keys[i] >= keys[i + 1] for i in range(len(keys) - 1)) or len(set(choices)) != len(choices):
                raise Bad("scored ballot: not in canonical order")
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


# --------------------------------------------------------------------------------------------
# State (§4) and the state machine (§3, §14, §15)


@dataclass
class Campaign:
    spec: list[Any]
    status: str = "open"
    created_height: int = 0
    closed_height: int = 0
    closed_time_ms: int = 0
    close_reason: str = ""
    registered: int = 0
    total_ballots: int = 0
    initiative_count: int = 0
    gateway_name: str = ""
    initiatives: dict[str, list[Any]] = field(default_factory=dict)   # id -> [submit, status, reason, h, submitter]
    votes: dict[str, int] = field(default_factory=dict)
    points: dict[str, int] = field(default_factory=dict)
    voters: set[bytes] = field(default_factory=set)
    slots: set[bytes] = field(default_factory=set)
    ballots: list[tuple[str, list[str], list[int] | None]] = field(default_factory=list)
    progress: dict[str, int] = field(default_factory=dict)
    result: tuple[list[str], bytes] | None = None

    @property
    def cid(self) -> str:
        return str(self.spec[0])

    def record(self) -> bytes:
        return enc([self.spec, self.status, self.created_height, self.closed_height, self.closed_time_ms,
                    self.close_reason, self.registered, self.total_ballots, self.initiative_count])

    def district(self, did: str) -> list[Any] | None:
        for d in self.spec[3]:
            if d[0] == did:
                return list(d)
        return None

    @property
    def ballot(self) -> list[Any]:
        return list(self.spec[4])

    @property
    def scored(self) -> bool:
        return self.spec[4][0] in SCORED_TYPES


class Reject(Exception):
    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


class State:
    def __init__(self, chain_id: str, genesis_roster: Roster) -> None:
        self.chain_id = chain_id
        self.genesis_roster = genesis_roster
        self.campaigns: dict[str, Campaign] = {}
        self.committed: set[bytes] = set()
        self.rosters: dict[int, tuple[int, Roster, list[list[Any]]]] = {}   # from_height -> record
        self.upgrades: dict[int, tuple[int, int, bytes]] = {}              # height -> (version, committed, tx)
        self.changes: dict[bytes, bytes] = {}
        self.height = 0
        self.time = 0

    # ---- rosters and versions
    def roster_at(self, h: int) -> Roster:
        best = max((f for f in self.rosters if f <= h), default=None)
        return self.genesis_roster if best is None else self.rosters[best][1]

    def latest_roster(self) -> Roster:
        if not self.rosters:
            return self.genesis_roster
        return self.rosters[max(self.rosters)][1]

    def version_at(self, h: int) -> int:
        best = max((f for f in self.upgrades if f <= h), default=None)
        return 1 if best is None else self.upgrades[best][0]

    # ---- writes
    def put(self, key: bytes, value: bytes) -> None:
        self.changes[key] = value

    def put_campaign(self, c: Campaign) -> None:
        self.put(b"S/c/" + c.cid.encode(), c.record())

    def put_initiative(self, c: Campaign, iid: str) -> None:
        self.put(b"S/i/" + c.cid.encode() + b"/" + iid.encode(), enc(c.initiatives[iid]))

    def take_changes(self) -> bytes:
        items = sorted(self.changes.items())
        self.changes = {}
        return enc([[k, v] for k, v in items])

    # ---- signer roles (§3.1)
    def is_committee(self, tx: Tx, roster: Roster) -> bool:
        keys = roster.committee_keys()
        return len(tx.signers) == roster.threshold and all(s in keys for s in tx.signers)

    def is_operator(self, tx: Tx, roster: Roster, district: str) -> bool:
        return len(tx.signers) == 1 and tx.signers[0] in roster.operator_keys(district)

    def campaign(self, cid: str) -> Campaign:
        c = self.campaigns.get(cid)
        if c is None:
            raise Reject("unknown_campaign", cid)
        return c

    def open_campaign(self, cid: str) -> Campaign:
        c = self.campaign(cid)
        if c.status != "open":
            raise Reject("campaign_closed", cid)
        return c

    # ---- blocks (§3.2)
    def begin_block(self, h: int, t: int) -> None:
        self.height, self.time = h, t
        for cid in sorted(self.campaigns, key=lambda s: s.encode()):
            c = self.campaigns[cid]
            if c.status == "open" and c.spec[12] <= t:
                self.close(c, "voting window ended")

    def apply(self, tx: Tx, seen_in_block: set[bytes], *, genesis: bool = False) -> None:
        if tx.chain_id != self.chain_id:
            raise Reject("wrong_chain")
        if tx.hash in self.committed or tx.hash in seen_in_block:
            raise Reject("replay")
        if not genesis:
            msg = tx.signing_bytes()
            for pk, sig in zip(tx.signers, tx.signatures):
                if not ed25519_ok(pk, sig, msg):
                    raise Reject("bad_signature", f"signature by {pk.hex()}")
        handler = getattr(self, "_" + tx.kind.replace(".", "_"))
        handler(tx, genesis)

    # ---- §3.3 rules
    def _campaign_create(self, tx: Tx, genesis: bool) -> None:
        b = tx.body
        roster = self.roster_at(self.height)
        if not self.is_committee(tx, roster):
            raise Reject("permission_denied")
        if b[0] in self.campaigns:
            raise Reject("duplicate")
        gw = roster.gateway_name(bytes(b[13]))
        if gw is None:
            raise Reject("unknown_gateway")
        if not b[12] > self.time:
            raise Reject("outside_window")
        c = Campaign(spec=b, created_height=self.height, gateway_name=gw)
        self.campaigns[c.cid] = c
        self.put_campaign(c)

    def _initiative_submit(self, tx: Tx, genesis: bool) -> None:
        b = tx.body
        c = self.open_campaign(b[0])
        roster = self.roster_at(self.height)
        by_committee = self.is_committee(tx, roster)
        if not by_committee and not self.is_operator(tx, roster, b[2]):
            raise Reject("permission_denied")
        if c.district(b[2]) is None:
            raise Reject("unknown_district")
        if not genesis and not (c.spec[9] <= self.time < c.spec[10] and self.time < c.spec[11]):
            raise Reject("outside_window")
        if b[1] in c.initiatives:
            raise Reject("duplicate")
        if not c.spec[6] <= b[5] <= c.spec[7]:
            raise Reject("cost_out_of_range")
        if c.spec[8] and b[4] not in c.spec[8]:
            raise Reject("unknown_category")
        c.initiatives[b[1]] = [b, "approved" if by_committee else "submitted", "", self.height, tx.signers[0]]
        c.initiative_count += 1
        self.put_initiative(c, b[1])
        self.put_campaign(c)

    def _initiative_review(self, tx: Tx, genesis: bool) -> None:
        b = tx.body
        if not self.is_committee(tx, self.roster_at(self.height)):
            raise Reject("permission_denied")
        c = self.open_campaign(b[0])
        if not self.time < c.spec[11]:
            raise Reject("outside_window")
        if b[1] not in c.initiatives:
            raise Reject("unknown_initiative")
        rec = c.initiatives[b[1]]
        rec[1] = "approved" if b[2] else "rejected"
        rec[2] = b[3]
        self.put_initiative(c, b[1])

    def _voters_register(self, tx: Tx, genesis: bool) -> None:
        cid, keys = tx.body
        c = self.open_campaign(cid)
        current = self.roster_at(self.height).gateway_key(c.gateway_name)
        if len(tx.signers) != 1 or current is None or tx.signers[0] != current:
            raise Reject("permission_denied")
        if c.registered + len(keys) > c.spec[14]:
            raise Reject("registration_cap")
        if any(bytes(k) in c.voters for k in keys):
            raise Reject("duplicate")
        for k in keys:
            c.voters.add(bytes(k))
            self.put(b"S/k/" + cid.encode() + b"/" + bytes(k), b"")
        c.registered += len(keys)
        self.put_campaign(c)

    def _vote_cast(self, tx: Tx, genesis: bool) -> None:
        b = tx.body
        cid, did, choices = b[0], b[1], b[2]
        points: list[int] | None = b[3] if len(b) == 4 else None
        c = self.campaign(cid)
        if c.status != "open" or not c.spec[11] <= self.time < c.spec[12]:
            raise Reject("outside_window")
        if len(tx.signers) != 1:
            raise Reject("permission_denied")
        voter = tx.signers[0]
        if voter not in c.voters:
            raise Reject("not_registered")
        district = c.district(did)
        if district is None:
            raise Reject("unknown_district")
        ballot = c.ballot
        if (points is None) != (ballot[0] in SET_TYPES) or not ballot[1] <= len(choices) <= ballot[2]:
            raise Reject("bad_ballot")
        for ch in choices:
            rec = c.initiatives.get(ch)
            if rec is None or rec[1] != "approved" or rec[0][2] != did:
                raise Reject("invalid_choice", ch)
        if ballot[0] == "knapsack":
            cap = ballot[3] or district[2]
            if sum(c.initiatives[ch][0][5] for ch in choices) > cap:
                raise Reject("cost_cap")
        elif ballot[0] == "cumulative":
            assert points is not None
            if ballot[5] > 0 and any(p > ballot[5] for p in points):
                raise Reject("points_max")
            if not ballot[3] <= sum(points) <= ballot[4]:
                raise Reject("points_total")
        elif ballot[0] == "ordinal":
            if points != ballot[3][: len(choices)]:
                raise Reject("rank_points")
        slot = cid.encode() + b"/" + voter + b"/" + (did.encode() if c.spec[15] == "district" else b"")
        if slot in c.slots:
            raise Reject("double_vote")
        c.slots.add(slot)
        self.put(b"S/b/" + slot, enc([tx.hash, choices] if points is None else [tx.hash, choices, points]))
        for i, ch in enumerate(choices):
            c.votes[ch] = c.votes.get(ch, 0) + 1
            self.put(b"S/t/" + cid.encode() + b"/" + ch.encode(), u64(c.votes[ch]))
            if points is not None:
                c.points[ch] = c.points.get(ch, 0) + points[i]
                self.put(b"S/s/" + cid.encode() + b"/" + ch.encode(), u64(c.points[ch]))
        c.ballots.append((did, list(choices), list(points) if points is not None else None))
        c.total_ballots += 1
        self.put_campaign(c)

    def _campaign_close(self, tx: Tx, genesis: bool) -> None:
        if not self.is_committee(tx, self.roster_at(self.height)):
            raise Reject("permission_denied")
        self.close(self.open_campaign(tx.body[0]), tx.body[1])

    def _progress_report(self, tx: Tx, genesis: bool) -> None:
        b = tx.body
        c = self.campaign(b[0])
        rec = c.initiatives.get(b[1])
        if rec is None or rec[1] != "approved":
            raise Reject("unknown_initiative")
        roster = self.roster_at(self.height)
        if not self.is_committee(tx, roster) and not self.is_operator(tx, roster, rec[0][2]):
            raise Reject("permission_denied")
        if c.status != "closed":
            raise Reject("campaign_open")
        seq = c.progress.get(b[1], 0)
        c.progress[b[1]] = seq + 1
        self.put(b"S/p/" + b[0].encode() + b"/" + b[1].encode() + b"/" + u32(seq),
                 enc([b, self.height, self.time, tx.signers[0]]))

    # ---- §15 governance
    def _pending_change(self, tx: Tx) -> Roster:
        if not self.is_committee(tx, self.roster_at(self.height)):
            raise Reject("permission_denied")
        return self.latest_roster().copy()

    def _record_change(self, tx: Tx, new: Roster) -> None:
        from_height = self.height + SET_CHANGE_DELAY
        previous = self.rosters.get(from_height)
        made = list(previous[2]) if previous and previous[0] == self.height else []
        made.append([tx.kind, tx.hash])
        self.rosters[from_height] = (self.height, new, made)
        self.put(b"S/a/" + u64(from_height), enc([self.height, new.encode_value(), made]))

    def _validators_update(self, tx: Tx, genesis: bool) -> None:
        _, add, remove = tx.body
        roster = self._pending_change(tx)
        names = [v[0] for v in roster.validators]
        for r in remove:
            if r not in names:
                raise Reject("unknown_validator", r)
        new_set = [v for v in roster.validators if v[0] not in remove] + [list(v) for v in add]
        if len({v[0] for v in new_set}) != len(new_set):
            raise Reject("duplicate_name")
        if len({bytes(v[2]) for v in new_set}) != len(new_set):
            raise Reject("duplicate_key")
        urls = [v[3] for v in new_set if v[3]]
        if len(set(urls)) != len(urls):
            raise Reject("duplicate_url")
        others = {k for k, role in roster.all_role_keys().items() if role != "validator"}
        if any(bytes(v[2]) in others for v in add):
            raise Reject("duplicate_key")
        if len(new_set) < 4:
            raise Reject("too_few_validators")
        if len(new_set) > 128:
            raise Reject("too_many_validators")
        before = set(self.roster_at(self.height + SET_CHANGE_DELAY - 1).validator_keys())
        after = {bytes(v[2]) for v in new_set}
        if 3 * len(before - after) > len(before) or 3 * len(after - before) > len(after):
            raise Reject("too_much_power")
        roster.validators = new_set
        self._record_change(tx, roster)

    def _keys_rotate(self, tx: Tx, genesis: bool) -> None:
        role, subject, old, new, threshold, _ = tx.body
        roster = self._pending_change(tx)
        roles = roster.all_role_keys()
        if new:
            held = roles.get(new)
            if held is not None and (held != role or role != "district"):
                raise Reject("duplicate_key")
            if held == "district" and [subject, new] in [[d, bytes(k)] for d, k in roster.district_operators]:
                raise Reject("duplicate_key")
        if role in ("committee", "gateway"):
            table = roster.committee if role == "committee" else roster.gateways
            names = [e[0] for e in table]
            if old:
                if subject not in names or bytes(table[names.index(subject)][1]) != old:
                    raise Reject("unknown_key")
                i = names.index(subject)
                if new:
                    table[i] = [subject, new]
                else:
                    del table[i]
            elif new:
                if subject in names:
                    raise Reject("duplicate_name")
                table.append([subject, new])
            if role == "committee":
                roster.threshold = threshold
                if not 1 <= threshold <= len(roster.committee):
                    raise Reject("bad_threshold")
        else:
            pairs = [[d, bytes(k)] for d, k in roster.district_operators]
            if old:
                if [subject, old] not in pairs:
                    raise Reject("unknown_key")
                i = pairs.index([subject, old])
                if new:
                    roster.district_operators[i] = [subject, new]
                else:
                    del roster.district_operators[i]
            else:
                roster.district_operators.append([subject, new])
        self._record_change(tx, roster)

    def _protocol_upgrade(self, tx: Tx, genesis: bool) -> None:
        version, height, _ = tx.body
        if not self.is_committee(tx, self.roster_at(self.height)):
            raise Reject("permission_denied")
        if height < self.height + SET_CHANGE_DELAY:
            raise Reject("too_early")
        if version <= max([1] + [v for v, _, _ in self.upgrades.values()]):
            raise Reject("stale_version")
        if self.upgrades and height <= max(self.upgrades):
            raise Reject("out_of_order")
        self.upgrades[height] = (version, self.height, tx.hash)
        self.put(b"S/u/" + u64(height), enc([version, self.height, tx.hash]))

    # ---- §3.4 closing
    def close(self, c: Campaign, reason: str) -> None:
        c.status = "closed"
        c.closed_height, c.closed_time_ms, c.close_reason = self.height, self.time, reason
        self.put_campaign(c)
        if c.spec[5][0] in COUNTING_RULES:
            winners, rhash = compute_result(c)
            c.result = (winners, rhash)
            self.put(b"S/r/" + c.cid.encode(), enc([winners, rhash]))


# --------------------------------------------------------------------------------------------
# §8 / §14.5 results, docs/RULES.md


@dataclass
class Cand:
    iid: str
    district: str
    cost: int
    votes: int
    points: int

    def key(self) -> tuple[int, int, bytes]:
        return (-self.points, self.cost, self.iid.encode())


def counting_rule(name: str, cands: list[Cand], budget: int, top_n: int, min_votes: int) -> list[str]:
    winners: list[str] = []
    remaining = budget
    for c in sorted(cands, key=Cand.key):
        if c.points < min_votes:
            break
        if name == "top-n":
            if top_n and len(winners) >= top_n:
                break
            if budget > 0:
                if c.cost > remaining:
                    continue
                remaining -= c.cost
            winners.append(c.iid)
        elif c.cost <= remaining:
            remaining -= c.cost
            winners.append(c.iid)
        elif name == "greedy-no-skip":
            break
    return winners


def equal_shares(cands: list[Cand], ballots: list[tuple[list[str], list[int] | None]], budget: int,
                 min_votes: int) -> list[str]:
    """Method of Equal Shares (RULES.md): utilities are costs for set ballots, points for scored ones."""
    by_id = {c.iid: c for c in cands}
    live = {c.iid for c in cands if c.points >= min_votes}
    groups: dict[tuple[tuple[str, int], ...], int] = {}
    for choices, points in ballots:
        utilities = tuple((ch, (points[i] if points is not None else by_id[ch].cost))
                          for i, ch in enumerate(choices) if ch in live)
        groups[utilities] = groups.get(utilities, 0) + 1
    n = len(ballots)
    if n == 0:
        return []
    members = list(groups.items())
    money = [Fraction(budget, n) for _ in members]
    supporters: dict[str, list[tuple[int, int, int]]] = {iid: [] for iid in live}   # (group, weight, utility)
    for g, (utilities, weight) in enumerate(members):
        for ch, u in utilities:
            supporters[ch].append((g, weight, u))
    winners: list[str] = []
    remaining = set(live)
    while True:
        best: tuple[Fraction, tuple[int, int, bytes], str] | None = None
        for iid in remaining:
            cost = by_id[iid].cost
            sup = supporters[iid]
            if sum(w * money[g] for g, w, _ in sup) < cost:
                continue
            rest_cost, rest_util = Fraction(cost), sum(w * u for _, w, u in sup)
            rho: Fraction | None = None
            for ratio, g, w, u in sorted((money[g] / u, g, w, u) for g, w, u in sup):
                if ratio * rest_util >= rest_cost:
                    rho = rest_cost / rest_util
                    break
                rest_cost -= w * money[g]
                rest_util -= w * u
            assert rho is not None
            entry = (rho, by_id[iid].key(), iid)
            if best is None or entry[:2] < best[:2]:
                best = entry
        if best is None:
            return winners
        rho, _, iid = best
        for g, _, u in supporters[iid]:
            money[g] -= min(money[g], rho * u)
        winners.append(iid)
        remaining.discard(iid)


def candidates(c: Campaign) -> list[Cand]:
    out = []
    for iid, rec in c.initiatives.items():
        if rec[1] == "approved":
            votes = c.votes.get(iid, 0)
            out.append(Cand(iid, rec[0][2], rec[0][5], votes, c.points.get(iid, 0) if c.scored else votes))
    return out


def select(c: Campaign) -> list[str]:
    name, scope, top_n, min_votes, rule_budget = c.spec[5]
    cands = candidates(c)
    if scope == "campaign":
        if name == "equal-shares":
            return equal_shares(cands, [(ch, p) for _, ch, p in c.ballots], rule_budget, min_votes)
        return counting_rule(name, cands, rule_budget, top_n, min_votes)
    winners: list[str] = []
    for did, _, budget in c.spec[3]:
        mine = [x for x in cands if x.district == did]
        if name == "equal-shares":
            winners += equal_shares(mine, [(ch, p) for d, ch, p in c.ballots if d == did], budget, min_votes)
        else:
            winners += counting_rule(name, mine, budget, top_n, min_votes)
    return winners


def result_hash(c: Campaign, winners: list[str]) -> bytes:
    cands = {x.iid: x for x in candidates(c)}
    districts = []
    for did, _, _ in c.spec[3]:
        ids = sorted((i for i, x in cands.items() if x.district == did), key=lambda s: s.encode())
        rows = [[i, cands[i].votes, cands[i].points] if c.scored else [i, cands[i].votes] for i in ids]
        districts.append([did, rows, [w for w in winners if cands[w].district == did]])
    return sha256(enc(["veche/result/v1", c.cid, c.status, c.total_ballots, districts, winners]))


def compute_result(c: Campaign) -> tuple[list[str], bytes]:
    winners = select(c) if c.status == "closed" else []
    return winners, result_hash(c, winners)


# --------------------------------------------------------------------------------------------
# Genesis (GENESIS §2-§3, PROTOCOL §3.5)


def genesis_roster(doc: dict[str, Any]) -> Roster:
    validators = []
    for v in doc["validators"]:
        url = v["url"][:-1] if v["url"].endswith("/") else v["url"]
        validators.append([v["name"], v.get("operator", "committee"), bytes.fromhex(v["public_key"]), url])
    committee = []
    for i, k in enumerate(doc["committee"]["keys"]):
        name = k.get("name")
        member = name if isinstance(name, str) and ID_RE.fullmatch(name) else f"committee-{i}"
        committee.append([member, bytes.fromhex(k["public_key"])])
    return Roster(validators, committee, int(doc["committee"]["threshold"]),
                  [[d["district_id"], bytes.fromhex(d["public_key"])] for d in doc.get("district_operators", [])],
                  [[g["name"], bytes.fromhex(g["public_key"])] for g in doc.get("gateways", [])])


def campaign_body(o: dict[str, Any], roster: Roster) -> list[Any]:
    b = o["ballot"]
    kind = b["type"]
    if kind == "choose-1":
        lo = hi = 1
    else:
        lo = b.get("min_choices", 1)
        hi = b.get("max_choices", len(b["rank_points"]) if kind == "ordinal" else 1)
    ballot: list[Any] = [kind, lo, hi]
    if kind == "knapsack":
        ballot.append(b.get("max_sum_cost", 0))
    elif kind == "cumulative":
        ballot += [b.get("min_sum_points", 0), b["max_sum_points"], b.get("max_points", 0)]
    elif kind == "ordinal":
        ballot.append(list(b["rank_points"]))
    r = o["rule"]
    gateway = o["gateway"]
    key = roster.gateway_key(gateway)
    gw = key if key is not None else bytes.fromhex(gateway)
    return [o["campaign_id"], o["title"], o["track"],
            [[d["district_id"], d["name"], d.get("budget", 0)] for d in o["districts"]], ballot,
            [r["name"], r.get("scope", "district"), r.get("top_n", 0), r.get("min_votes", 0), r.get("budget", 0)],
            o.get("min_cost", 1), o.get("max_cost", 2 ** 62), list(o.get("categories", [])),
            time_ms(o["submission_start"]), time_ms(o["submission_end"]), time_ms(o["voting_start"]),
            time_ms(o["voting_end"]), gw, o.get("registration_cap", 10_000_000),
            o.get("ballots_per_voter", "district")]


def initiative_body(o: dict[str, Any]) -> list[Any]:
    return [o["campaign_id"], o["initiative_id"], o["district_id"], o["title"], o["category"], o["cost"],
            o.get("summary", ""), bytes.fromhex(o.get("document_hash", ""))]


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
                              "first_bad_height": None, "error": None, "campaigns": {}}
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--genesis", required=True, help="the genesis file you trust")
    parser.add_argument("--node", required=True, help="a node's API base URL")
    parser.add_argument("--genesis-hash", help="the published genesis hash (hex) to compare with")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for equal-shares results")
    args = parser.parse_args(argv)
    with open(args.genesis, encoding="utf-8") as f:
        text = f.read()
    if args.genesis_hash:
        try:
            ours = genesis_hash(load_json_strict(text)).hex()
        except ValueError as exc:
            print(f"cannot read the genesis file: {exc}", file=sys.stderr)
            return 2
        if ours != args.genesis_hash.lower():
            print(f"genesis hash {ours} is not the published {args.genesis_hash}", file=sys.stderr)
            return 2
    code, report = run(text, args.node, wait_s=args.wait)
    if args.json:
        print(json.dumps(report))
    elif report["ok"]:
        print(f"OK: {report['blocks']} blocks, {report['txs']} transactions, {report['votes']} votes, "
              f"app hash {report['app_hash']}")
        for cid, c in report["campaigns"].items():
            print(f"  {cid}: {c['status']}, {c['total_ballots']} ballots, winners {c['winners']}, "
                  f"result {c['result_hash']} ({'matches' if c['matches'] else 'not compared'})")
    else:
        where = f" at height {report['first_bad_height']}" if report["first_bad_height"] else ""
        print(f"FAILED{where}: {report['error']}")
    return code


if __name__ == "__main__":
    sys.exit(main())
