"""Who may sign what, at which height: rosters, their history, and the governance rules (pure).

A **roster** is everything a signature is checked against: the validator set (with its order, which
fixes the proposer), the committee keys and threshold k, the district operator keys and the gateway
keys. Genesis fixes the first one (in force from height 0). The committee changes it with
``validators.update`` and ``keys.rotate``; a change committed in block ``H`` is in force from block
``H + SET_CHANGE_DELAY`` (= H + 2) on, so every node switches at the same block, and a node entering
height ``h`` already knows the sets of ``h`` and ``h + 1`` (it has applied block ``h − 1``).

Changes committed in the same block compose in block order into one new roster; a change in the
next block starts from that one. The state keeps one record per roster under
``S/a/<u64 from_height>`` (``SetChange``): ``[committed_height, roster, [[kind, tx_hash], ...]]``.
Protocol upgrades are kept apart (``S/u/<u64 height>``, ``UpgradeRecord``).

Everything here is a small pure function over values; ``chain/state.py`` calls it and writes.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chain import codec
from chain.block import Validator, ValidatorSet
from chain.crypto import sha256
from chain.errors import DecodeError, StorageError, TxRejected
from chain.records import read_u64, u64
from chain.tx import (
    FIRST_PROTOCOL_VERSION, MAX_URL_CHARS, KeysRotate, ProtocolUpgrade, ValidatorsUpdate, ident, public_key_field,
    text, uint, validator_operator,
)

SET_CHANGE_DELAY = 2
"""A change committed in block H is in force from block H + 2."""
MIN_VALIDATORS = 4
"""A change may not leave fewer validators: with n = 4 one may fail (f = 1); below, none may."""
MAX_VALIDATORS = 128
ROSTER_PREFIX = b"S/a/"
UPGRADE_PREFIX = b"S/u/"
LATEST_PROTOCOL_VERSION = 2
"""The highest protocol version this code can apply (see ``app_hash_suffix``)."""
PROTOCOL_RULES = {
    1: "the rules of docs/PROTOCOL.md sections 1-14",
    2: "as 1; the app hash chain also covers the protocol version (docs/PROTOCOL.md section 15.5)",
}


def reject(code: str, message: str) -> TxRejected:
    return TxRejected(message, code)


def effective_height(commit_height: int) -> int:
    """The first block in which a set change committed at ``commit_height`` is in force."""
    return commit_height + SET_CHANGE_DELAY


def roster_key(from_height: int) -> bytes:
    return ROSTER_PREFIX + u64(from_height)


def upgrade_key(height: int) -> bytes:
    return UPGRADE_PREFIX + u64(height)


# --- the roster ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Roster:
    """The keys in force at one height. Lists keep their order: changes replace in place, add at the end."""

    validators: ValidatorSet
    committee: tuple[tuple[str, bytes], ...]          # (member name, public key)
    threshold: int
    district_operators: tuple[tuple[str, bytes], ...]  # (district_id, public key); a key may serve several
    gateways: tuple[tuple[str, bytes], ...]            # (gateway name, public key)
    committee_keys: frozenset[bytes] = field(init=False, repr=False, compare=False)
    gateway_keys: frozenset[bytes] = field(init=False, repr=False, compare=False)
    _operators: dict[str, frozenset[bytes]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "committee_keys", frozenset(key for _, key in self.committee))
        object.__setattr__(self, "gateway_keys", frozenset(key for _, key in self.gateways))
        operators: dict[str, set[bytes]] = {}
        for district_id, key in self.district_operators:
            operators.setdefault(district_id, set()).add(key)
        object.__setattr__(self, "_operators", {d: frozenset(keys) for d, keys in operators.items()})

    # --- who may sign what

    def is_committee(self, signers: Sequence[bytes]) -> bool:
        """Exactly ``threshold`` distinct committee keys (exactly: surplus ones could be stripped and replayed)."""
        return (len(signers) == self.threshold and len(set(signers)) == len(signers)
                and all(key in self.committee_keys for key in signers))

    def operators_of(self, district_id: str) -> frozenset[bytes]:
        return self._operators.get(district_id, frozenset())

    def gateway_key(self, name: str) -> bytes | None:
        return next((key for gateway, key in self.gateways if gateway == name), None)

    def gateway_name(self, public_key: bytes) -> str | None:
        return next((name for name, key in self.gateways if key == public_key), None)

    def committee_member(self, name: str) -> bytes | None:
        return next((key for member, key in self.committee if member == name), None)

    def role_of(self, public_key: bytes) -> str | None:
        """Which role holds ``public_key`` (for "each role needs its own key" messages), or None."""
        for validator in self.validators.validators:
            if validator.public_key == public_key:
                return f"validator {validator.name}"
        for name, key in self.committee:
            if key == public_key:
                return f"committee member {name}"
        for name, key in self.gateways:
            if key == public_key:
                return f"gateway {name}"
        for district_id, key in self.district_operators:
            if key == public_key:
                return f"the operator of district {district_id}"
        return None

    # --- encoding

    def to_wire(self) -> list[Any]:
        return [
            [[v.name, v.operator, v.public_key, v.url] for v in self.validators.validators],
            [[name, key] for name, key in self.committee],
            self.threshold,
            [[district_id, key] for district_id, key in self.district_operators],
            [[name, key] for name, key in self.gateways],
        ]

    def encode(self) -> bytes:
        return codec.encode(self.to_wire())

    def hash(self) -> bytes:
        return sha256(self.encode())

    @classmethod
    def from_wire(cls, raw: Any) -> "Roster":
        if not isinstance(raw, list) or len(raw) != 5:
            raise DecodeError("a roster is [validators, committee, threshold, district_operators, gateways]")
        validators_raw, committee_raw, threshold, operators_raw, gateways_raw = raw
        validators = tuple(Validator(name=ident(v[0], "validator name"), operator=validator_operator(v[1], "operator"),
                                     public_key=public_key_field(v[2], "validator key"), url=_url_text(v[3]))
                           for v in _rows(validators_raw, 4, "validators"))
        committee = tuple((ident(m[0], "member"), public_key_field(m[1], "member key"))
                          for m in _rows(committee_raw, 2, "committee"))
        operators = tuple((ident(o[0], "district"), public_key_field(o[1], "operator key"))
                          for o in _rows(operators_raw, 2, "district_operators"))
        gateways = tuple((ident(g[0], "gateway"), public_key_field(g[1], "gateway key"))
                         for g in _rows(gateways_raw, 2, "gateways"))
        uint(threshold, "threshold")
        if not validators or not 1 <= threshold <= len(committee):
            raise DecodeError("a roster needs validators and 1 <= threshold <= committee size")
        try:
            validator_set = ValidatorSet(validators)
        except Exception as exc:  # BlockInvalid: repeated keys
            raise DecodeError(f"roster validators: {exc}") from exc
        return cls(validator_set, committee, threshold, operators, gateways)


def _url_text(value: Any) -> str:
    """A validator URL as recorded (genesis URLs were checked by the genesis parser, added ones by the tx)."""
    checked: str = text(MAX_URL_CHARS)(value, "validator url")
    return checked


def _rows(value: Any, width: int, what: str) -> list[list[Any]]:
    if not isinstance(value, list) or not all(isinstance(row, list) and len(row) == width for row in value):
        raise DecodeError(f"roster {what} must be a list of {width}-field arrays")
    return value


@dataclass(frozen=True, slots=True)
class SetChange:
    """One roster and where it came from: the block that committed it and the transactions (in order)."""

    from_height: int
    committed_height: int
    roster: Roster
    txs: tuple[tuple[str, bytes], ...]   # (kind, tx hash)

    def encode(self) -> bytes:
        return codec.encode([self.committed_height, self.roster.to_wire(), [[k, h] for k, h in self.txs]])

    @classmethod
    def decode(cls, key: bytes, data: bytes) -> "SetChange":
        try:
            from_height = read_u64(key[len(ROSTER_PREFIX):])
            raw = codec.decode(data)
            if not isinstance(raw, list) or len(raw) != 3 or not isinstance(raw[2], list):
                raise DecodeError("expected [committed_height, roster, txs]")
            txs = tuple((str(item[0]), bytes(item[1])) for item in _rows(raw[2], 2, "txs")
                        if isinstance(item[0], str) and isinstance(item[1], bytes) and len(item[1]) == 32)
            if len(txs) != len(raw[2]):
                raise DecodeError("malformed transaction list")
            return cls(from_height, uint(raw[0], "committed_height"), Roster.from_wire(raw[1]), txs)
        except (DecodeError, ValueError) as exc:
            message = exc.message if isinstance(exc, DecodeError) else str(exc)
            raise StorageError(f"stored roster record is corrupt: {message}") from exc


def genesis_roster(validators: ValidatorSet, committee: Iterable[tuple[str, bytes]], threshold: int,
                   district_operators: Iterable[tuple[str, bytes]], gateways: Iterable[tuple[str, bytes]]) -> Roster:
    return Roster(validators, tuple(committee), threshold, tuple(district_operators), tuple(gateways))


# --- the history ----------------------------------------------------------------------------------


class SetHistory:
    """Rosters by the height they come into force, from genesis (height 0) on."""

    def __init__(self, genesis: Roster, changes: Iterable[SetChange] = ()) -> None:
        self._starts: list[int] = [0]
        self._changes: list[SetChange] = [SetChange(0, 0, genesis, ())]
        for change in sorted(changes, key=lambda c: c.from_height):
            self.add(change)

    def add(self, change: SetChange) -> None:
        """Record ``change`` (it replaces a roster recorded for the same height: same block)."""
        if change.from_height <= 0:
            raise StorageError("a set change comes into force after genesis")
        index = bisect.bisect_left(self._starts, change.from_height)
        if index < len(self._starts) and self._starts[index] == change.from_height:
            self._changes[index] = change
            return
        if index != len(self._starts):
            raise StorageError(f"set change at height {change.from_height} recorded after a later one")
        self._starts.append(change.from_height)
        self._changes.append(change)

    def change_at(self, height: int) -> SetChange:
        """The record in force at ``height``."""
        return self._changes[bisect.bisect_right(self._starts, height) - 1]

    def at(self, height: int) -> Roster:
        return self.change_at(height).roster

    def validators_at(self, height: int) -> ValidatorSet:
        return self.at(height).validators

    def latest(self) -> SetChange:
        """The last roster recorded (it may come into force only at a later height)."""
        return self._changes[-1]

    def changes(self) -> tuple[SetChange, ...]:
        """Every recorded change after genesis, by height."""
        return tuple(self._changes[1:])

    def __len__(self) -> int:
        return len(self._changes)


@dataclass(frozen=True, slots=True)
class UpgradeRecord:
    height: int
    version: int
    committed_height: int
    tx_hash: bytes

    def encode(self) -> bytes:
        return codec.encode([self.version, self.committed_height, self.tx_hash])

    @classmethod
    def decode(cls, key: bytes, data: bytes) -> "UpgradeRecord":
        try:
            raw = codec.decode(data)
            if not isinstance(raw, list) or len(raw) != 3 or not isinstance(raw[2], bytes):
                raise DecodeError("expected [version, committed_height, tx_hash]")
            return cls(read_u64(key[len(UPGRADE_PREFIX):]), uint(raw[0], "version"), uint(raw[1], "committed"), raw[2])
        except DecodeError as exc:
            raise StorageError(f"stored protocol upgrade record is corrupt: {exc.message}") from exc


class ProtocolSchedule:
    """Protocol versions by the height they come into force (version 1 from genesis)."""

    def __init__(self, upgrades: Iterable[UpgradeRecord] = ()) -> None:
        self.upgrades: list[UpgradeRecord] = []
        for record in sorted(upgrades, key=lambda r: r.height):
            self.add(record)

    def add(self, record: UpgradeRecord) -> None:
        if self.upgrades and (record.height <= self.upgrades[-1].height or record.version <= self.upgrades[-1].version):
            raise StorageError(f"protocol upgrade at height {record.height} is out of order")
        self.upgrades.append(record)

    def version_at(self, height: int) -> int:
        version = FIRST_PROTOCOL_VERSION
        for record in self.upgrades:
            if record.height > height:
                break
            version = record.version
        return version

    def latest(self) -> UpgradeRecord | None:
        return self.upgrades[-1] if self.upgrades else None

    def next_after(self, height: int) -> UpgradeRecord | None:
        """The first upgrade scheduled above ``height``."""
        return next((record for record in self.upgrades if record.height > height), None)


def app_hash_suffix(version: int) -> bytes:
    """What protocol ``version`` appends to the app hash input (docs/PROTOCOL.md §15.5)."""
    return b"" if version <= FIRST_PROTOCOL_VERSION else u64(version)


# --- validators.update ----------------------------------------------------------------------------


def updated_validators(base: ValidatorSet, body: ValidatorsUpdate) -> tuple[Validator, ...]:
    """``base`` without the removed validators, then the added ones at the end (proposer order).

    Raises ``TxRejected``: ``unknown_validator`` for a name not in ``base``.
    """
    names = {v.name for v in base.validators}
    for name in body.remove:
        if name not in names:
            raise reject("unknown_validator", f"validators.update removes {name!r}, which is not a validator "
                                              f"(validators: {', '.join(sorted(names))})")
    removed = set(body.remove)
    kept = tuple(v for v in base.validators if v.name not in removed)
    added = tuple(Validator(name=v.name, public_key=v.public_key, operator=v.operator, url=v.url) for v in body.add)
    return kept + added


def check_validator_set(validators: Sequence[Validator], base: Roster) -> None:
    """Names, keys and URLs distinct; new keys used by no other role; MIN..MAX validators."""
    seen_names: set[str] = set()
    seen_keys: set[bytes] = set()
    seen_urls: set[str] = set()
    for validator in validators:
        if validator.name in seen_names:
            raise reject("duplicate_name", f"two validators would be named {validator.name!r}; names must be distinct")
        if validator.public_key in seen_keys:
            raise reject("duplicate_key", f"two validators would have the key {validator.public_key.hex()}")
        if validator.url and validator.url in seen_urls:
            raise reject("duplicate_url", f"two validators would have the URL {validator.url}")
        role = base.role_of(validator.public_key)
        if role is not None and not role.startswith("validator "):
            raise reject("duplicate_key", f"validator {validator.name}'s key is the key of {role}; "
                                          "each role needs its own key")
        seen_names.add(validator.name)
        seen_keys.add(validator.public_key)
        seen_urls.add(validator.url)
    if len(validators) < MIN_VALIDATORS:
        raise reject("too_few_validators", f"the change would leave {len(validators)} validators; at least "
                                           f"{MIN_VALIDATORS} are needed so that one may fail without halting the chain")
    if len(validators) > MAX_VALIDATORS:
        raise reject("too_many_validators", f"the change would make {len(validators)} validators; at most "
                                            f"{MAX_VALIDATORS}")


def power_moved(before: ValidatorSet, after: ValidatorSet) -> tuple[int, int]:
    """(validators of ``before`` whose key is not in ``after``, validators of ``after`` whose key was not in
    ``before``). Every validator has one unit of voting power; a new URL or name for a key moves none."""
    old = {v.public_key for v in before.validators}
    new = {v.public_key for v in after.validators}
    return len(old - new), len(new - old)


def check_power_moved(before: ValidatorSet, after: ValidatorSet) -> None:
    """At most one third of the power may leave, and at most one third of the new set may be new.

    Then more than two thirds of either set's power is held by validators in both, so a light client
    that trusts one set can follow a certificate of the next one (docs/PROTOCOL.md §15.3).
    """
    removed, added = power_moved(before, after)
    if 3 * removed > before.size:
        raise reject("too_much_power", f"the change removes {removed} of the {before.size} validators in force; "
                                       "at most one third of the voting power may change at once "
                                       "(split it into several changes, each in force before the next)")
    if 3 * added > after.size:
        raise reject("too_much_power", f"{added} of the {after.size} validators would be new; at most one third "
                                       "of the voting power may change at once (split it into several changes)")


def apply_validators_update(base: Roster, previous: ValidatorSet, body: ValidatorsUpdate) -> Roster:
    """The roster after ``body``: ``base`` is the latest recorded roster, ``previous`` the validator set in
    force just before the new one comes into force (the power rule compares with it)."""
    validators = updated_validators(base.validators, body)
    check_validator_set(validators, base)
    after = ValidatorSet(validators)
    check_power_moved(previous, after)
    return Roster(after, base.committee, base.threshold, base.district_operators, base.gateways)


# --- keys.rotate ----------------------------------------------------------------------------------


def _check_new_key(base: Roster, body: KeysRotate) -> None:
    key = body.new_public_key
    if not key:
        return
    role = base.role_of(key)
    if role is None:
        return
    if body.role == "district" and role.startswith("the operator of district ") and \
            (body.subject, key) not in base.district_operators:
        return  # one operator key may serve several districts
    raise reject("duplicate_key", f"the new key is already the key of {role}; each role needs its own key")


def apply_keys_rotate(base: Roster, body: KeysRotate) -> Roster:
    """The roster after ``body`` (``base``: the latest recorded roster). Raises ``TxRejected``."""
    _check_new_key(base, body)
    if body.role == "committee":
        committee = _replace_entry(base.committee, body, "committee member")
        if not committee:
            raise reject("bad_threshold", "the committee needs at least one member")
        if not 1 <= body.threshold <= len(committee):
            raise reject("bad_threshold", f"threshold {body.threshold} for a committee of {len(committee)} members; "
                                          "it must be between 1 and the number of members")
        return Roster(base.validators, committee, body.threshold, base.district_operators, base.gateways)
    if body.role == "gateway":
        gateways = _replace_entry(base.gateways, body, "gateway")
        return Roster(base.validators, base.committee, base.threshold, base.district_operators, gateways)
    return Roster(base.validators, base.committee, base.threshold, _replace_operator(base.district_operators, body),
                  base.gateways)


def _replace_entry(entries: tuple[tuple[str, bytes], ...], body: KeysRotate,
                   what: str) -> tuple[tuple[str, bytes], ...]:
    """Named entries (committee members, gateways): one key per name."""
    current = dict(entries)
    if not body.old_public_key and not body.new_public_key:
        return entries  # committee threshold only
    if not body.old_public_key:
        if body.subject in current:
            raise reject("duplicate_name", f"{what} {body.subject!r} already exists; name its current key to rotate it")
        return entries + ((body.subject, body.new_public_key),)
    if body.subject not in current:
        raise reject("unknown_key", f"there is no {what} named {body.subject!r}")
    if current[body.subject] != body.old_public_key:
        raise reject("unknown_key", f"{what} {body.subject!r} has the key {current[body.subject].hex()}, "
                                    f"not {body.old_public_key.hex()}")
    if not body.new_public_key:
        return tuple(entry for entry in entries if entry[0] != body.subject)
    return tuple((name, body.new_public_key if name == body.subject else key) for name, key in entries)


def _replace_operator(entries: tuple[tuple[str, bytes], ...], body: KeysRotate) -> tuple[tuple[str, bytes], ...]:
    """District operators: (district, key) pairs; a district may have several keys."""
    if body.old_public_key and (body.subject, body.old_public_key) not in entries:
        raise reject("unknown_key", f"{body.old_public_key.hex()} is not an operator key of district {body.subject!r}")
    if body.new_public_key and (body.subject, body.new_public_key) in entries:
        raise reject("duplicate_key", f"{body.new_public_key.hex()} already operates district {body.subject!r}")
    if not body.old_public_key:
        return entries + ((body.subject, body.new_public_key),)
    if not body.new_public_key:
        return tuple(entry for entry in entries if entry != (body.subject, body.old_public_key))
    return tuple((district, body.new_public_key) if (district, key) == (body.subject, body.old_public_key)
                 else (district, key) for district, key in entries)


# --- protocol.upgrade ------------------------------------------------------------------------------


def check_protocol_upgrade(schedule: ProtocolSchedule, body: ProtocolUpgrade, commit_height: int) -> None:
    """At least ``SET_CHANGE_DELAY`` blocks ahead; versions and heights increase."""
    earliest = effective_height(commit_height)
    if body.height < earliest:
        raise reject("too_early", f"a protocol upgrade committed at height {commit_height} can come into force "
                                  f"at height {earliest} at the earliest, not {body.height}")
    latest = schedule.latest()
    current = FIRST_PROTOCOL_VERSION if latest is None else latest.version
    if body.version <= current:
        raise reject("stale_version", f"protocol version {current} is already in force or scheduled; "
                                      f"an upgrade schedules a higher version, not {body.version}")
    if latest is not None and body.height <= latest.height:
        raise reject("out_of_order", f"version {latest.version} is scheduled at height {latest.height}; a later "
                                     "version comes into force at a later height")
