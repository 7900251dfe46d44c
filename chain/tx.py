"""Transactions: body types, the signed envelope, strict decoding and builders.

Envelope (canonical msgpack array):  [kind, chain_id, body, [[public_key, signature], ...]]
Signing bytes:                       b"veche/v1/" + kind + chain_id + encode(body)
Tx hash:                             SHA-256 of the whole encoded envelope.

Every body is a fixed-length array whose fields are checked by a small schema; unknown kinds,
missing or extra fields, wrong types and oversized values raise ``DecodeError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar
from urllib.parse import urlsplit

from chain import codec
from chain.crypto import (
    DOMAIN, RSA_MAX_BITS, RSA_MIN_BITS, SigningKey, check_rsa_modulus, is_valid_public_key, sha256, verify,
)
from chain.errors import DecodeError, SignatureError

MAX_TX_BYTES = 64 * 1024
MAX_SIGNATURES = 16
# 1024 keys * 34 bytes + envelope stays well under MAX_TX_BYTES (2000 keys did not fit).
MAX_VOTER_KEYS_PER_REGISTRATION = 1024
MAX_CHOICES = 64
MAX_POINTS = 1_000_000   # the most points one ballot may give, and any one rank's or total's limit
MAX_TOKENS_PER_RECORD = 65_536   # tokens one tokens.issued record may count
ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
CHAIN_ID_PATTERN = ID_PATTERN

TRACKS = ("adult", "children")
BALLOT_TYPES = ("choose-1", "approval", "knapsack", "cumulative", "ordinal")
SET_BALLOTS = ("choose-1", "approval", "knapsack")    # a ballot is a set of initiatives
SCORED_BALLOTS = ("cumulative", "ordinal")            # a ballot gives each chosen initiative points
RULES = ("top-n", "greedy", "greedy-no-skip", "equal-shares")
SCOPES = ("district", "campaign")
BALLOTS_PER_VOTER = ("district", "campaign")
STAGES = ("contract", "works", "done", "cancelled")
GATEWAY_HELD = "gateway-held"   # a ballot signed by a key the gateway made and registered (voters.register)
VOTER_HELD = "voter-held"       # a ballot signed by the citizen's own key, certified by a blind token
KEY_MODES = (GATEWAY_HELD, VOTER_HELD)
KEY_ROLES = ("committee", "district", "gateway")
MAX_VALIDATOR_CHANGES = 64
MAX_URL_CHARS = 200
MAX_OPERATOR_CHARS = 200
FIRST_PROTOCOL_VERSION = 1


# --- field checkers ----------------------------------------------------------------------------

Checker = Callable[[Any, str], Any]


_KNOWN_IDS: set[str] = set()   # ids that matched ID_PATTERN (campaign, district, initiative ids repeat in every ballot)
_KNOWN_IDS_MAX = 65_536


def ident(value: Any, name: str) -> str:
    if type(value) is str and value in _KNOWN_IDS:
        return value
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise DecodeError(f"{name} must match [A-Za-z0-9._-]{{1,64}}")
    if type(value) is str:
        if len(_KNOWN_IDS) >= _KNOWN_IDS_MAX:
            _KNOWN_IDS.clear()
        _KNOWN_IDS.add(value)
    return value


def text(limit: int, *, allow_empty: bool = True) -> Checker:
    def check(value: Any, name: str) -> str:
        if not isinstance(value, str) or len(value) > limit or (not allow_empty and not value.strip()):
            raise DecodeError(f"{name} must be {'non-empty ' if not allow_empty else ''}text of at most {limit} characters")
        return value
    return check


def uint(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise DecodeError(f"{name} must be a non-negative integer")
    return value


def boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise DecodeError(f"{name} must be a boolean")
    return value


def fixed_bytes(size: int, *, allow_empty: bool = False) -> Checker:
    def check(value: Any, name: str) -> bytes:
        if not isinstance(value, bytes) or not (len(value) == size or (allow_empty and not value)):
            raise DecodeError(f"{name} must be {size} bytes{' or empty' if allow_empty else ''}")
        return value
    return check


def certification_modulus(value: Any, name: str) -> bytes:
    """An RSA modulus (``e = 65537``) for RFC 9474 tokens: 3072..4096 bits in whole bytes, odd."""
    try:
        check_rsa_modulus(value)
    except SignatureError as exc:
        raise DecodeError(f"{name} must be an odd RSA modulus of {RSA_MIN_BITS}..{RSA_MAX_BITS} bits in whole "
                          "bytes, big-endian with the top bit set") from exc
    return bytes(value)


def token_bytes(value: Any, name: str) -> bytes:
    """An RSA-PSS signature: as many bytes as a certification key's modulus (384..512)."""
    if not isinstance(value, bytes) or not RSA_MIN_BITS // 8 <= len(value) <= RSA_MAX_BITS // 8:
        raise DecodeError(f"{name} must be {RSA_MIN_BITS // 8}..{RSA_MAX_BITS // 8} bytes")
    return value


def one_of(options: Sequence[str]) -> Checker:
    def check(value: Any, name: str) -> str:
        if value not in options or not isinstance(value, str):
            raise DecodeError(f"{name} must be one of {', '.join(options)}")
        return value
    return check


def list_of(item: Checker, limit: int, *, min_items: int = 0) -> Checker:
    def check(value: Any, name: str) -> tuple[Any, ...]:
        if not isinstance(value, list) or not min_items <= len(value) <= limit:
            raise DecodeError(f"{name} must be a list of {min_items}..{limit} items")
        try:
            return tuple([item(element, name) for element in value])
        except DecodeError:   # name the element in the error: check them again one by one
            for i, element in enumerate(value):
                item(element, f"{name}[{i}]")
            raise
    return check


def struct(cls: type["Wire"]) -> Checker:
    def check(value: Any, name: str) -> Any:
        return cls.from_wire(value, name)
    return check


def check_fields(checkers: Sequence[Checker], raw: list[Any], names: Sequence[str], name: str) -> list[Any]:
    """Each of ``raw``'s values through its checker; a ``DecodeError`` names the field (``name.field``)."""
    try:
        return [check(value, name) for check, value in zip(checkers, raw)]
    except DecodeError:   # name the field in the error: check them again with their names
        for check, value, field_name in zip(checkers, raw, names):
            check(value, f"{name}.{field_name}")
        raise


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def field_names(cls: type) -> tuple[str, ...]:
    """The dataclass field names of ``cls`` in wire order (cached: ``fields()`` is slow)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = tuple(f.name for f in fields(cls))
        _FIELD_NAMES[cls] = names
    return names


class Wire:
    """Mixin: a frozen dataclass encoded as a fixed-length array checked by ``SCHEMA``.

    A body whose array length depends on its content (``BallotSpec``, ``VoteCast``) overrides
    ``wire_names`` (the fields on the wire, in order) and ``from_wire``.
    """

    SCHEMA: ClassVar[tuple[Checker, ...]]

    def wire_names(self) -> tuple[str, ...]:
        return field_names(type(self))

    def to_wire(self) -> list[Any]:
        out: list[Any] = []
        for name in self.wire_names():
            value = getattr(self, name)
            if isinstance(value, Wire):
                out.append(value.to_wire())
            elif isinstance(value, tuple):
                out.append([v.to_wire() if isinstance(v, Wire) else v for v in value])
            else:
                out.append(value)
        return out

    @classmethod
    def from_wire(cls, raw: Any, name: str = "body") -> Any:
        names = field_names(cls)
        if not isinstance(raw, list) or len(raw) != len(names):
            raise DecodeError(f"{name} must be an array of {len(names)} fields ({', '.join(names)})")
        obj = cls(*check_fields(cls.SCHEMA, raw, names, name))
        obj.validate()
        return obj

    def validate(self) -> None:
        """Cross-field checks; raise ``DecodeError``."""


# --- bodies --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class District(Wire):
    district_id: str
    name: str
    budget: int  # kopecks; used by district-scope rules
    SCHEMA: ClassVar[tuple[Checker, ...]] = (ident, text(200, allow_empty=False), uint)


def point(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_POINTS:
        raise DecodeError(f"{name} must be an integer from 1 to {MAX_POINTS}")
    return value


def points_limit(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_POINTS:
        raise DecodeError(f"{name} must be an integer from 0 to {MAX_POINTS}")
    return value


@dataclass(frozen=True, slots=True)
class BallotSpec(Wire):
    """What a ballot of the campaign may hold. The wire array depends on the type:

    ``[type, min_choices, max_choices]``                                 choose-1, approval
    ``[type, min_choices, max_choices, max_sum_cost]``                   knapsack
    ``[type, min_choices, max_choices, min_sum_points, max_sum_points, max_points]``   cumulative
    ``[type, min_choices, max_choices, rank_points]``                    ordinal

    Fields a type does not carry stay at their zero value.
    """

    type: str
    min_choices: int
    max_choices: int
    max_sum_cost: int = 0             # knapsack: total cost cap in kopecks (0 = the ballot's district's budget)
    min_sum_points: int = 0           # cumulative: the ballot's points add up to at least this ...
    max_sum_points: int = 0           # ... and at most this
    max_points: int = 0               # cumulative: most points for one initiative (0 = only the total limits)
    rank_points: tuple[int, ...] = ()  # ordinal: points of rank 1, 2, … max_choices (non-increasing)
    SCHEMA: ClassVar[tuple[Checker, ...]] = (one_of(BALLOT_TYPES), uint, uint)
    LAYOUTS: ClassVar[dict[str, tuple[tuple[str, Checker], ...]]] = {
        "choose-1": (), "approval": (),
        "knapsack": (("max_sum_cost", uint),),
        "cumulative": (("min_sum_points", points_limit), ("max_sum_points", points_limit),
                       ("max_points", points_limit)),
        "ordinal": (("rank_points", list_of(point, MAX_CHOICES, min_items=1)),),
    }

    @property
    def scored(self) -> bool:
        """True when a ballot gives points (cumulative, ordinal), False for a set of initiatives."""
        return self.type in SCORED_BALLOTS

    def wire_names(self) -> tuple[str, ...]:
        return self.names_of(self.type)

    @classmethod
    def names_of(cls, kind: str) -> tuple[str, ...]:
        """The wire fields of a ballot of type ``kind``, in order."""
        return ("type", "min_choices", "max_choices") + tuple(name for name, _ in cls.LAYOUTS.get(kind, ()))

    @classmethod
    def from_wire(cls, raw: Any, name: str = "ballot") -> "BallotSpec":
        if not isinstance(raw, list) or not raw:
            raise DecodeError(f"{name} must be an array [type, min_choices, max_choices, ...]")
        kind = one_of(BALLOT_TYPES)(raw[0], f"{name}.type")
        layout = cls.LAYOUTS[kind]
        if len(raw) != 3 + len(layout):
            names = ", ".join(["type", "min_choices", "max_choices"] + [n for n, _ in layout])
            raise DecodeError(f"{name} of type {kind} must be an array of {3 + len(layout)} fields ({names})")
        values: dict[str, Any] = {field_name: check(value, f"{name}.{field_name}")
                                  for (field_name, check), value in zip(layout, raw[3:])}
        spec = cls(kind, uint(raw[1], f"{name}.min_choices"), uint(raw[2], f"{name}.max_choices"), **values)
        spec.validate()
        return spec

    def validate(self) -> None:
        if self.type not in BALLOT_TYPES:
            raise DecodeError(f"ballot.type must be one of {', '.join(BALLOT_TYPES)}")
        carried = set(self.wire_names())
        defaults = {"max_sum_cost": 0, "min_sum_points": 0, "max_sum_points": 0, "max_points": 0, "rank_points": ()}
        for field_name, default in defaults.items():
            if field_name not in carried and getattr(self, field_name) != default:
                raise DecodeError(f"a {self.type} ballot has no {field_name}")
        if self.type == "choose-1" and (self.min_choices, self.max_choices) != (1, 1):
            raise DecodeError("a choose-1 ballot has min_choices = max_choices = 1")
        if not 1 <= self.min_choices <= self.max_choices <= MAX_CHOICES:
            raise DecodeError(f"ballot needs 1 <= min_choices <= max_choices <= {MAX_CHOICES}")
        if self.type == "cumulative":
            self._validate_cumulative()
        elif self.type == "ordinal":
            self._validate_ordinal()

    def _validate_cumulative(self) -> None:
        if self.max_sum_points == 0:
            raise DecodeError("a cumulative ballot needs max_sum_points >= 1")
        if self.min_sum_points > self.max_sum_points:
            raise DecodeError("a cumulative ballot needs min_sum_points <= max_sum_points")
        if self.max_points > self.max_sum_points:
            raise DecodeError("a cumulative ballot needs max_points <= max_sum_points (0: no separate limit)")
        if self.max_sum_points < self.min_choices:
            raise DecodeError("a cumulative ballot gives each chosen initiative at least 1 point: "
                              "max_sum_points must be >= min_choices")
        per_initiative = self.max_points or self.max_sum_points
        if self.min_sum_points > self.max_choices * per_initiative:
            raise DecodeError("a cumulative ballot cannot reach min_sum_points with max_choices initiatives "
                              "of at most max_points each")

    def _validate_ordinal(self) -> None:
        if len(self.rank_points) != self.max_choices:
            raise DecodeError("an ordinal ballot's rank_points has one entry per rank: max_choices entries")
        if any(not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= MAX_POINTS for p in self.rank_points):
            raise DecodeError(f"ordinal rank_points must be integers from 1 to {MAX_POINTS}")
        if any(later > earlier for earlier, later in zip(self.rank_points, self.rank_points[1:])):
            raise DecodeError("ordinal rank_points must not increase from one rank to the next")


@dataclass(frozen=True, slots=True)
class RuleSpec(Wire):
    name: str
    scope: str
    top_n: int       # top-n: winners per scope (0 = no count limit)
    min_votes: int   # an initiative needs at least this many votes to win
    budget: int      # campaign-scope budget in kopecks (district scope uses each district's budget)
    SCHEMA: ClassVar[tuple[Checker, ...]] = (one_of(RULES), one_of(SCOPES), uint, uint, uint)

    def validate(self) -> None:
        if self.top_n and self.name != "top-n":
            raise DecodeError("rule.top_n must be 0 unless the rule is top-n")


@dataclass(frozen=True, slots=True)
class CampaignCreate(Wire):
    campaign_id: str
    title: str
    track: str
    districts: tuple[District, ...]
    ballot: BallotSpec
    rule: RuleSpec
    min_cost: int
    max_cost: int
    categories: tuple[str, ...]   # allowed categories; empty = any
    submission_start: int
    submission_end: int
    voting_start: int
    voting_end: int
    gateway: bytes
    registration_cap: int
    ballots_per_voter: str
    # The gateway's RFC 9474 certification key (RSA modulus, e = 65537) for voter-held keys; empty:
    # the campaign takes only gateway-held keys (voters.register). On the wire only when present.
    certification_key: bytes = b""
    SCHEMA: ClassVar[tuple[Checker, ...]] = (
        ident, text(200, allow_empty=False), one_of(TRACKS), list_of(struct(District), 512, min_items=1),
        struct(BallotSpec), struct(RuleSpec), uint, uint, list_of(text(64, allow_empty=False), 64),
        uint, uint, uint, uint, fixed_bytes(32), uint, one_of(BALLOTS_PER_VOTER), certification_modulus,
    )

    @property
    def voter_held(self) -> bool:
        """True when citizens may hold their own keys, certified by blind tokens."""
        return bool(self.certification_key)

    def wire_names(self) -> tuple[str, ...]:
        names = field_names(CampaignCreate)
        return names if self.certification_key else names[:-1]

    @classmethod
    def from_wire(cls, raw: Any, name: str = "body") -> "CampaignCreate":
        names = field_names(cls)
        if not isinstance(raw, list) or len(raw) not in (len(names) - 1, len(names)):
            raise DecodeError(f"{name} must be an array of {len(names) - 1} fields ({', '.join(names[:-1])}), or "
                              f"{len(names)} with certification_key")
        values = [check(value, f"{name}.{field_name}") for check, value, field_name in zip(cls.SCHEMA, raw, names)]
        campaign = cls(*values)
        campaign.validate()
        return campaign

    def validate(self) -> None:
        ids = [d.district_id for d in self.districts]
        if len(set(ids)) != len(ids):
            raise DecodeError("campaign district ids must be distinct")
        if self.min_cost > self.max_cost:
            raise DecodeError("campaign min_cost exceeds max_cost")
        if not self.submission_start <= self.submission_end <= self.voting_start < self.voting_end:
            raise DecodeError("campaign schedule must satisfy submission_start <= submission_end <= "
                              "voting_start < voting_end")
        if self.rule.scope == "campaign" and self.rule.name != "top-n" and self.rule.budget == 0:
            raise DecodeError("a campaign-scope budget rule needs rule.budget > 0")
        if self.ballot.type == "knapsack" and self.ballot.max_sum_cost == 0 and \
                any(d.budget == 0 for d in self.districts):
            raise DecodeError("a knapsack ballot whose cap is its district's budget (max_sum_cost 0) needs "
                              "every district's budget > 0")


@dataclass(frozen=True, slots=True)
class InitiativeSubmit(Wire):
    campaign_id: str
    initiative_id: str
    district_id: str
    title: str
    category: str
    cost: int
    summary: str
    document_hash: bytes
    SCHEMA: ClassVar[tuple[Checker, ...]] = (
        ident, ident, ident, text(300, allow_empty=False), text(64, allow_empty=False), uint, text(4000),
        fixed_bytes(32, allow_empty=True),
    )

    def validate(self) -> None:
        if self.cost == 0:
            raise DecodeError("initiative cost must be positive")


@dataclass(frozen=True, slots=True)
class InitiativeReview(Wire):
    campaign_id: str
    initiative_id: str
    approve: bool
    reason: str
    SCHEMA: ClassVar[tuple[Checker, ...]] = (ident, ident, boolean, text(1000))

    def validate(self) -> None:
        if not self.approve and not self.reason.strip():
            raise DecodeError("a rejection needs a public reason")


@dataclass(frozen=True, slots=True)
class VotersRegister(Wire):
    campaign_id: str
    voter_keys: tuple[bytes, ...]
    SCHEMA: ClassVar[tuple[Checker, ...]] = (
        ident, list_of(fixed_bytes(32), MAX_VOTER_KEYS_PER_REGISTRATION, min_items=1),
    )

    def validate(self) -> None:
        if len(set(self.voter_keys)) != len(self.voter_keys):
            raise DecodeError("voter keys in one registration must be distinct")


def scored_order(choice: str, points: int) -> tuple[int, bytes]:
    """Canonical order of a scored ballot: most points first, then initiative id bytes ascending."""
    return (-points, choice.encode())


def credential(value: Any, name: str) -> tuple[str, bytes]:
    """``[token_campaign_id, token]`` of a voter-held ballot."""
    if not isinstance(value, list) or len(value) != 2:
        raise DecodeError(f"{name} must be [token_campaign_id, token]")
    return ident(value[0], f"{name}.token_campaign_id"), token_bytes(value[1], f"{name}.token")


@dataclass(frozen=True, slots=True)
class VoteCast(Wire):
    """A ballot. ``[campaign_id, district_id, choices]`` for a set of initiatives (choose-1,
    approval, knapsack): choices distinct and sorted by UTF-8 bytes. ``[campaign_id, district_id,
    choices, points]`` for a scored ballot (cumulative, ordinal): ``points[i]`` (1..MAX_POINTS) is
    what ``choices[i]`` gets; pairs sorted by points descending, then id bytes ascending, ids
    distinct — so an ordinal ballot lists its ranking in order.

    A ballot signed by a **voter-held** key carries its blind certification token:
    ``[campaign_id, district_id, choices, points, [token_campaign_id, token]]`` — ``points`` empty
    for a set ballot — where ``token`` is the RFC 9474 signature of the campaign's certification key
    over ``chain.blind.token_message(chain_id, token_campaign_id, voter key)``."""

    campaign_id: str
    district_id: str
    choices: tuple[str, ...]
    points: tuple[int, ...] = ()
    token_campaign_id: str = ""
    token: bytes = b""
    SCHEMA: ClassVar[tuple[Checker, ...]] = (
        ident, ident, list_of(ident, MAX_CHOICES, min_items=1), list_of(point, MAX_CHOICES, min_items=1),
    )
    _POINTS_OR_NONE: ClassVar[Checker] = list_of(point, MAX_CHOICES)

    def wire_names(self) -> tuple[str, ...]:
        if self.token:
            return ("campaign_id", "district_id", "choices", "points", "token_campaign_id", "token")
        return ("campaign_id", "district_id", "choices", "points") if self.points else \
            ("campaign_id", "district_id", "choices")

    def to_wire(self) -> list[Any]:
        wire: list[Any] = [self.campaign_id, self.district_id, list(self.choices)]
        if self.token:
            return wire + [list(self.points), [self.token_campaign_id, self.token]]
        return wire + [list(self.points)] if self.points else wire

    @classmethod
    def from_wire(cls, raw: Any, name: str = "body") -> "VoteCast":
        if not isinstance(raw, list) or len(raw) not in (3, 4, 5):
            raise DecodeError(f"{name} must be an array of 3 fields (campaign_id, district_id, choices), 4 "
                              "(campaign_id, district_id, choices, points) or 5 (campaign_id, district_id, choices, "
                              "points, [token_campaign_id, token])")
        names = ("campaign_id", "district_id", "choices", "points")
        checkers = cls.SCHEMA if len(raw) != 5 else cls.SCHEMA[:3] + (cls._POINTS_OR_NONE,)
        values = check_fields(checkers, raw, names, name)
        if len(raw) == 5:
            values.extend(credential(raw[4], f"{name}.credential"))
        vote = cls(*values)
        vote.validate()
        return vote

    def validate(self) -> None:
        if bool(self.token) != bool(self.token_campaign_id):
            raise DecodeError("a voter-held ballot names the token's campaign and carries the token")
        if not self.points:
            if list(self.choices) != sorted(set(self.choices), key=str.encode):
                raise DecodeError("ballot choices must be distinct and sorted by their UTF-8 bytes")
            return
        if len(self.points) != len(self.choices):
            raise DecodeError("a scored ballot has one points entry per choice")
        if len(set(self.choices)) != len(self.choices):
            raise DecodeError("ballot choices must be distinct")
        keys = [scored_order(c, p) for c, p in zip(self.choices, self.points)]
        if keys != sorted(keys):
            raise DecodeError("a scored ballot lists its choices by points descending, then by UTF-8 bytes")

    @property
    def scored(self) -> bool:
        return bool(self.points)

    @property
    def voter_held(self) -> bool:
        """True for a ballot of a voter-held key (it carries a token), False for a gateway-held one."""
        return bool(self.token)

    @property
    def mode(self) -> str:
        return VOTER_HELD if self.token else GATEWAY_HELD


@dataclass(frozen=True, slots=True)
class TokensIssued(Wire):
    """The campaign's gateway counts blind tokens it issued: ``count`` more, in its batch ``batch``
    (a label that makes each record's bytes distinct; the replay rule refuses a record sent twice)."""

    campaign_id: str
    batch: int
    count: int
    SCHEMA: ClassVar[tuple[Checker, ...]] = (ident, uint, uint)

    def validate(self) -> None:
        if not 1 <= self.count <= MAX_TOKENS_PER_RECORD:
            raise DecodeError(f"tokens.issued counts 1..{MAX_TOKENS_PER_RECORD} tokens")


@dataclass(frozen=True, slots=True)
class CampaignClose(Wire):
    campaign_id: str
    reason: str
    SCHEMA: ClassVar[tuple[Checker, ...]] = (ident, text(1000, allow_empty=False))


@dataclass(frozen=True, slots=True)
class ProgressReport(Wire):
    campaign_id: str
    initiative_id: str
    stage: str
    percent: int
    spent: int
    note: str
    evidence_hash: bytes
    SCHEMA: ClassVar[tuple[Checker, ...]] = (
        ident, ident, one_of(STAGES), uint, uint, text(2000), fixed_bytes(32, allow_empty=True),
    )

    def validate(self) -> None:
        if self.percent > 100:
            raise DecodeError("progress percent must be between 0 and 100")


def public_key_field(value: Any, name: str) -> bytes:
    """32 bytes that are an Ed25519 public key (a point on the curve)."""
    if not isinstance(value, bytes) or len(value) != 32 or not is_valid_public_key(value):
        raise DecodeError(f"{name} must be a 32-byte Ed25519 public key")
    return value


def optional_public_key(value: Any, name: str) -> bytes:
    """An Ed25519 public key, or empty bytes (none)."""
    if isinstance(value, bytes) and not value:
        return value
    return public_key_field(value, name)


def base_url(value: Any, name: str) -> str:
    """``http(s)://host[:port][/path]`` without a query, fragment, user or trailing slash."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_URL_CHARS or not value.isascii() \
            or any(c.isspace() for c in value):
        raise DecodeError(f"{name} must be an http(s) URL of at most {MAX_URL_CHARS} ASCII characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise DecodeError(f"{name} is not a valid URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
            or parts.username is not None or value.endswith("/") or "?" in value or "#" in value:
        raise DecodeError(f"{name} must be a plain http(s) base URL with a host and no trailing slash")
    return value


def validator_operator(value: Any, name: str) -> str:
    """``committee``, ``district:<district_id>`` or an organisation's name (as in the genesis file)."""
    text(MAX_OPERATOR_CHARS, allow_empty=False)(value, name)
    if value.startswith("district:"):
        ident(value[len("district:"):], f"{name} district id")
    return str(value)


@dataclass(frozen=True, slots=True)
class ValidatorEntry(Wire):
    name: str
    operator: str
    public_key: bytes
    url: str
    SCHEMA: ClassVar[tuple[Checker, ...]] = (ident, validator_operator, public_key_field, base_url)


@dataclass(frozen=True, slots=True)
class ValidatorsUpdate(Wire):
    """Add and remove validators; the new set is in force from the commit height + 2."""

    reason: str
    add: tuple[ValidatorEntry, ...]
    remove: tuple[str, ...]
    SCHEMA: ClassVar[tuple[Checker, ...]] = (
        text(1000, allow_empty=False), list_of(struct(ValidatorEntry), MAX_VALIDATOR_CHANGES),
        list_of(ident, MAX_VALIDATOR_CHANGES),
    )

    def validate(self) -> None:
        if not self.add and not self.remove:
            raise DecodeError("validators.update must add or remove at least one validator")
        for what, values in (("names", [v.name for v in self.add]), ("public keys", [v.public_key for v in self.add]),
                             ("urls", [v.url for v in self.add])):
            if len(set(values)) != len(values):
                raise DecodeError(f"validators.update adds validators with the same {what[:-1]}; {what} must be distinct")
        if len(set(self.remove)) != len(self.remove):
            raise DecodeError("validators.update names a validator to remove twice")


@dataclass(frozen=True, slots=True)
class KeysRotate(Wire):
    """Replace (or add, or remove) a committee, district operator or gateway key; committee: set k.

    ``old_public_key`` empty adds a key for ``subject``; ``new_public_key`` empty removes one; both
    empty (committee only) changes only the threshold. ``threshold`` is the committee's k after the
    change (0 for the other roles). The old key is revoked from the commit height + 2.
    """

    role: str
    subject: str
    old_public_key: bytes
    new_public_key: bytes
    threshold: int
    reason: str
    SCHEMA: ClassVar[tuple[Checker, ...]] = (
        one_of(KEY_ROLES), ident, optional_public_key, optional_public_key, uint, text(1000, allow_empty=False),
    )

    def validate(self) -> None:
        if self.role == "committee":
            if self.threshold < 1:
                raise DecodeError("keys.rotate for the committee states the threshold k (at least 1) after the change")
        elif self.threshold != 0:
            raise DecodeError(f"keys.rotate for a {self.role} key has threshold 0 (only the committee has one)")
        elif not self.old_public_key and not self.new_public_key:
            raise DecodeError(f"keys.rotate for a {self.role} key names an old or a new key")
        if self.old_public_key and self.old_public_key == self.new_public_key:
            raise DecodeError("keys.rotate: the new key is the old key")


@dataclass(frozen=True, slots=True)
class ProtocolUpgrade(Wire):
    """Protocol ``version`` is in force from block ``height`` on."""

    version: int
    height: int
    reason: str
    SCHEMA: ClassVar[tuple[Checker, ...]] = (uint, uint, text(1000, allow_empty=False))

    def validate(self) -> None:
        if self.version <= FIRST_PROTOCOL_VERSION:
            raise DecodeError(f"protocol.upgrade schedules a version above {FIRST_PROTOCOL_VERSION}")
        if self.height < 1:
            raise DecodeError("protocol.upgrade schedules a block height (at least 1)")


BODY_TYPES: dict[str, type[Wire]] = {
    "campaign.create": CampaignCreate,
    "initiative.submit": InitiativeSubmit,
    "initiative.review": InitiativeReview,
    "voters.register": VotersRegister,
    "vote.cast": VoteCast,
    "campaign.close": CampaignClose,
    "progress.report": ProgressReport,
    "tokens.issued": TokensIssued,
    "validators.update": ValidatorsUpdate,
    "keys.rotate": KeysRotate,
    "protocol.upgrade": ProtocolUpgrade,
}
GOVERNANCE_KINDS = ("validators.update", "keys.rotate", "protocol.upgrade")
KINDS = tuple(BODY_TYPES)
Body = (CampaignCreate | InitiativeSubmit | InitiativeReview | VotersRegister | VoteCast | CampaignClose | ProgressReport
        | TokensIssued | ValidatorsUpdate | KeysRotate | ProtocolUpgrade)


# --- envelope ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tx:
    kind: str
    chain_id: str
    body: Any  # one of the body dataclasses above, matching ``kind``
    signatures: tuple[tuple[bytes, bytes], ...]  # (public_key, signature)
    raw: bytes
    hash: bytes
    # The signing bytes, cut from ``raw`` by ``decode_tx`` (its body is canonical, so the slice is
    # exactly ``encode(body)``); empty for a Tx built by hand, then computed on demand.
    message: bytes = field(default=b"", repr=False, compare=False)

    @property
    def signers(self) -> tuple[bytes, ...]:
        signatures = self.signatures
        if len(signatures) == 1:   # a ballot, a registration: one signer
            return (signatures[0][0],)
        return tuple([public_key for public_key, _ in signatures])

    def signing_bytes(self) -> bytes:
        return self.message or signing_bytes(self.kind, self.chain_id, self.body)

    def verify_signatures(self, *, cache_keys: bool = False) -> None:
        """Raise ``SignatureError`` unless every attached signature verifies."""
        message = self.signing_bytes()
        for public_key, signature in self.signatures:
            verify(public_key, signature, message, cache_key=cache_keys)

    def verify_credentials(self, certification_key_of: Callable[[str], bytes | None]) -> bool:
        """Check what a transaction carries that needs no state but fixed keys: every signature and, for
        a ballot of a voter-held key, its token under its campaign's certification key (looked up by
        campaign id; campaigns never change it). Raise ``SignatureError`` (code ``bad_signature``, or
        ``bad_token``) if one fails; return False when the token could not be checked here (campaign not
        known to the caller, or a token named for another campaign): the state machine checks it then.
        True means ``Execution.apply(tx, signatures_checked=True)`` may skip both checks."""
        self.verify_signatures(cache_keys=self.kind != "vote.cast")
        body = self.body
        if self.kind != "vote.cast" or not body.token:
            return True
        if body.token_campaign_id != body.campaign_id:
            return False
        modulus = certification_key_of(body.campaign_id)
        if not modulus:
            return False
        from chain.blind import verify_token   # chain.blind needs only codec and crypto

        try:
            verify_token(modulus, self.chain_id, body.campaign_id, self.signers[0], body.token)
        except SignatureError as exc:
            raise SignatureError(f"the token is not the campaign's certification of this voter key ({exc.message})",
                                 "bad_token") from exc
        return True


def signing_bytes(kind: str, chain_id: str, body: Wire) -> bytes:
    return DOMAIN + kind.encode() + chain_id.encode() + codec.encode(body.to_wire())


def decode_tx(raw: bytes) -> Tx:
    """Strictly decode an encoded transaction; never raises anything but ``DecodeError``."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise DecodeError("a transaction is a byte string")
    raw = bytes(raw)
    if len(raw) > MAX_TX_BYTES:
        raise DecodeError(f"transaction of {len(raw)} bytes exceeds {MAX_TX_BYTES}", "too_large")
    value = codec.decode(raw, max_bytes=MAX_TX_BYTES)  # canonical: re-encoding gives the same bytes
    if not isinstance(value, list) or len(value) != 4:
        raise DecodeError("transaction must be an array [kind, chain_id, body, signatures]")
    kind, chain_id, body_raw, signatures_raw = value
    if not isinstance(kind, str) or kind not in BODY_TYPES:
        raise DecodeError(f"unknown transaction kind {kind!r}", "unknown_kind")
    if not isinstance(chain_id, str) or not CHAIN_ID_PATTERN.fullmatch(chain_id):
        raise DecodeError("malformed chain id")
    body = BODY_TYPES[kind].from_wire(body_raw, kind)
    signatures = _signature_pairs(signatures_raw)
    # [kind, chain_id, body, signatures] is canonical: the body is the bytes between the first two
    # fields and the signature list. Both strings are ASCII of ≤ 64 bytes (fixstr below 32, else
    # str8); each signature pair is [32-byte key, 64-byte signature] (bin8 each) in a list of 1..16.
    body_start = 1 + _short_str_bytes(kind) + _short_str_bytes(chain_id)
    body_end = len(raw) - (1 if len(signatures) < 16 else 3) - len(signatures) * _SIGNATURE_PAIR_BYTES
    message = DOMAIN + kind.encode() + chain_id.encode() + raw[body_start:body_end]
    return Tx(kind, chain_id, body, signatures, raw, sha256(raw), message)


_SIGNATURE_PAIR_BYTES = 1 + (2 + 32) + (2 + 64)   # fixarray(2), bin8 key, bin8 signature


def _short_str_bytes(text: str) -> int:
    """Bytes of an ASCII string of at most 255 characters in canonical msgpack."""
    return len(text) + (1 if len(text) < 32 else 2)


def _signature_pairs(value: Any) -> tuple[tuple[bytes, bytes], ...]:
    """``[[public_key, signature], ...]``: 1..16 pairs, strictly ascending by public key.

    The strict order makes the envelope of a given set of signatures unique, so nobody can
    re-order signatures to get a new tx hash for the same signed content.
    """
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SIGNATURES:
        raise DecodeError(f"signatures must be a list of 1..{MAX_SIGNATURES} [public_key, signature] pairs")
    pairs: list[tuple[bytes, bytes]] = []
    previous = b""
    for pair in value:
        if not isinstance(pair, list) or len(pair) != 2:
            raise DecodeError("each signature must be a [public_key, signature] pair")
        public_key, signature = pair
        if not isinstance(public_key, bytes) or len(public_key) != 32:
            raise DecodeError("signer must be 32 bytes")
        if not isinstance(signature, bytes) or len(signature) != 64:
            raise DecodeError("signature must be 64 bytes")
        if public_key <= previous:
            raise DecodeError("signatures must be sorted by public key, one per key")
        previous = public_key
        pairs.append((public_key, signature))
    return tuple(pairs)


def encode_tx(kind: str, chain_id: str, body: Wire, signatures: Sequence[tuple[bytes, bytes]]) -> bytes:
    ordered = sorted(signatures)
    return codec.encode([kind, chain_id, body.to_wire(), [[pk, sig] for pk, sig in ordered]])


def sign_tx(kind: str, chain_id: str, body: Wire, keys: Sequence[SigningKey]) -> Tx:
    """Sign ``body`` with every key (k-of-n committee transactions take several)."""
    if kind not in BODY_TYPES or not isinstance(body, BODY_TYPES[kind]):
        raise SignatureError(f"body does not match kind {kind!r}", "bad_kind")
    body.validate()
    message = signing_bytes(kind, chain_id, body)
    raw = encode_tx(kind, chain_id, body, [(key.public_key, key.sign(message)) for key in keys])
    return decode_tx(raw)


def make_vote(chain_id: str, voter_key: SigningKey, campaign_id: str, district_id: str,
              choices: Sequence[str], points: Sequence[int] | None = None, *, token: bytes = b"",
              token_campaign_id: str | None = None) -> Tx:
    """A ballot: deterministic bytes (no timestamp, no nonce), so re-sending gives the same tx.

    ``points`` (aligned with ``choices``) makes a scored ballot: cumulative points, or for an
    ordinal ballot the campaign's rank points of each choice's rank. ``token`` makes it the ballot of
    a voter-held key (its blind certification token, issued for ``token_campaign_id``, by default
    the ballot's campaign).
    """
    body = vote_body(campaign_id, district_id, choices, points, token=token, token_campaign_id=token_campaign_id)
    return sign_tx("vote.cast", chain_id, body, [voter_key])


def vote_body(campaign_id: str, district_id: str, choices: Sequence[str],
              points: Sequence[int] | None = None, *, token: bytes = b"",
              token_campaign_id: str | None = None) -> VoteCast:
    """The canonical ``VoteCast`` for these choices (and points, and token); ``DecodeError`` if they
    cannot be one."""
    credential = (campaign_id if token_campaign_id is None else token_campaign_id, token) if token else ("", b"")
    if points is None:
        vote = VoteCast(campaign_id, district_id, tuple(sorted(set(choices), key=lambda c: c.encode())), (),
                        *credential)
    else:
        if len(points) != len(choices):
            raise DecodeError("a scored ballot has one points entry per choice")
        pairs = sorted(zip(choices, points), key=lambda pair: scored_order(pair[0], pair[1]))
        vote = VoteCast(campaign_id, district_id, tuple(c for c, _ in pairs), tuple(p for _, p in pairs),
                        *credential)
    vote.validate()
    return vote


def make_tokens_issued(chain_id: str, gateway_key: SigningKey, campaign_id: str, batch: int, count: int) -> Tx:
    return sign_tx("tokens.issued", chain_id, TokensIssued(campaign_id, batch, count), [gateway_key])


def make_registration(chain_id: str, gateway_key: SigningKey, campaign_id: str,
                      voter_keys: Sequence[bytes]) -> Tx:
    return sign_tx("voters.register", chain_id, VotersRegister(campaign_id, tuple(voter_keys)), [gateway_key])


def body_to_json(body: Wire) -> Any:
    """A JSON-friendly view of a body (bytes as hex), for APIs and CLIs."""
    out: dict[str, Any] = {}
    for name in body.wire_names():
        out[name] = _json_value(getattr(body, name))
    return out


def _json_value(value: Any) -> Any:
    if isinstance(value, Wire):
        return body_to_json(value)
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value
