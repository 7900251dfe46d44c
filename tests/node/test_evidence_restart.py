"""Real processes: evidence an honest validator recorded against a Byzantine one (test-only mode,
``VECHE_BYZANTINE``) is still listed by ``GET /api/v1/evidence`` after the honest node is killed
(-9) and started again; a wiped data directory starts with none and re-syncs without error.

The Byzantine validator is killed before the honest one, so nothing can bring the evidence back
after the restart but the honest node's own store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.node.netkit import LocalNet, get_json, wait_for

pytestmark = pytest.mark.slow

BYZANTINE = "validator-3"
HONEST = "validator-0"


def evidence(net: LocalNet, name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get_json(net.urls[name] + "/api/v1/evidence")["evidence"]
    return items


def restored_counts(net: LocalNet) -> list[int]:
    log = (net.homes[HONEST] / "process.log").read_text(errors="replace")
    return [int(count) for count in re.findall(r"restored (\d+) equivocation evidence items", log)]


@pytest.fixture
def net(tmp_path: Path) -> Iterator[LocalNet]:
    network = LocalNet(tmp_path / "net", validators=4, observers=0, demo=False)
    try:
        for name in network.validators:
            network.start(name, {"VECHE_BYZANTINE": "equivocate-votes"} if name == BYZANTINE else None)
        for name in network.validators:
            network.wait_up(name)
        yield network
    finally:
        network.close()


@pytest.mark.timeout(120)
def test_evidence_survives_kill_9_and_a_wiped_data_directory_starts_empty(net: LocalNet) -> None:
    wait_for(lambda: any(item["validator_index"] == 3 for item in evidence(net, HONEST)), 45,
             f"evidence against {BYZANTINE} on {HONEST}")
    net.kill(BYZANTINE)
    before = evidence(net, HONEST)  # the Byzantine validator is gone: no new equivocation from here on
    assert before and all(item["validator_index"] == 3 for item in before)

    net.kill(HONEST)
    restored_before = restored_counts(net)
    net.start(HONEST)
    net.wait_up(HONEST)
    after = evidence(net, HONEST)
    # every item, with its first-seen time: a re-detected or re-relayed item would carry a new one
    assert [item for item in before if item not in after] == []
    slots = [(item["validator_index"], item["height"], item["round"], item["step"]) for item in after]
    assert len(slots) == len(set(slots))  # each once
    wait_for(lambda: len(restored_counts(net)) > len(restored_before), 10, "the restore line in the log")
    assert restored_counts(net)[-1] >= len(before)

    height = net.height("validator-1")
    net.stop(HONEST)
    net.wipe_data(HONEST)
    restored_before = restored_counts(net)
    net.start(HONEST)
    net.wait_up(HONEST)
    assert evidence(net, HONEST) == []
    assert restored_counts(net) == restored_before  # nothing restored, and no error
    wait_for(lambda: net.height(HONEST) >= height, 45, f"{HONEST} to re-sync to height {height}")
    assert net.alive(HONEST)
