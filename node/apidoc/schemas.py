"""JSON Schemas (OpenAPI 3.1 = JSON Schema 2020-12) of every body the node API serves or takes.

Every object the node writes itself is *closed* (``additionalProperties: false``), every hash,
key and signature has its exact hex pattern, every id the id pattern of docs/PROTOCOL.md §1, and
every integer its range, so a body that drifts from its schema fails
``tests/node/test_api_schemas.py``. The genesis document is closed too: ``genesis.model`` refuses
unknown keys at every level.

msgpack bodies (``application/octet-stream``: ``POST /api/v1/txs``, raw blocks) are canonical
msgpack (docs/PROTOCOL.md §1); their schema describes the *decoded msgpack value*: an array is a
msgpack array, an integer a msgpack integer, ``null`` nil, a string with ``format: binary`` a msgpack
bin (``minLength``/``maxLength`` count bytes) and any other string a msgpack str. A bin that holds an
encoded value says so with ``contentMediaType: application/msgpack`` and its ``contentSchema``.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

UINT_MAX = 2**63 - 1
HEIGHT_MAX = 10**18 - 1  # the API reads at most 18 digits


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def closed(required: dict[str, Schema], optional: dict[str, Schema] | None = None,
           description: str | None = None) -> Schema:
    schema: Schema = {"type": "object", "additionalProperties": False, "required": list(required),
                      "properties": {**required, **(optional or {})}}
    if description:
        schema["description"] = description
    return schema


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: Schema, *, min_items: int = 0, max_items: int | None = None, description: str | None = None) -> Schema:
    schema: Schema = {"type": "array", "items": items}
    if min_items:
        schema["minItems"] = min_items
    if max_items is not None:
        schema["maxItems"] = max_items
    if description:
        schema["description"] = description
    return schema


def tuple_of(*items: Schema, description: str | None = None) -> Schema:
    """A fixed-length array: item i matches ``items[i]``."""
    schema: Schema = {"type": "array", "prefixItems": list(items), "items": False,
                      "minItems": len(items), "maxItems": len(items)}
    if description:
        schema["description"] = description
    return schema


def integer(minimum: int = 0, maximum: int = UINT_MAX, description: str | None = None) -> Schema:
    schema: Schema = {"type": "integer", "minimum": minimum, "maximum": maximum}
    if description:
        schema["description"] = description
    return schema


def string(description: str | None = None, **constraints: Any) -> Schema:
    schema: Schema = {"type": "string", **constraints}
    if description:
        schema["description"] = description
    return schema


def one_of(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


# --- building blocks -----------------------------------------------------------------------------

ID_REGEX = "^[A-Za-z0-9._-]{1,64}$"
HASH_REGEX = "^[0-9a-f]{64}$"
ID = string("an id: [A-Za-z0-9._-]{1,64} (docs/PROTOCOL.md §1)", pattern=ID_REGEX)
HASH = string("32 bytes as 64 lowercase hex digits", pattern=HASH_REGEX)
KEY = string("an Ed25519 public key: 64 lowercase hex digits", pattern=HASH_REGEX)
SIGNATURE = string("an Ed25519 signature: 128 lowercase hex digits", pattern="^[0-9a-f]{128}$")
HEX = string("bytes as lowercase hex (two digits a byte)", pattern="^([0-9a-f]{2})*$")
HASH_OR_EMPTY = string("32 bytes as 64 lowercase hex digits, or empty", pattern="^([0-9a-f]{64})?$")
KEY_OR_EMPTY = string("the key the campaign's gateway registers voters with now (keys.rotate may have replaced "
                      "the one it was created with), or empty when that gateway was removed",
                      pattern="^([0-9a-f]{64})?$")
UINT = integer()
HEIGHT = integer(0, HEIGHT_MAX)
BLOCK_HEIGHT = integer(1, HEIGHT_MAX)
TIME_MS = integer(description="unix milliseconds")
MONEY = integer(description="kopecks")
TRACK = one_of("adult", "children")
BALLOT_TYPE = one_of("choose-1", "approval", "knapsack", "cumulative", "ordinal")
POINTS = integer(1, 1_000_000)
POINTS_LIMIT = integer(0, 1_000_000)
RULE_NAME = one_of("top-n", "greedy", "greedy-no-skip", "equal-shares")
SCOPE = one_of("district", "campaign")
BALLOTS_PER_VOTER = one_of("district", "campaign")
CAMPAIGN_STATUS = one_of("open", "closed")
INITIATIVE_STATUS = one_of("submitted", "approved", "rejected")
STAGE = one_of("contract", "works", "done", "cancelled")
CURSOR = string("a ballot cursor <height>:<index> (ASCII digits)", pattern="^[0-9]{1,18}:[0-9]{1,9}$")
KEY_MODE = one_of("gateway-held", "voter-held")
MODULUS = string("an RSA modulus (e = 65537), 3072..4096 bits, as 768..1024 lowercase hex digits "
                 "(docs/PROTOCOL.md §16.1)", pattern="^[89a-f][0-9a-f]{767,1023}$")
TOKEN = string("an RSA-PSS token as 768..1024 lowercase hex digits (docs/PROTOCOL.md §16.2)",
               pattern="^[0-9a-f]{768,1024}$")
BALLOTS_BY_MODE = closed({"gateway-held": UINT, "voter-held": UINT},
                         description="ballots of gateway-held and of voter-held keys (docs/PROTOCOL.md §16.5)")
KEY_MODES: dict[str, Schema] = {
    "voter_held": {"type": "boolean", "description": "the campaign names a certification key"},
    "tokens_issued": integer(description="tokens its gateway counted in tokens.issued records"),
    "ballots_by_mode": BALLOTS_BY_MODE,
}


def text(limit: int, *, non_empty: bool = False) -> Schema:
    description = f"text of at most {limit} code points"
    if non_empty:
        description += " with at least one non-whitespace character"
        return string(description, minLength=1, maxLength=limit)
    return string(description, maxLength=limit)


# --- JSON views of transaction bodies (chain.tx.body_to_json: bytes as hex) -------------------------

DISTRICT = closed({"district_id": ID, "name": text(200, non_empty=True), "budget": MONEY})
CHOICES = {"min_choices": integer(1, 64), "max_choices": integer(1, 64)}
BALLOT_SPEC = {"oneOf": [
    closed({"type": one_of("choose-1", "approval"), **CHOICES}),
    closed({"type": {"const": "knapsack"}, **CHOICES,
            "max_sum_cost": integer(description="kopecks; 0 = the ballot's district's budget")}),
    closed({"type": {"const": "cumulative"}, **CHOICES, "min_sum_points": POINTS_LIMIT,
            "max_sum_points": POINTS_LIMIT, "max_points": POINTS_LIMIT}),
    closed({"type": {"const": "ordinal"}, **CHOICES, "rank_points": array(POINTS, min_items=1, max_items=64)}),
], "description": "the keys depend on the type (docs/PROTOCOL.md §14.1)"}
RULE_SPEC = closed({"name": RULE_NAME, "scope": SCOPE, "top_n": UINT, "min_votes": UINT, "budget": MONEY})
CAMPAIGN_SPEC = closed({
    "campaign_id": ID, "title": text(200, non_empty=True), "track": TRACK,
    "districts": array(DISTRICT, min_items=1, max_items=512), "ballot": BALLOT_SPEC, "rule": RULE_SPEC,
    "min_cost": MONEY, "max_cost": MONEY, "categories": array(text(64, non_empty=True), max_items=64),
    "submission_start": TIME_MS, "submission_end": TIME_MS, "voting_start": TIME_MS, "voting_end": TIME_MS,
    "gateway": KEY, "registration_cap": UINT, "ballots_per_voter": BALLOTS_PER_VOTER,
}, {"certification_key": MODULUS},
    description="the campaign.create body (docs/PROTOCOL.md §2.2), bytes as hex; certification_key only when "
                "citizens may hold their own keys (§16.1)")
INITIATIVE_SPEC_FIELDS: dict[str, Schema] = {
    "campaign_id": ID, "initiative_id": ID, "district_id": ID, "title": text(300, non_empty=True),
    "category": text(64, non_empty=True), "cost": integer(1, description="kopecks"), "summary": text(4000),
    "document_hash": HASH_OR_EMPTY,
}
INITIATIVE_FIELDS: dict[str, Schema] = {
    **INITIATIVE_SPEC_FIELDS, "status": INITIATIVE_STATUS,
    "review_reason": string("the committee's reason; \"\" until a review gives one"),
    "submitted_height": HEIGHT, "submitter": KEY, "votes": UINT,
}
PROGRESS = closed({
    "campaign_id": ID, "initiative_id": ID, "stage": STAGE, "percent": integer(0, 100), "spent": MONEY,
    "note": text(2000), "evidence_hash": HASH_OR_EMPTY, "height": BLOCK_HEIGHT, "time_ms": TIME_MS,
    "reporter": KEY,
}, description="a progress.report body with the block that stored it and the reporter's key")


# --- node bodies -----------------------------------------------------------------------------------

ERROR = closed({"error": closed({
    "code": string("machine-readable error code", pattern="^[a-z][a-z0-9_]*$"),
    "message": string("what went wrong, for people")})})

CONSENSUS_STEP = one_of("new_height", "propose", "prevote", "precommit")
STATUS = closed({
    "chain_id": ID, "node": string("this node's name", minLength=1), "role": one_of("validator", "observer"),
    "height": HEIGHT, "last_block_hash": HASH, "app_hash": HASH,
    "peers": integer(description="validator: peer links up; observer: block sources that answered"),
    "mempool": integer(description="pending transactions"), "catching_up": {"type": "boolean"},
    "genesis_hash": HASH, "last_block_time_ms": TIME_MS,
    "validator_index": nullable(integer(description="this validator's index in the set of the next height "
                                                    "(null: not a validator there)")),
    "mempool_bytes": UINT, "sync_target": HEIGHT,
    "consensus": nullable(closed({"height": BLOCK_HEIGHT, "round": UINT, "step": CONSENSUS_STEP,
                                  "locked_round": integer(-1, description="-1: not locked")})),
    "peer_links": array(closed({
        "name": ID, "url": string(), "public_key": KEY, "connected": {"type": "boolean"},
        "queued_messages": UINT, "queued_txs": UINT, "last_error": nullable(string())})),
    "sources": array(closed({"name": string(), "url": string(), "height": HEIGHT,
                             "reachable": {"type": "boolean"}, "benched": {"type": "boolean"}})),
    "uptime_s": {"type": "number", "minimum": 0}, "time_ms": TIME_MS,
    "validator_set": closed({
        "height": BLOCK_HEIGHT, "from_height": HEIGHT, "validators": array(ID, min_items=1),
        "quorum": integer(1), "changes": UINT},
        description="the set in force at the next height: since from_height (0: genesis), after `changes` set "
                    "changes in all (docs/PROTOCOL.md §15)"),
    "protocol_version": integer(1, description="the protocol version in force at the next height"),
    "supported_protocol_version": integer(1, description="the highest version this node applies"),
    "protocol_upgrade": nullable(closed({"version": integer(2), "height": BLOCK_HEIGHT},
                                        description="the next scheduled protocol upgrade")),
}, description="consensus is null on an observer; peer_links is empty on an observer")

ADMISSION = closed({
    "accepted": array(HASH, description="hashes of the transactions admitted (or already pending)"),
    "rejected": array(closed({"index": integer(0, 4999, "position in the batch"),
                              "code": string(pattern="^[a-z][a-z0-9_]*$"), "message": string()})),
})

PROOF = closed({
    "tree_size": integer(1), "path": array(HASH, max_items=64, description="RFC 6962 audit path, bottom-up"),
    "tx": HEX, "block_hash": HASH, "header": HEX, "certificate": HEX,
}, description="enough for a receipt (docs/PROTOCOL.md §9): tx, header and certificate are hex of their encodings")
TX_STATUS = {"oneOf": [
    closed({"status": {"const": "committed"}, "height": BLOCK_HEIGHT, "index": integer(0, 19_999), "proof": PROOF}),
    closed({"status": one_of("pending", "unknown"), "height": {"type": "null"}, "index": {"type": "null"},
            "proof": {"type": "null"}}),
    closed({"status": {"const": "rejected"}, "height": {"type": "null"}, "index": {"type": "null"},
            "proof": {"type": "null"}, "code": string(pattern="^[a-z][a-z0-9_]*$"), "message": string()}),
]}

HEADER = closed({
    "chain_id": ID, "height": BLOCK_HEIGHT, "round": UINT, "time_ms": TIME_MS, "previous_hash": HASH,
    "tx_root": HASH, "app_hash": HASH, "proposer": UINT, "last_commit_hash": HASH,
})
CERTIFICATE = closed({
    "height": BLOCK_HEIGHT, "round": UINT, "block_hash": HASH,
    "signatures": array(tuple_of(UINT, SIGNATURE), max_items=1024,
                        description="[validator_index, signature], indices ascending"),
})
BLOCK = closed({"height": BLOCK_HEIGHT, "hash": HASH, "header": HEADER,
                "txs": array(HASH, max_items=20_000, description="tx hashes in block order"), "commit": CERTIFICATE})

CAMPAIGN_SUMMARY = closed({
    "campaign_id": ID, "title": text(200, non_empty=True), "track": TRACK, "status": CAMPAIGN_STATUS,
    "voting_start": TIME_MS, "voting_end": TIME_MS, "submission_start": TIME_MS, "submission_end": TIME_MS,
    "rule": RULE_NAME, "scope": SCOPE, "ballot": BALLOT_TYPE,
    "districts": array(closed({"district_id": ID, "name": text(200, non_empty=True)}), min_items=1, max_items=512),
    "total_ballots": UINT, "registered": UINT, "initiative_count": UINT, "gateway_key": KEY_OR_EMPTY, **KEY_MODES,
})
CAMPAIGNS = closed({"height": HEIGHT, "campaigns": array(CAMPAIGN_SUMMARY,
                                                         description="in ascending byte order of campaign_id")})

CAMPAIGN = {**closed({
    "campaign": CAMPAIGN_SPEC, "status": CAMPAIGN_STATUS, "created_height": HEIGHT,
    "closed_height": nullable(BLOCK_HEIGHT), "closed_time_ms": nullable(TIME_MS),
    "close_reason": nullable(text(1000, non_empty=True)),
    "registered": UINT, "total_ballots": UINT, "initiative_count": UINT, "height": HEIGHT,
    "gateway_key": KEY_OR_EMPTY, **KEY_MODES,
    "initiatives": array(closed(INITIATIVE_FIELDS), description="every initiative, in ascending byte order of id"),
}, description="closed_height, closed_time_ms and close_reason are null while the campaign is open (its state "
               "record holds 0, 0 and \"\" then: docs/PROTOCOL.md §4)"),
    "if": {"properties": {"status": {"const": "open"}}},
    "then": {"properties": {"closed_height": {"type": "null"}, "closed_time_ms": {"type": "null"},
                            "close_reason": {"type": "null"}}},
    "else": {"properties": {"closed_height": {"type": "integer"}, "closed_time_ms": {"type": "integer"},
                            "close_reason": {"type": "string"}}}}

INITIATIVE = closed({**INITIATIVE_FIELDS, "progress": array(PROGRESS, description="in report order")})

DISTRICT_TALLY = closed({
    "initiatives": {"type": "object", "propertyNames": {"pattern": ID_REGEX}, "additionalProperties": UINT,
                    "description": "approved initiative id → votes (ballots naming it)"},
    "scores": {"type": "object", "propertyNames": {"pattern": ID_REGEX}, "additionalProperties": UINT,
               "description": "approved initiative id → points (equal to the votes for set ballots)"},
    "winners": array(ID, description="this district's winners in selection order"),
})
TALLY = {**closed({
    "campaign": ID, "status": CAMPAIGN_STATUS, "height": HEIGHT, "total_ballots": UINT,
    "ballots_by_mode": BALLOTS_BY_MODE,
    "winners": array(ID, description="every winner in selection order; empty unless result_status is final"),
    "districts": {"type": "object", "propertyNames": {"pattern": ID_REGEX}, "additionalProperties": DISTRICT_TALLY,
                  "description": "district id → its tally; a JSON object has no order: take the district order "
                                 "from the campaign (GET /api/v1/campaigns/{campaign}, campaign.districts)"},
    "result_hash": HASH, "result_status": one_of("provisional", "computing", "final"),
    "rule": RULE_NAME, "scope": SCOPE, "closed_height": nullable(BLOCK_HEIGHT),
    "close_reason": nullable(text(1000, non_empty=True)),
}, {"result_error": string("present only when an equal-shares computation failed")},
    description="result_hash is docs/PROTOCOL.md §8's: of the final result once published, else of the counts "
                "with status as shown and no winners"),
    "if": {"properties": {"status": {"const": "open"}}},
    "then": {"properties": {"result_status": {"const": "provisional"}, "closed_height": {"type": "null"},
                            "close_reason": {"type": "null"}}},
    "else": {"properties": {"result_status": one_of("computing", "final"), "closed_height": {"type": "integer"},
                            "close_reason": {"type": "string"}}}}

BALLOT_PAGE = closed({
    "campaign": ID, "height": HEIGHT,
    "ballots": array(closed({
        "voter_key": KEY, "district_id": ID, "choices": array(ID, min_items=1, max_items=64),
        "height": BLOCK_HEIGHT, "index": integer(0, 19_999), "tx_hash": HASH, "mode": KEY_MODE,
    }, {"points": array(POINTS, min_items=1, max_items=64,
                        description="scored ballots (cumulative, ordinal) only: points[i] for choices[i]")}),
        max_items=2000, description="in commit order"),
    "next": nullable(CURSOR),
})

EVIDENCE = closed({"evidence": array(closed({
    "validator_index": UINT, "height": BLOCK_HEIGHT, "round": UINT, "step": one_of("propose", "prevote", "precommit"),
    "seen_ms": TIME_MS, "evidence": HEX,
}), max_items=1000, description="oldest first; evidence is hex of [\"evidence\", message, message]")})

ENVELOPE_ANSWER = {"oneOf": [
    closed({"ok": {"const": True}, "duplicate": {"const": True}},
           description="an exact replay of a recent (sender, sequence): ignored"),
    closed({"ok": {"const": True}, "duplicate": {"const": False},
            "malformed_messages": integer(description="consensus messages that did not decode"),
            "txs_queued": {"type": "boolean",
                           "description": "false when the envelope's transactions were dropped (gossip queue full)"}}),
]}

OPENAPI = {"type": "object", "required": ["openapi", "info", "paths"],
           "properties": {"openapi": {"const": "3.1.0"}}, "description": "this document"}


# --- the genesis document (docs/GENESIS.md §2–3) --------------------------------------------------

ANY_HEX_KEY = string("an Ed25519 public key, 64 hex digits", pattern="^[0-9a-fA-F]{64}$")
JSON_INT = integer(0, 2**53 - 1)
GENESIS_TIME = {"anyOf": [JSON_INT, string("RFC 3339 time with a UTC offset (docs/GENESIS.md §3)")]}
GENESIS_CAMPAIGN = closed({
    "campaign_id": ID, "title": text(200, non_empty=True), "track": TRACK,
    "districts": array(closed({"district_id": ID, "name": text(200, non_empty=True)}, {"budget": JSON_INT}),
                       min_items=1, max_items=512),
    "ballot": closed({"type": BALLOT_TYPE}, {
        "min_choices": JSON_INT, "max_choices": JSON_INT, "max_sum_cost": JSON_INT, "min_sum_points": JSON_INT,
        "max_sum_points": JSON_INT, "max_points": JSON_INT, "rank_points": array(JSON_INT, max_items=64)},
        description="keys of another ballot type are refused (docs/GENESIS.md §3)"),
    "rule": closed({"name": RULE_NAME}, {"scope": SCOPE, "top_n": JSON_INT, "min_votes": JSON_INT,
                                         "budget": JSON_INT}),
    "submission_start": GENESIS_TIME, "submission_end": GENESIS_TIME, "voting_start": GENESIS_TIME,
    "voting_end": GENESIS_TIME, "gateway": string("a gateway name of this file or its hex key"),
}, {"min_cost": JSON_INT, "max_cost": JSON_INT, "categories": array(text(64, non_empty=True), max_items=64),
    "registration_cap": JSON_INT, "ballots_per_voter": BALLOTS_PER_VOTER, "description": string(),
    "certification_key": string("hex RSA modulus (docs/PROTOCOL.md §16.1)", pattern="^[0-9a-fA-F]+$")})
GENESIS_INITIATIVE = closed({
    "campaign_id": ID, "initiative_id": ID, "district_id": ID, "title": text(300, non_empty=True),
    "category": text(64, non_empty=True), "cost": JSON_INT,
}, {"summary": text(4000), "document_hash": string(pattern="^([0-9a-fA-F]{64})?$")})
GENESIS = closed({
    "chain_id": ID, "genesis_time_ms": integer(1, 2**53 - 1),
    "validators": array(closed({"name": ID, "public_key": ANY_HEX_KEY, "url": string()},
                               {"operator": string(minLength=1, maxLength=200)}), min_items=1),
    "committee": closed({"threshold": integer(1, 2**53 - 1),
                         "keys": array(closed({"public_key": ANY_HEX_KEY}, {"name": text(200)}), min_items=1)}),
}, {
    "description": string(),
    "district_operators": array(closed({"district_id": ID, "public_key": ANY_HEX_KEY}, {"name": text(200)})),
    "gateways": array(closed({"name": ID, "public_key": ANY_HEX_KEY}, {"url": string()})),
    "consensus": {"type": "object", "additionalProperties": False, "properties": {
        name: integer(1, 2**53 - 1) for name in (
            "time_precision_ms", "heartbeat_ms", "batch_ms", "timeout_propose_ms", "timeout_propose_delta_ms",
            "timeout_prevote_ms", "timeout_prevote_delta_ms", "timeout_precommit_ms",
            "timeout_precommit_delta_ms", "max_block_txs")}},
    "campaigns": array(GENESIS_CAMPAIGN), "initiatives": array(GENESIS_INITIATIVE),
}, description="the genesis file as written (docs/GENESIS.md §2); its hash is over its RFC 8785 form (§1)")


# --- msgpack bodies ----------------------------------------------------------------------------------


def binary(size: int | None = None, *, max_size: int | None = None, description: str | None = None) -> Schema:
    schema: Schema = {"type": "string", "format": "binary"}
    if size is not None:
        schema["minLength"] = schema["maxLength"] = size
    if max_size is not None:
        schema["maxLength"] = max_size
    if description:
        schema["description"] = description
    return schema


BIN32 = binary(32)
BIN32_OR_EMPTY = {"anyOf": [binary(32), binary(0)]}
MP_TEXT = string("msgpack str (UTF-8)")


def _body(*fields: Schema) -> Schema:
    return tuple_of(*fields)


CAMPAIGN_FIELDS: tuple[Schema, ...] = (
    ID, text(200, non_empty=True), TRACK,
    array(tuple_of(ID, text(200, non_empty=True), UINT), min_items=1, max_items=512),
    {"anyOf": [tuple_of(one_of("choose-1", "approval"), UINT, UINT),
               tuple_of({"const": "knapsack"}, UINT, UINT, UINT),
               tuple_of({"const": "cumulative"}, UINT, UINT, POINTS_LIMIT, POINTS_LIMIT, POINTS_LIMIT),
               tuple_of({"const": "ordinal"}, UINT, UINT, array(POINTS, min_items=1, max_items=64))]},
    tuple_of(RULE_NAME, SCOPE, UINT, UINT, UINT), UINT, UINT,
    array(text(64, non_empty=True), max_items=64), UINT, UINT, UINT, UINT, BIN32, UINT, BALLOTS_PER_VOTER,
)
MSGPACK_BODIES: dict[str, Schema] = {
    "campaign.create": {"anyOf": [_body(*CAMPAIGN_FIELDS), _body(*CAMPAIGN_FIELDS, binary(
        max_size=512, description="certification_key: an RSA modulus of 384..512 bytes (docs/PROTOCOL.md §16.1)"))]},
    "initiative.submit": _body(ID, ID, ID, text(300, non_empty=True), text(64, non_empty=True), integer(1),
                               text(4000), BIN32_OR_EMPTY),
    "initiative.review": _body(ID, ID, {"type": "boolean"}, text(1000)),
    "voters.register": _body(ID, array(BIN32, min_items=1, max_items=1024)),
    "vote.cast": {"anyOf": [_body(ID, ID, array(ID, min_items=1, max_items=64)),
                            _body(ID, ID, array(ID, min_items=1, max_items=64), array(POINTS, min_items=1,
                                                                                       max_items=64)),
                            _body(ID, ID, array(ID, min_items=1, max_items=64), array(POINTS, max_items=64),
                                  tuple_of(ID, binary(max_size=512, description="the token, 384..512 bytes"),
                                           description="[token_campaign_id, token]: a voter-held key's ballot "
                                                       "(docs/PROTOCOL.md §16.3)"))]},
    "tokens.issued": _body(ID, UINT, integer(1, 65_536)),
    "campaign.close": _body(ID, text(1000, non_empty=True)),
    "progress.report": _body(ID, ID, STAGE, integer(0, 100), UINT, text(2000), BIN32_OR_EMPTY),
    "validators.update": _body(text(1000, non_empty=True),
                               array(tuple_of(ID, text(200, non_empty=True), BIN32, string(maxLength=200)),
                                     max_items=64),
                               array(ID, max_items=64)),
    "keys.rotate": _body(one_of("committee", "district", "gateway"), ID, BIN32_OR_EMPTY, BIN32_OR_EMPTY, UINT,
                         text(1000, non_empty=True)),
    "protocol.upgrade": _body(integer(2), integer(1), text(1000, non_empty=True)),
}
SIGNATURES = array(tuple_of(BIN32, binary(64)), min_items=1, max_items=16,
                   description="[public_key, signature] pairs, strictly ascending by public_key")
TX_ENVELOPE = {"oneOf": [tuple_of({"const": kind}, ID, body, SIGNATURES) for kind, body in MSGPACK_BODIES.items()],
               "description": "an encoded transaction, decoded: [kind, chain_id, body, signatures] "
                              "(docs/PROTOCOL.md §2; cross-field rules and signatures are checked by the node)"}
ENCODED_TX = {**binary(description="one encoded transaction (at most 65,536 bytes are ever accepted; a larger "
                                   "one is rejected in the answer with code too_large)"),
              "contentMediaType": "application/msgpack", "contentSchema": ref("TxEnvelope")}
TX_BATCH = array(ENCODED_TX, min_items=1, max_items=5000,
                 description="msgpack: the canonical encoding of this array of bin, at most 4 MiB. Every item is "
                             "answered one by one (accepted or rejected with a code) in a 200 answer; only a body "
                             "that is not such an array is refused (400/413)")

MP_HEADER = tuple_of(ID, BLOCK_HEIGHT, UINT, TIME_MS, BIN32, BIN32, BIN32, UINT, BIN32,
                     description="[chain_id, height, round, time_ms, previous_hash, tx_root, app_hash, proposer, "
                                 "last_commit_hash]; the block hash is sha256 of this array's encoding")
MP_CERTIFICATE = tuple_of(BLOCK_HEIGHT, UINT, BIN32, array(tuple_of(UINT, binary(64)), max_items=1024),
                          description="[height, round, block_hash, [[validator_index, signature], ...]]")
MP_BLOCK = tuple_of(MP_HEADER, array(binary(max_size=65536), max_items=20_000),
                    {"anyOf": [MP_CERTIFICATE, {"type": "null"}]},
                    description="[header, [encoded tx (bin), ...], last_commit or nil] — not wrapped in a bin")
RAW_BLOCK = tuple_of(MP_BLOCK, MP_CERTIFICATE, description="[block, certificate] (docs/PROTOCOL.md §12)")
RAW_BLOCK_PAGE = array(RAW_BLOCK, max_items=500,
                       description="consecutive blocks from `from`; may end early (docs/PROTOCOL.md §12)")


ROSTER = closed({
    "height": HEIGHT, "node_height": HEIGHT,
    "from_height": HEIGHT, "committed_height": nullable(BLOCK_HEIGHT),
    "changed_by": array(closed({"kind": one_of("validators.update", "keys.rotate"), "tx_hash": HASH}),
                        description="the transactions that made this roster, in block order (empty: genesis)"),
    "validators": array(closed({"index": UINT, "name": ID, "operator": text(200, non_empty=True), "public_key": KEY,
                                "url": string(maxLength=200)}), min_items=1,
                        description="in proposer order: the proposer of (h, r) is validators[(h + r) mod n]"),
    "quorum": integer(1), "skip": integer(1),
    "committee": closed({"threshold": integer(1), "members": array(closed({"name": ID, "public_key": KEY}),
                                                                      min_items=1)}),
    "district_operators": array(closed({"district_id": ID, "public_key": KEY})),
    "gateways": array(closed({"name": ID, "public_key": KEY})),
    "protocol_version": integer(1),
    "next_change": nullable(closed({"from_height": BLOCK_HEIGHT, "committed_height": BLOCK_HEIGHT})),
}, description="everything a signature at `height` is checked against (docs/PROTOCOL.md §15.2)")

VALIDATOR_CHANGES = closed({
    "chain_id": ID, "height": HEIGHT,
    "changes": array(closed({
        "height": BLOCK_HEIGHT, "effective_height": BLOCK_HEIGHT, "header": HEX, "certificate": HEX,
        "txs": array(closed({"tx": HEX, "index": integer(0, 19_999), "tree_size": integer(1),
                             "proof": array(HASH, max_items=64)}), min_items=1, max_items=64,
                     description="every validators.update of the block, in block order, with its RFC 6962 path")}),
        description="by height; a light client checks each under the set it trusts (docs/PROTOCOL.md §15.4)"),
})


def components() -> dict[str, Schema]:
    """``components.schemas`` of the OpenAPI document."""
    return {
        "Error": ERROR, "Status": STATUS, "Genesis": GENESIS, "OpenApi": OPENAPI, "Evidence": EVIDENCE,
        "Admission": ADMISSION, "EnvelopeAnswer": ENVELOPE_ANSWER, "TxStatus": TX_STATUS, "TxProof": PROOF, "Block": BLOCK, "BlockHeader": HEADER,
        "Certificate": CERTIFICATE, "Campaigns": CAMPAIGNS, "CampaignSummary": CAMPAIGN_SUMMARY,
        "Campaign": CAMPAIGN, "CampaignSpec": CAMPAIGN_SPEC, "Tally": TALLY, "DistrictTally": DISTRICT_TALLY,
        "BallotPage": BALLOT_PAGE, "Initiative": INITIATIVE, "Progress": PROGRESS,
        "TxBatch": TX_BATCH, "TxEnvelope": TX_ENVELOPE, "RawBlock": RAW_BLOCK, "RawBlockPage": RAW_BLOCK_PAGE,
        "Roster": ROSTER, "ValidatorChanges": VALIDATOR_CHANGES,
    }
