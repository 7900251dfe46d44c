"""A fixed 3072-bit certification key for tests (generating one costs ≈ 0.3 s per testnet)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from chain.crypto import RsaPrivateNumbers, rsa_private_numbers

KEY_FILE = Path(__file__).parent / "chain" / "data" / "cert_key_3072.json"


@lru_cache(maxsize=1)
def test_certification_key() -> RsaPrivateNumbers:
    document = json.loads(KEY_FILE.read_text())
    return rsa_private_numbers(int(document["p"], 16), int(document["q"], 16))


test_certification_key.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
