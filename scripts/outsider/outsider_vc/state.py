"""The state (PROTOCOL §4) and the state machine (§3, §14, §15, §16)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .codec import ed25519_ok, enc, rsa_pss_sha384_ok, u32, u64
from .results import compute_result
from .roster import SET_CHANGE_DELAY, Roster
from .txs import COUNTING_RULES, SCORED_TYPES, SET_TYPES, Tx



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
    tokens_issued: int = 0          # §16.5: only in the record of a campaign with a certification key
    certified_voters: int = 0
    voter_held_ballots: int = 0
    gateway_name: str = ""
    initiatives: dict[str, list[Any]] = field(default_factory=dict)   # id -> [submit, status, reason, h, submitter]
    votes: dict[str, int] = field(default_factory=dict)
    points: dict[str, int] = field(default_factory=dict)
    voters: set[bytes] = field(default_factory=set)
    slots: set[bytes] = field(default_factory=set)
    nullifiers: set[bytes] = field(default_factory=set)     # §16.5 S/n/<campaign>/<voter key>
    ballots: list[tuple[str, list[str], list[int] | None]] = field(default_factory=list)
    progress: dict[str, int] = field(default_factory=dict)
    result: tuple[list[str], bytes] | None = None

    @property
    def cid(self) -> str:
        return str(self.spec[0])

    @property
    def certification_key(self) -> bytes | None:
        return bytes(self.spec[16]) if len(self.spec) == 17 else None

    def record(self) -> bytes:
        fields = [self.spec, self.status, self.created_height, self.closed_height, self.closed_time_ms,
                  self.close_reason, self.registered, self.total_ballots, self.initiative_count]
        if self.certification_key is not None:
            fields += [self.tokens_issued, self.certified_voters, self.voter_held_ballots]
        return enc(fields)

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

    def check_gateway(self, tx: Tx, c: Campaign) -> None:
        """§15.3: signed by the key the campaign's gateway holds in the roster in force now; a key it
        held before gets ``revoked_key``, any other signer ``permission_denied``."""
        roster = self.roster_at(self.height)
        current = roster.gateway_key(c.gateway_name)
        if len(tx.signers) == 1 and current is not None and tx.signers[0] == current:
            return
        if len(tx.signers) == 1:
            earlier = [self.genesis_roster] + [r for f, (_, r, _) in self.rosters.items() if f <= self.height]
            if any(r.gateway_key(c.gateway_name) == tx.signers[0] for r in earlier):
                raise Reject("revoked_key", f"{tx.signers[0].hex()} no longer signs for gateway {c.gateway_name}")
        raise Reject("permission_denied")

    def _voters_register(self, tx: Tx, genesis: bool) -> None:
        cid, keys = tx.body
        c = self.open_campaign(cid)
        self.check_gateway(tx, c)
        if c.registered + c.tokens_issued + len(keys) > c.spec[14]:
            raise Reject("registration_cap")
        if any(bytes(k) in c.voters for k in keys):
            raise Reject("duplicate")
        for k in keys:
            c.voters.add(bytes(k))
            self.put(b"S/k/" + cid.encode() + b"/" + bytes(k), b"")
        c.registered += len(keys)
        self.put_campaign(c)

    def _tokens_issued(self, tx: Tx, genesis: bool) -> None:
        cid, _, count = tx.body
        c = self.open_campaign(cid)
        self.check_gateway(tx, c)
        if c.certification_key is None:
            raise Reject("no_certification", cid)
        if c.registered + c.tokens_issued + count > c.spec[14]:
            raise Reject("registration_cap")
        c.tokens_issued += count
        self.put_campaign(c)

    def token_message(self, cid: str, voter: bytes) -> bytes:
        return b"veche/v1/voter-token" + enc([self.chain_id, cid, voter])

    def _vote_cast(self, tx: Tx, genesis: bool) -> None:
        b = tx.body
        cid, did, choices = b[0], b[1], b[2]
        held = len(b) == 5                          # §16.3: a voter-held key's ballot carries a token
        points: list[int] | None = b[3] if len(b) == 4 or (held and b[3]) else None
        c = self.campaign(cid)
        if c.status != "open" or not c.spec[11] <= self.time < c.spec[12]:
            raise Reject("outside_window")
        if len(tx.signers) != 1:
            raise Reject("permission_denied")
        voter = tx.signers[0]
        if held:
            key = c.certification_key
            if key is None:
                raise Reject("no_certification", cid)
            if b[4][0] != cid:
                raise Reject("token_wrong_campaign", b[4][0])
            if not rsa_pss_sha384_ok(key, bytes(b[4][1]), self.token_message(cid, voter)):
                raise Reject("bad_token")
        elif voter not in c.voters:
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
            raise Reject("token_used" if held else "double_vote")
        if held and voter not in c.nullifiers and not c.certified_voters < c.tokens_issued:
            raise Reject("tokens_exhausted")
        c.slots.add(slot)
        if held:
            c.voter_held_ballots += 1
            if voter not in c.nullifiers:
                c.nullifiers.add(voter)
                c.certified_voters += 1
                self.put(b"S/n/" + cid.encode() + b"/" + voter, b"")
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


