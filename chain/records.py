"""State records kept by the state machine, and their storage keys.

Key layout (``/`` never occurs in ids, voter keys are fixed 32 bytes):
  S/c/<campaign>                        campaign record
  S/i/<campaign>/<initiative>           initiative record
  S/t/<campaign>/<initiative>           vote count (8 bytes, big-endian)
  S/s/<campaign>/<initiative>           points (8 bytes, big-endian) — scored ballots (cumulative, ordinal) only
  S/k/<campaign>/<voter key>            registered voter key (empty value)
  S/n/<campaign>/<voter key>            a voter-held key that has cast a ballot (empty value): its token is spent
  S/b/<campaign>/<voter key>/<district> ballot: [tx_hash, choices] or [tx_hash, choices, points] (scored)
                                        (district empty for one-per-campaign)
  S/p/<campaign>/<initiative>/<seq>     progress report
  S/r/<campaign>                        published result [winners, result_hash] (counting rules at close)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from typing import Any

from chain import codec
from chain.errors import DecodeError, StorageError
from chain.tx import CampaignCreate, InitiativeSubmit, ProgressReport, uint

STATUS_OPEN = "open"
STATUS_CLOSED = "closed"
INITIATIVE_SUBMITTED = "submitted"
INITIATIVE_APPROVED = "approved"
INITIATIVE_REJECTED = "rejected"

_U64 = struct.Struct(">Q")


def u64(value: int) -> bytes:
    return _U64.pack(value)


def read_u64(data: bytes) -> int:
    value: int = _U64.unpack(data)[0]
    return value


def campaign_key(campaign_id: str) -> bytes:
    return b"S/c/" + campaign_id.encode()


def initiative_key(campaign_id: str, initiative_id: str) -> bytes:
    return b"S/i/" + campaign_id.encode() + b"/" + initiative_id.encode()


def initiative_prefix(campaign_id: str) -> bytes:
    return b"S/i/" + campaign_id.encode() + b"/"


def tally_key(campaign_id: str, initiative_id: str) -> bytes:
    return b"S/t/" + campaign_id.encode() + b"/" + initiative_id.encode()


def score_key(campaign_id: str, initiative_id: str) -> bytes:
    return b"S/s/" + campaign_id.encode() + b"/" + initiative_id.encode()


def voter_key_key(campaign_id: str, voter_key: bytes) -> bytes:
    return b"S/k/" + campaign_id.encode() + b"/" + voter_key


def certified_key_key(campaign_id: str, voter_key: bytes) -> bytes:
    """The nullifier of a voter-held key: present once the key has cast a ballot in the campaign."""
    return b"S/n/" + campaign_id.encode() + b"/" + voter_key


def ballot_key(campaign_id: str, voter_key: bytes, district_id: str) -> bytes:
    return b"S/b/" + campaign_id.encode() + b"/" + voter_key + b"/" + district_id.encode()


def ballot_prefix(campaign_id: str) -> bytes:
    return b"S/b/" + campaign_id.encode() + b"/"


def progress_key(campaign_id: str, initiative_id: str, seq: int) -> bytes:
    return b"S/p/" + campaign_id.encode() + b"/" + initiative_id.encode() + b"/" + struct.pack(">I", seq)


def progress_prefix(campaign_id: str, initiative_id: str) -> bytes:
    return b"S/p/" + campaign_id.encode() + b"/" + initiative_id.encode() + b"/"


def result_key(campaign_id: str) -> bytes:
    return b"S/r/" + campaign_id.encode()


CAMPAIGN_RECORD_HEADER = b"\x99"  # msgpack fixarray of 9
CERTIFIED_CAMPAIGN_RECORD_HEADER = b"\x9c"  # fixarray of 12: a campaign with a certification key
_spec_encodings: dict[str, tuple[CampaignCreate, bytes]] = {}


def _encoded_spec(spec: CampaignCreate) -> bytes:
    """The canonical encoding of a campaign's spec, computed once per spec object.

    Every ballot changes the campaign record (its ballot count), so each block re-encodes it; the
    spec — districts, rule, schedule — never changes after creation and is most of its bytes. The
    cache holds one entry per campaign id and trusts it only for the very same (frozen) spec object.
    """
    cached = _spec_encodings.get(spec.campaign_id)
    if cached is not None and cached[0] is spec:
        return cached[1]
    encoded = codec.encode(spec.to_wire())
    _spec_encodings[spec.campaign_id] = (spec, encoded)
    return encoded


@dataclass(frozen=True, slots=True)
class Campaign:
    spec: CampaignCreate
    status: str
    created_height: int
    closed_height: int
    closed_time_ms: int
    close_reason: str
    registered: int
    total_ballots: int
    initiative_count: int
    # Campaigns with a certification key only (the record then has 12 fields): tokens the gateway
    # counted in tokens.issued, voter-held keys that have voted, and ballots of voter-held keys.
    tokens_issued: int = 0
    certified_voters: int = 0
    voter_held_ballots: int = 0
    # Derived from ``spec`` (not stored): the district ids, for O(1) membership checks.
    district_set: frozenset[str] = field(init=False, repr=False, compare=False)
    district_budgets: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "district_set", frozenset(d.district_id for d in self.spec.districts))
        object.__setattr__(self, "district_budgets", {d.district_id: d.budget for d in self.spec.districts})

    @property
    def campaign_id(self) -> str:
        return self.spec.campaign_id

    def district_ids(self) -> tuple[str, ...]:
        return tuple(d.district_id for d in self.spec.districts)

    def has_district(self, district_id: str) -> bool:
        return district_id in self.district_set

    def district_budget(self, district_id: str) -> int:
        return self.district_budgets.get(district_id, 0)

    @property
    def gateway_held_ballots(self) -> int:
        return self.total_ballots - self.voter_held_ballots

    def encode(self) -> bytes:
        """``codec.encode`` of the 9-element record (12 with a certification key); the spec's encoding is
        reused (see ``_encoded_spec``)."""
        fields: list[Any] = [self.status, self.created_height, self.closed_height, self.closed_time_ms,
                             self.close_reason, self.registered, self.total_ballots, self.initiative_count]
        header = CAMPAIGN_RECORD_HEADER
        if self.spec.voter_held:
            fields += [self.tokens_issued, self.certified_voters, self.voter_held_ballots]
            header = CERTIFIED_CAMPAIGN_RECORD_HEADER
        rest = codec.encode(fields)
        # canonical msgpack is compositional: a 9-element array is its header and the encodings of
        # its elements, and ``rest`` is the 8-element array's header (0x98) followed by those
        return header + _encoded_spec(self.spec) + rest[1:]

    @classmethod
    def decode(cls, data: bytes) -> "Campaign":
        try:
            raw = codec.decode(data)
            if not isinstance(raw, list) or len(raw) not in (9, 12):
                raise DecodeError("expected an array of 9 or 12 fields")
            spec = CampaignCreate.from_wire(raw[0], "campaign")
            if len(raw) != (12 if spec.voter_held else 9):
                raise DecodeError("the record's length does not fit the campaign's certification key")
            status = _status(raw[1], (STATUS_OPEN, STATUS_CLOSED))
            if not isinstance(raw[5], str):
                raise DecodeError("close_reason")
            numbers = [uint(value, "campaign record") for value in (raw[2], raw[3], raw[4], *raw[6:])]
        except DecodeError as exc:
            raise StorageError(f"stored campaign record is corrupt: {exc.message}") from exc
        created, closed_height, closed_time, registered, total, count, *certified = numbers
        return cls(spec, status, created, closed_height, closed_time, raw[5], registered, total, count, *certified)

    def closed(self, height: int, time_ms: int, reason: str) -> "Campaign":
        return replace(self, status=STATUS_CLOSED, closed_height=height, closed_time_ms=time_ms,
                       close_reason=reason)


@dataclass(frozen=True, slots=True)
class Initiative:
    spec: InitiativeSubmit
    status: str
    review_reason: str
    submitted_height: int
    submitter: bytes

    def encode(self) -> bytes:
        return codec.encode([self.spec.to_wire(), self.status, self.review_reason, self.submitted_height,
                             self.submitter])

    @classmethod
    def decode(cls, data: bytes) -> "Initiative":
        try:
            raw = _record(data, 5)
            spec = InitiativeSubmit.from_wire(raw[0], "initiative")
            status = _status(raw[1], (INITIATIVE_SUBMITTED, INITIATIVE_APPROVED, INITIATIVE_REJECTED))
            if not isinstance(raw[2], str) or not isinstance(raw[4], bytes):
                raise DecodeError("review_reason or submitter")
            height = uint(raw[3], "submitted_height")
        except DecodeError as exc:
            raise StorageError(f"stored initiative record is corrupt: {exc.message}") from exc
        return cls(spec, status, raw[2], height, raw[4])


@dataclass(frozen=True, slots=True)
class Progress:
    report: ProgressReport
    height: int
    time_ms: int
    reporter: bytes

    def encode(self) -> bytes:
        return codec.encode([self.report.to_wire(), self.height, self.time_ms, self.reporter])

    @classmethod
    def decode(cls, data: bytes) -> "Progress":
        try:
            raw = _record(data, 4)
            report = ProgressReport.from_wire(raw[0], "progress")
            height, time_ms = uint(raw[1], "height"), uint(raw[2], "time_ms")
            if not isinstance(raw[3], bytes):
                raise DecodeError("reporter")
        except DecodeError as exc:
            raise StorageError(f"stored progress record is corrupt: {exc.message}") from exc
        return cls(report, height, time_ms, raw[3])


def encode_ballot(tx_hash: bytes, choices: tuple[str, ...], points: tuple[int, ...] = ()) -> bytes:
    """``[tx_hash, choices]``, or ``[tx_hash, choices, points]`` for a scored ballot."""
    if points:
        return codec.encode([tx_hash, list(choices), list(points)])
    return codec.encode([tx_hash, list(choices)])


def decode_ballot(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    tx_hash, choices, _ = decode_scored_ballot(data)
    return tx_hash, choices


def decode_scored_ballot(data: bytes) -> tuple[bytes, tuple[str, ...], tuple[int, ...]]:
    """(tx hash, choices, points); points are empty for a set ballot."""
    try:
        raw = codec.decode(data)
        if not isinstance(raw, list) or len(raw) not in (2, 3):
            raise DecodeError("expected an array of 2 or 3 fields")
        if not isinstance(raw[0], bytes) or not isinstance(raw[1], list) or \
                not all(isinstance(choice, str) for choice in raw[1]):
            raise DecodeError("ballot fields")
        points: tuple[int, ...] = ()
        if len(raw) == 3:
            if not isinstance(raw[2], list) or len(raw[2]) != len(raw[1]):
                raise DecodeError("ballot points")
            points = tuple(uint(value, "points") for value in raw[2])
    except DecodeError as exc:
        raise StorageError(f"stored ballot is corrupt: {exc.message}") from exc
    return raw[0], tuple(raw[1]), points


def encode_result(winners: tuple[str, ...], result_hash: bytes) -> bytes:
    return codec.encode([list(winners), result_hash])


def decode_result(data: bytes) -> tuple[tuple[str, ...], bytes]:
    try:
        raw = _record(data, 2)
        if not isinstance(raw[0], list) or not all(isinstance(w, str) for w in raw[0]) or \
                not isinstance(raw[1], bytes):
            raise DecodeError("result fields")
    except DecodeError as exc:
        raise StorageError(f"stored result is corrupt: {exc.message}") from exc
    return tuple(raw[0]), raw[1]


def _record(data: bytes, size: int) -> list[Any]:
    raw = codec.decode(data)
    if not isinstance(raw, list) or len(raw) != size:
        raise DecodeError(f"expected an array of {size} fields")
    return raw


def _status(value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise DecodeError(f"status {value!r}")
    return value
