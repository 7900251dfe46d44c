"""Shared fixtures: one real 4-validator testnet (with its gateway) for the whole session, and one
headless Chromium per browser test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.browser import axe_source
from tests.gateway.browser import chromium as chromium   # the fixture
from tests.gateway.realnet import RealNet, make_realnet


@pytest.fixture(scope="session")
def realnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNet]:
    net = make_realnet(Path(tmp_path_factory.mktemp("realnet")) / "testnet")
    try:
        net.start()
        yield net
    finally:
        net.stop()


@pytest.fixture(scope="session")
def axe() -> str:
    return axe_source()
