"""A node behind its proxy: limits.trusted_clients matches the client the proxy names, and only when the
proxy is listed in trusted_proxies; a bad ca_file is a config error before the node opens anything."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from node.config import load_config
from node.errors import ConfigError
from tests.node.apphost import make_testnet, serve_node

OCTET = {"Content-Type": "application/octet-stream"}
GATEWAY = "203.0.113.7"


def posts(home: Path, headers: dict[str, str]) -> dict[str, float]:
    async def main() -> dict[str, float]:
        async with serve_node(home) as (node, client):
            response = await client.post("/api/v1/txs", data=b"\x90", headers={**OCTET, **headers})
            assert response.status == 400            # an empty batch: refused, after it was counted
            return {"trusted": node.metrics.tx_posts.value("trusted"),
                    "untrusted": node.metrics.tx_posts.value("untrusted")}
    return asyncio.run(main())


def test_trusted_clients_through_a_listed_proxy_only(tmp_path: Path) -> None:
    layout = make_testnet(tmp_path / "net", config={"trusted_proxies": ["127.0.0.1"]})
    home = layout.nodes[0].home
    document = json.loads((home / "config.json").read_text())
    document["limits"] = {"trusted_clients": [GATEWAY]}
    (home / "config.json").write_text(json.dumps(document))
    assert posts(home, {"X-Forwarded-For": GATEWAY}) == {"trusted": 1, "untrusted": 0}
    assert posts(home, {"X-Real-IP": GATEWAY}) == {"trusted": 1, "untrusted": 0}
    assert posts(home, {"X-Forwarded-For": f"{GATEWAY}, 198.51.100.3"}) == {"trusted": 0, "untrusted": 1}
    assert posts(home, {}) == {"trusted": 0, "untrusted": 1}                 # the proxy itself is not trusted
    document["trusted_proxies"] = []
    (home / "config.json").write_text(json.dumps(document))
    assert posts(home, {"X-Forwarded-For": GATEWAY}) == {"trusted": 0, "untrusted": 1}


def test_bad_trusted_proxies_and_ca_file_are_config_errors(tmp_path: Path) -> None:
    home = make_testnet(tmp_path / "net").nodes[0].home
    document = json.loads((home / "config.json").read_text())
    (home / "config.json").write_text(json.dumps({**document, "trusted_proxies": ["localhost"]}))
    with pytest.raises(ConfigError, match="trusted_proxies"):
        load_config(home)
    (home / "ca.pem").write_text("not a certificate\n")
    (home / "config.json").write_text(json.dumps({**document, "ca_file": "ca.pem"}))
    with pytest.raises(ConfigError, match="ca_file: cannot read the CA certificates"):
        load_config(home)
