"""Unlinkability of voter-held ballots relayed with a random delay: a time-order attacker holding the
gateway's complete records (store and log) and the chain pairs 1,000 citizens with their ballots no
better than chance; the same attacker pairs nearly all of them when ballots are not delayed (see
tests/gateway/unlinking.py for the attack, scripts/unlinkability.py for other settings)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.gateway.unlinking import measure

pytestmark = pytest.mark.slow


def test_a_time_order_attacker_pairs_relayed_ballots_no_better_than_chance(tmp_path: Path) -> None:
    result = asyncio.run(measure(tmp_path, voters=1000, delay=(0.0, 20.0), tick=0.5))
    print(result.as_dict())
    # chance (a random pairing) gets 1 right on average; 10 or more happens with probability < 1e-7
    assert result.relayed_matches < 10, result.as_dict()
    # without the delay the same attack pairs many: dozens of times chance (with 32 citizens at once and
    # tokens counted in batches, the undelayed order is already partly mixed; one at a time it is ~100 %)
    assert result.undelayed_matches >= 20, result.as_dict()
    # the gateway logs nothing per citizen
    assert result.log_lines < 50, result.as_dict()
