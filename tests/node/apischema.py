"""Check a served body against the schema the OpenAPI document gives for its route and status.

JSON bodies are validated as they are; msgpack bodies (``application/octet-stream``) are decoded
strictly (canonical msgpack) and their byte strings turned into one character per byte, so that
``minLength``/``maxLength`` of a ``format: binary`` string count bytes (node/apidoc/schemas.py).
"""

from __future__ import annotations

import io
import json
from typing import Any

from jsonschema import Draft202012Validator

from chain import codec
from node.ops.backup import read_backup

OCTET = "application/octet-stream"


def response_schema(document: dict[str, Any], path: str, method: str, status: int,
                    content_type: str) -> dict[str, Any]:
    responses = document["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, which its entry does not list"
    content = responses[str(status)]["content"]
    assert content_type in content, f"{method} {path} {status} answered {content_type}, documented {list(content)}"
    schema: dict[str, Any] = content[content_type]["schema"]
    return schema


def msgpack_view(value: Any) -> Any:
    """A decoded msgpack value as the schemas describe it: bin → a string of one character per byte."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, list):
        return [msgpack_view(item) for item in value]
    return value


def validate_body(document: dict[str, Any], path: str, method: str, status: int, content_type: str,
                  body: bytes) -> Any:
    """Validate ``body``; return the decoded value. Raises ``jsonschema.ValidationError`` on a mismatch."""
    if status == 204:   # no content (the CORS preflight): the entry documents no body, and there is none
        assert str(status) in document["paths"][path][method.lower()]["responses"] and not body
        return None
    schema = response_schema(document, path, method, status, content_type)
    if content_type == "application/json":
        value = json.loads(body)
    elif schema.get("format") == "binary":   # opaque bytes (a document, a backup): one character per byte
        value = body.decode("latin-1")
    elif content_type == OCTET:
        value = msgpack_view(codec.decode(body, max_bytes=16 * 1024 * 1024))
    elif content_type == "application/x-veche-backup":   # a binary file (node/ops/backup.py), read back whole
        header, batches = read_backup(io.BytesIO(body))
        assert header.chain_id and sum(len(batch) for batch in batches) > 0
        value = body.decode("latin-1")
    else:
        value = body.decode()
    Draft202012Validator({**schema, "components": document["components"]}).validate(value)
    return value


def validate_value(document: dict[str, Any], component: str, value: Any) -> None:
    """Validate a value against ``components.schemas[component]``."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    Draft202012Validator(schema).validate(value)
