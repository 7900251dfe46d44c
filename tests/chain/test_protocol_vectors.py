"""docs/PROTOCOL.md §13.2 is what the code does, byte for byte.

The section's genesis document and every line of its vectors block are parsed out of the document
and compared with the scripted chain of ``tests/chain/vectorchain.py``; the lines that can be
checked from the document alone (hashes of the listed bytes, the genesis bytes, the readable keys)
are recomputed from the document's own text, as an independent verifier would.
"""

from __future__ import annotations

import hashlib
import json
import re

from chain import codec
from genesis.model import canonical_json
from tests.chain.vectorchain import build, genesis_document, key_bytes, render
from tests.paths import REPO_ROOT

SECTION = "### 13.2 A scripted chain, byte for byte"


def section_text() -> str:
    text = (REPO_ROOT / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start)
    return text[start:end if end >= 0 else len(text)]


def fenced(section: str, language: str) -> str:
    match = re.search(rf"```{language}\n(.*?)\n```", section, re.S)
    assert match is not None, f"no ```{language} block in §13.2"
    return match.group(1)


def test_every_line_of_the_vectors_block_is_what_the_chain_produces() -> None:
    documented = fenced(section_text(), "vectors").splitlines()
    produced = render().splitlines()
    for number, (doc_line, code_line) in enumerate(zip(documented, produced), 1):
        assert doc_line == code_line, f"line {number} of §13.2 differs:\n docs: {doc_line}\n code: {code_line}"
    assert len(documented) == len(produced)


def test_the_documented_genesis_is_the_chain_genesis_and_its_hash_follows_from_the_text() -> None:
    section = section_text()
    document = json.loads(fenced(section, "json"))
    assert document == genesis_document()
    lines = dict(line.split(" ", 1) for line in fenced(section, "vectors").splitlines()
                 if line.startswith(("genesis_jcs", "genesis_hash")))
    assert bytes.fromhex(lines["genesis_jcs"]) == canonical_json(document)
    assert hashlib.sha256(bytes.fromhex(lines["genesis_jcs"])).hexdigest() == lines["genesis_hash"]


def encode_changes(changes: dict[bytes, bytes]) -> bytes:
    """``enc([[key, value], ...])`` sorted by key, written from docs/PROTOCOL.md §1 alone (not chain.codec)."""
    def array_header(count: int) -> bytes:
        return bytes([0x90 + count]) if count < 16 else b"\xdc" + count.to_bytes(2, "big")

    def binary(data: bytes) -> bytes:
        if len(data) < 256:
            return b"\xc4" + bytes([len(data)]) + data
        return b"\xc5" + len(data).to_bytes(2, "big") + data

    return array_header(len(changes)) + b"".join(
        b"\x92" + binary(key) + binary(changes[key]) for key in sorted(changes))


def test_hashes_in_the_block_follow_from_the_listed_bytes() -> None:
    """Recompute every tx hash and app hash from the document's own lines, with §1 and §4 written
    out here (no chain code), as an independent verifier would."""
    lines = fenced(section_text(), "vectors").splitlines()
    previous = bytes.fromhex(next(line.split()[2] for line in lines if line.startswith("app_hash 0 ")))
    genesis_hash = bytes.fromhex(next(line.split()[1] for line in lines if line.startswith("genesis_hash ")))
    assert hashlib.sha256(genesis_hash + (0).to_bytes(8, "big") + hashlib.sha256(b"\x90").digest()).digest() == previous
    changes: dict[bytes, bytes] = {}
    checked = 0
    for line in lines:
        words = line.split(" ")
        if words[0] == "tx":
            assert hashlib.sha256(bytes.fromhex(words[2])).hexdigest() == words[1]
            codec.decode(bytes.fromhex(words[2]))  # canonical msgpack
        elif words[0] == "change":
            changes[key_bytes(words[1])] = b"" if words[2] == "-" else bytes.fromhex(words[2])
        elif words[0] == "app_hash" and words[1] != "0":
            height = int(words[1])
            digest = hashlib.sha256(encode_changes(changes)).digest()
            assert hashlib.sha256(previous + height.to_bytes(8, "big") + digest).hexdigest() == words[2], \
                f"app hash {height}"
            assert encode_changes(changes) == codec.encode([[key, changes[key]] for key in sorted(changes)])
            previous, changes = bytes.fromhex(words[2]), {}
            checked += 1
    assert checked == 5


def test_the_chain_holds_every_record_state_the_section_promises() -> None:
    _, _, heights = build()
    changes = {key: value for entry in heights for key, value in entry.changes}
    assert codec.decode(changes[b"S/c/c-open"])[1:6] == ["open", 1, 0, 0, ""]
    assert codec.decode(changes[b"S/c/c-vote"])[1:6] == ["closed", 1, 4, 1_764_000_005_000, "the vote is over"]
    assert codec.decode(changes[b"S/i/c-open/o1"])[1:3] == ["submitted", ""]
    assert codec.decode(changes[b"S/i/c-vote/a1"])[1:3] == ["approved", ""]
    assert codec.decode(changes[b"S/i/c-vote/a2"])[1:3] == ["rejected", "over the district budget"]
    ballot_keys = [key for key in changes if key.startswith(b"S/b/c-vote/")]  # one ballot per campaign
    assert len(ballot_keys) == 1 and ballot_keys[0].endswith(b"/") and len(ballot_keys[0]) == len(b"S/b/c-vote/") + 33
    assert b"/" in ballot_keys[0][len(b"S/b/c-vote/"):-1]  # the voter key holds a 2f byte: keys are not split at /
    assert any(key.startswith(b"S/p/c-vote/a1/") for key in changes) and b"S/r/c-vote" in changes
    assert changes[b"S/s/c-points/p2"] == (6).to_bytes(8, "big") and changes[b"S/t/c-points/p2"] == (1).to_bytes(8, "big")
    scored = [codec.decode(value) for key, value in changes.items() if key.startswith(b"S/b/c-points/")]
    assert [ballot[1:] for ballot in scored] == [[["p2", "p1"], [6, 4]]]
