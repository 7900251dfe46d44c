"""docs/PROTOCOL.md §15.6 prints governance test vectors; this recomputes every one from the code."""

from __future__ import annotations

import re

from chain.block import Validator, ValidatorSet
from chain.crypto import SigningKey
from chain.governance import Roster, SetChange, UpgradeRecord, roster_key, upgrade_key
from chain.state import compute_app_hash
from chain.tx import KeysRotate, ProtocolUpgrade, Tx, ValidatorEntry, ValidatorsUpdate, sign_tx
from tests.paths import REPO_ROOT as REPO

TEST1 = SigningKey(bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
TEST2 = SigningKey(bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"))
TEST3 = SigningKey(bytes.fromhex("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7"))


def vector_block() -> str:
    text = (REPO / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    section = text[text.index("### 15.6 Test vectors"):]
    return section[section.index("```\n") + 4: section.index("\n```", section.index("```\n") + 4)]


def printed() -> dict[str, list[str]]:
    """Label → hex values in order (continuation lines of 16 spaces join the previous value)."""
    values: dict[str, list[str]] = {}
    last: str | None = None
    for line in vector_block().splitlines():
        match = re.fullmatch(r"(signing bytes|tx hash|key|value|version 1|version 2)\s+([0-9a-f]+)", line)
        if match:
            last = match.group(1)
            values.setdefault(last, []).append(match.group(2))
        elif re.fullmatch(r" {16}[0-9a-f]+", line) and last is not None:
            values[last][-1] += line.strip()
        else:
            last = None
    return values


def signed_vectors() -> list[Tx]:
    return [
        sign_tx("validators.update", "veche-test", ValidatorsUpdate("validator-3 lost", (ValidatorEntry(
            "validator-4", "committee", TEST1.public_key, "https://node4.example.org"),), ("validator-3",)), [TEST2]),
        sign_tx("keys.rotate", "veche-test",
                KeysRotate("gateway", "gw", TEST1.public_key, TEST3.public_key, 0, "new contractor"), [TEST2]),
        sign_tx("protocol.upgrade", "veche-test", ProtocolUpgrade(2, 1000, "release 2.0"), [TEST2]),
    ]


def test_the_governance_vectors_in_docs_protocol_md() -> None:
    values = printed()
    txs = signed_vectors()
    assert values["signing bytes"] == [tx.signing_bytes().hex() for tx in txs]
    assert values["tx hash"] == [tx.hash.hex() for tx in txs]
    validators = ValidatorSet((Validator("v0", TEST1.public_key, "committee", "https://a.example.org"),
                               Validator("v1", TEST3.public_key, "district:d1", "https://b.example.org")))
    roster = Roster(validators, (("alice", TEST2.public_key),), 1, (("d1", TEST3.public_key),),
                    (("gw", TEST1.public_key),))
    change = SetChange(7, 5, roster, (("validators.update", b"\x22" * 32),))
    upgrade = UpgradeRecord(1000, 2, 17, b"\x33" * 32)
    assert values["key"] == [roster_key(7).hex(), upgrade_key(1000).hex()]
    assert values["value"] == [change.encode().hex(), upgrade.encode().hex()]
    assert values["version 1"] == [compute_app_hash(b"\x00" * 32, 4, {}, 1).hex()]
    assert values["version 2"] == [compute_app_hash(b"\x00" * 32, 4, {}, 2).hex()]
    assert SetChange.decode(roster_key(7), bytes.fromhex(values["value"][0])) == change
