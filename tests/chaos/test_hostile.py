"""The hostile-client kinds of the flood (``--flood-attacks``): parsing and the gates they judge by."""

from __future__ import annotations

from typing import Any

import pytest

from veche_chaos.cli import attack_kinds
from veche_chaos.hostile import KINDS, HostileLoad


def test_attack_kinds_parse_and_refuse_unknown_ones() -> None:
    assert attack_kinds("") == ()
    assert attack_kinds("all") == KINDS
    assert attack_kinds("trickle, envelope") == ("trickle", "envelope")
    with pytest.raises(SystemExit):
        attack_kinds("trickle,ddos")


def report(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "trickle": {"attempts": 10, "http_status": {408: 10}, "connection_seconds": {"count": 10}},
        "slow_upload": {"attempts": 4, "http_status": {0: 4}, "connection_seconds": {"count": 4}},
        "envelope": {"attempts": 2, "http_status": {400: 2}},
        "garbage": {"attempts": 9, "http_status": {400: 1, 429: 8}},
        "unicode": {"attempts": 3, "http_status": {400: 3}},
    }
    base.update(overrides)
    return base


def judged(document: dict[str, Any]) -> dict[str, bool]:
    load = HostileLoad.__new__(HostileLoad)       # judge() needs no cluster
    return {name.split(" (")[0]: passed for name, passed in load.judge(document)}


def test_gates_pass_on_a_defended_node_and_fail_on_each_lapse() -> None:
    assert all(judged(report()).values())
    lapses = [report(garbage={"attempts": 1, "http_status": {500: 1}}),
              report(envelope={"attempts": 1, "http_status": {200: 1}}),
              report(unicode={"attempts": 1, "http_status": {400: 2, 500: 1}}),
              report(trickle={"attempts": 1, "http_status": {}}),
              report(slow_upload={"attempts": 1, "http_status": {}})]
    for document in lapses:
        assert not all(judged(document).values()), document
