"""Rosters (PROTOCOL §15.2) and the genesis file's data as transaction bodies (GENESIS §2-§3,
PROTOCOL §3.5, §16.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .codec import time_ms
from .txs import ID_RE

SET_CHANGE_DELAY = 2

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
            o.get("ballots_per_voter", "district")] + (
                [bytes.fromhex(o["certification_key"])] if "certification_key" in o else [])


def initiative_body(o: dict[str, Any]) -> list[Any]:
    return [o["campaign_id"], o["initiative_id"], o["district_id"], o["title"], o["category"], o["cost"],
            o.get("summary", ""), bytes.fromhex(o.get("document_hash", ""))]

