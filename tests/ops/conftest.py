from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.node.netkit import free_base_port
from tests.transparency.fakenode import ThreadedTestnet, write_testnet


@pytest.fixture
def fake_testnet(tmp_path: Path) -> Iterator[ThreadedTestnet]:
    directory = tmp_path / "testnet"
    write_testnet(directory, base_port=free_base_port(6))
    with ThreadedTestnet(directory) as testnet:
        yield testnet
