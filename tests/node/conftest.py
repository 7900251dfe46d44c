"""Fixtures shared by the node's unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import chain.tx
from tests.node.chainfix import Chain, make_chain


@pytest.fixture
def chain_() -> Chain:
    return make_chain()


@pytest.fixture
def verify_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Counts every Ed25519 verification made through transaction signature checks."""
    calls: list[bytes] = []
    real = getattr(chain.tx, "verify")

    def counting(public_key: bytes, signature: bytes, message: bytes, *, cache_key: bool = False) -> None:
        calls.append(public_key)
        real(public_key, signature, message, cache_key=cache_key)

    monkeypatch.setattr(chain.tx, "verify", counting)
    yield calls
