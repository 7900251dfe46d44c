"""Config loaders of node and gateway homes: defaults, path resolution and clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chain.errors import GenesisError
from genesis.config import GatewayConfig, NodeConfig, Peer, load_gateway_config, load_node_config


def write_config(home: Path, document: dict[str, Any]) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.json").write_text(json.dumps(document), encoding="utf-8")
    return home


def node_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"name": "validator-0", "role": "validator", "listen_port": 26600,
                                "peers": [{"name": "validator-1", "url": "http://127.0.0.1:26601/"}]}
    document.update(changes)
    return document


def gateway_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"name": "gateway", "role": "gateway", "listen_port": 26605,
                                "nodes": ["http://127.0.0.1:26600"]}
    document.update(changes)
    return document


def test_node_defaults_and_paths(tmp_path: Path) -> None:
    config = load_node_config(write_config(tmp_path / "v0", node_document()))
    home = (tmp_path / "v0").resolve()
    assert isinstance(config, NodeConfig) and config.is_validator
    assert config.home == home
    assert config.listen_host == "127.0.0.1"
    assert config.api_url == "http://127.0.0.1:26600"
    assert config.genesis_file == home / "genesis.json"
    assert config.key_file == home / "node-key.json"
    assert config.signing_state_file == home / "signing-state.bin"
    assert config.data_dir == home / "data"
    assert config.peers == (Peer("validator-1", "http://127.0.0.1:26601"),)
    assert (config.log_level, config.mempool_max_txs, config.mempool_max_bytes) == ("info", 100_000, 33_554_432)
    assert dict(config.limits) == {}


def test_node_absolute_paths_and_limits(tmp_path: Path) -> None:
    data = tmp_path / "elsewhere" / "data"
    config = load_node_config(write_config(tmp_path / "o0", node_document(
        role="observer", name="observer-0", data_dir=str(data), limits={"client_txs_per_s": 50}, log_level="debug")))
    assert config.data_dir == data
    assert config.key_file is None and not config.is_validator
    assert config.limits["client_txs_per_s"] == 50
    with pytest.raises(TypeError):
        config.limits["client_txs_per_s"] = 1  # type: ignore[index]


@pytest.mark.parametrize(("changes", "message"), [
    ({"listen_prot": 1}, "unknown keys listen_prot"),
    ({"role": "gateway"}, "load it with load_gateway_config"),
    ({"role": "leader"}, "role is 'leader'"),
    ({"listen_port": 70000}, "listen_port must be a TCP port"),
    ({"listen_port": "26600"}, "listen_port must be a TCP port"),
    ({"name": "validator 0"}, "name must match"),
    ({"api_url": "127.0.0.1:26600"}, "api_url must be an http(s) URL"),
    ({"key_file": None}, "key_file is required for a validator"),
    ({"data_dir": None}, "data_dir must be a path"),
    ({"peers": {"validator-1": "http://x"}}, "peers must be a list"),
    ({"peers": [{"name": "validator-1"}]}, "peers[0] must be an object with exactly the keys name and url"),
    ({"peers": [{"name": "v1", "url": "http://a"}, {"name": "v1", "url": "http://b"}]}, "same peer name twice"),
    ({"mempool_max_txs": 0}, "mempool_max_txs must be a positive integer"),
    ({"log_level": "verbose"}, "log_level must be one of"),
    ({"limits": [1]}, "limits must be a JSON object"),
])
def test_node_errors(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    home = write_config(tmp_path / "v0", node_document(**changes))
    with pytest.raises(GenesisError) as caught:
        load_node_config(home)
    assert message in caught.value.message
    assert "config.json" in caught.value.message


def test_node_missing_required(tmp_path: Path) -> None:
    document = node_document()
    del document["listen_port"]
    with pytest.raises(GenesisError, match="listen_port is missing"):
        load_node_config(write_config(tmp_path / "v0", document))


def test_missing_home_and_missing_config(tmp_path: Path) -> None:
    with pytest.raises(GenesisError, match="home folder .* does not exist"):
        load_node_config(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenesisError, match="is this a Veche home folder"):
        load_gateway_config(tmp_path / "empty")


def test_broken_json(tmp_path: Path) -> None:
    home = tmp_path / "v0"
    home.mkdir()
    (home / "config.json").write_text('{"name": "a", "name": "b"}', encoding="utf-8")
    with pytest.raises(GenesisError, match="appears twice"):
        load_node_config(home)
    (home / "config.json").write_text("[1, 2", encoding="utf-8")
    with pytest.raises(GenesisError, match="not valid JSON"):
        load_node_config(home)
    (home / "config.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(GenesisError, match="must hold a JSON object"):
        load_node_config(home)


def test_gateway_defaults_and_passthrough(tmp_path: Path) -> None:
    config = load_gateway_config(write_config(tmp_path / "gw", gateway_document(
        limits={"login_per_ip_per_minute": 10}, sms={"provider": "outbox", "sender": "Veche"},
        form_min_seconds=0.5, trusted_proxy_header="X-Forwarded-For", tls=True)))
    home = (tmp_path / "gw").resolve()
    assert isinstance(config, GatewayConfig)
    assert config.url == "http://127.0.0.1:26605"
    assert config.key_file == home / "gateway-key.json"
    assert config.sms_outbox_file == home / "sms-outbox.jsonl"
    assert config.nodes == ("http://127.0.0.1:26600",)
    assert config.limits["login_per_ip_per_minute"] == 10
    assert config.sms["sender"] == "Veche"
    assert (config.form_min_seconds, config.trusted_proxy_header, config.tls) == (0.5, "X-Forwarded-For", True)
    plain = load_gateway_config(write_config(tmp_path / "gw2", gateway_document()))
    assert dict(plain.sms) == {"provider": "outbox"} and plain.form_min_seconds == 1.0 and plain.tls is False


def test_gateway_only_settings_pass_through(tmp_path: Path) -> None:
    config = load_gateway_config(write_config(tmp_path / "gw", gateway_document(
        secret_file="secret.key", commit_wait_seconds=3, default_lang="en", sms={"sender": "Veche"})))
    assert dict(config.extra) == {"secret_file": "secret.key", "commit_wait_seconds": 3, "default_lang": "en"}
    assert config.sms["sender"] == "Veche"


@pytest.mark.parametrize(("changes", "message"), [
    ({"sms_provider": "outbox"}, "unknown keys sms_provider"),
    ({"role": "validator"}, "load it with load_node_config"),
    ({"nodes": []}, "nodes must be a non-empty list"),
    ({"nodes": ["http://a", "http://a/"]}, "same URL twice"),
    ({"nodes": ["ftp://a"]}, "nodes[0] must be an http(s) URL"),
    ({"sms": {"provider": 5}}, "sms.provider must name the SMS provider"),
    ({"form_min_seconds": -1}, "form_min_seconds must be a number of seconds >= 0"),
    ({"tls": "yes"}, "tls must be true or false"),
    ({"trusted_proxy_header": ""}, "trusted_proxy_header must be a header name"),
    ({"url": "http://gw.example.org/?x=1"}, "plain base URL"),
])
def test_gateway_errors(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    home = write_config(tmp_path / "gw", gateway_document(**changes))
    with pytest.raises(GenesisError) as caught:
        load_gateway_config(home)
    assert message in caught.value.message
