"""schemathesis hooks for the node API's msgpack bodies (``SCHEMATHESIS_HOOKS=tests.node.st_hooks``).

The OpenAPI document describes ``application/octet-stream`` bodies as the decoded msgpack value
(node/apidoc/schemas.py): ``format: binary`` strings are msgpack bin. These hooks are the custom
serializer and deserializer that convention asks for, and a generator that follows the
``contentSchema`` of a batch's items — signed-transaction envelopes of every kind, for this
chain or another — so that fuzzed batches reach the transaction decoder's field checks, the
chain-id check and signature verification instead of stopping at the first byte.
"""

from __future__ import annotations

import os
from typing import Any

import msgpack
import schemathesis
from hypothesis import strategies as st
from schemathesis.transport.serialization import Binary

CHAIN_ID = os.environ.get("VECHE_CHAIN_ID", "veche-test")
KINDS = ("campaign.create", "initiative.submit", "initiative.review", "voters.register", "vote.cast",
         "campaign.close", "progress.report")


def to_msgpack_value(value: Any) -> Any:
    if isinstance(value, Binary):
        return value.data
    if isinstance(value, list):
        return [to_msgpack_value(item) for item in value]
    if isinstance(value, dict):
        return {key: to_msgpack_value(item) for key, item in value.items()}
    return value


@schemathesis.serializer("application/octet-stream")
def serialize_msgpack(ctx: Any, value: Any) -> bytes:
    packed: bytes = msgpack.packb(to_msgpack_value(value), use_bin_type=True)
    return packed


def _json_view(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("latin-1")  # one character per byte: minLength/maxLength count bytes
    if isinstance(value, list):
        return [_json_view(item) for item in value]
    return value


@schemathesis.deserializer("application/octet-stream")
def deserialize_msgpack(ctx: Any, response: Any) -> Any:
    return _json_view(msgpack.unpackb(response.content, raw=False, strict_map_key=False))


# --- structured transactions for POST /api/v1/txs --------------------------------------------------

ids = st.one_of(st.sampled_from(["ib-2027", "ib-deti-2027", "live-topn", "volgograd", "t-approved", "e1"]),
                st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True), st.text(max_size=8))
texts = st.text(max_size=40)
uints = st.one_of(st.integers(0, 300), st.integers(0, 2**63 - 1), st.integers(-5, -1))
hashes = st.one_of(st.binary(min_size=32, max_size=32), st.just(b""), st.binary(max_size=40))
FIELDS: dict[str, list[st.SearchStrategy[Any]]] = {
    "campaign.create": [ids, texts, st.sampled_from(["adult", "children", "x"]),
                        st.lists(st.tuples(ids, texts, uints).map(list), max_size=3),
                        st.one_of(st.tuples(st.sampled_from(["choose-1", "approval"]), uints, uints).map(list),
                                  st.tuples(st.just("knapsack"), uints, uints, uints).map(list),
                                  st.tuples(st.just("cumulative"), uints, uints, uints, uints, uints).map(list),
                                  st.tuples(st.just("ordinal"), uints, uints, st.lists(uints, max_size=4)).map(list)),
                        st.tuples(st.sampled_from(["top-n", "greedy", "equal-shares"]),
                                  st.sampled_from(["district", "campaign"]), uints, uints, uints).map(list),
                        uints, uints, st.lists(texts, max_size=3), uints, uints, uints, uints, hashes, uints,
                        st.sampled_from(["district", "campaign"])],
    "initiative.submit": [ids, ids, ids, texts, texts, uints, texts, hashes],
    "initiative.review": [ids, ids, st.booleans(), texts],
    "voters.register": [ids, st.lists(hashes, min_size=1, max_size=4)],
    "vote.cast": [ids, ids, st.lists(ids, min_size=1, max_size=4)],
    "campaign.close": [ids, texts],
    "progress.report": [ids, ids, st.sampled_from(["contract", "works", "done", "cancelled"]), uints, uints, texts,
                        hashes],
}


@st.composite
def envelopes(draw: Any) -> Binary:
    kind = draw(st.sampled_from(KINDS))
    fields = [draw(strategy) for strategy in FIELDS[kind]]
    if kind == "vote.cast" and draw(st.booleans()):  # a scored ballot: points for each choice
        fields.append(draw(st.lists(st.integers(-1, 1_000_001), min_size=1, max_size=4)))
    if draw(st.integers(0, 9)) == 0:  # a body of the wrong length
        fields = fields[:-1]
    signatures = draw(st.lists(st.tuples(st.binary(min_size=32, max_size=32),
                                         st.binary(min_size=64, max_size=64)).map(list), min_size=1, max_size=3))
    chain_id = draw(st.sampled_from([CHAIN_ID, CHAIN_ID, "another-chain"]))
    return Binary(msgpack.packb([kind, chain_id, fields, signatures], use_bin_type=True))


def _is_batch(body: Any) -> bool:
    return isinstance(body, list) and 1 <= len(body) <= 5000 and all(isinstance(item, Binary) for item in body)


@schemathesis.hook
def before_generate_body(context: Any, strategy: Any) -> Any:
    """Swap the items of a schema-valid batch for structured envelopes half of the time.

    Only bodies that already match the batch schema are touched (and stay valid: every item is a
    bin), so negative test cases keep violating the schema."""
    operation = context.operation
    if operation is None or operation.method.upper() != "POST" or operation.path != "/api/v1/txs":
        return strategy
    structured = st.lists(envelopes(), min_size=1, max_size=4)
    return strategy.flatmap(lambda body: st.one_of(st.just(body), structured) if _is_batch(body) else st.just(body))


# --- schemathesis 4.32: keep 2020-12 tuples of response schemas ------------------------------------
# Its response-schema preparation rewrites OpenAPI 3.1 ``prefixItems`` into the Draft 4 tuple form
# (``items: [...]``) and then checks the result as Draft 2020-12, which rejects it ("Schema Error" on
# every route whose body holds a tuple). Request schemas already keep ``prefixItems`` under 3.1.
import schemathesis.specs.openapi.adapter.responses as _responses  # noqa: E402

_to_json_schema = getattr(_responses, "to_json_schema")


def _keep_prefix_items(*args: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("convert_prefix_items", False)
    return _to_json_schema(*args, **kwargs)


setattr(_responses, "to_json_schema", _keep_prefix_items)
