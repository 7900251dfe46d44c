"""`veche testnet init`: layout, ports, configs, keys, the --json shape and refusals."""

from __future__ import annotations

from consensus.signing_state import SigningState, decode_file

import json
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from chain.crypto import read_key_file
from chain.errors import GenesisError
from genesis.cli import testnet_init as init_command
from genesis.config import load_gateway_config, load_node_config
from genesis.model import load_genesis
from genesis.testnet import TestnetLayout as Layout, init_testnet, load_testnet

NOW_MS = 1_780_000_000_000


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    return init_testnet(tmp_path_factory.mktemp("net") / "testnet", now_ms=NOW_MS)


def test_files_of_the_layout(layout: Layout) -> None:
    root = layout.directory
    assert sorted(p.name for p in root.iterdir()) == [
        "gateway", "genesis.json", "keys", "observer-0", "validator-0", "validator-1", "validator-2", "validator-3"]
    assert sorted(p.name for p in (root / "keys").iterdir()) == ["committee-0.json"]
    for i in range(4):
        assert sorted(p.name for p in (root / f"validator-{i}").iterdir()) == ["config.json", "genesis.json",
                                                                              "node-key.json", "signing-state.bin"]
        signing = root / f"validator-{i}" / "signing-state.bin"
        assert decode_file(signing.read_bytes()) == (SigningState.initial(), False)  # born with the key: never signed
        assert signing.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in (root / "observer-0").iterdir()) == ["config.json", "genesis.json"]
    assert sorted(p.name for p in (root / "gateway").iterdir()) == ["config.json", "gateway-key.json", "genesis.json"]
    text = (root / "genesis.json").read_bytes()
    for home in ["validator-0", "validator-3", "observer-0", "gateway"]:
        assert (root / home / "genesis.json").read_bytes() == text


def test_key_files_are_private(layout: Layout) -> None:
    root = layout.directory
    private = [root / "keys" / "committee-0.json", root / "gateway" / "gateway-key.json"]
    private += [root / f"validator-{i}" / "node-key.json" for i in range(4)]
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((root / "keys").stat().st_mode) == 0o700


def test_genesis_matches_the_keys(layout: Layout) -> None:
    genesis = load_genesis(layout.genesis_file)
    assert genesis.hash == layout.genesis_hash
    assert genesis.chain_id == layout.chain_id
    assert genesis.params.genesis_time_ms == NOW_MS
    assert re.fullmatch(r"veche-testnet-[0-9a-f]{6}", layout.chain_id)
    validators = genesis.params.validators.validators
    for i, validator in enumerate(validators):
        assert validator.name == f"validator-{i}"
        assert validator.url == f"http://127.0.0.1:{26600 + i}"
        assert read_key_file(layout.directory / f"validator-{i}" / "node-key.json").public_key == validator.public_key
    assert genesis.params.committee_threshold == 1
    assert genesis.params.committee_keys == {read_key_file(layout.committee_key_files[0]).public_key}
    assert genesis.params.gateways == (("gateway", read_key_file(layout.gateway.key_file).public_key),)
    assert genesis.gateway_url("gateway") == "http://127.0.0.1:26605"
    assert genesis.params.initial_bodies == ()
    assert genesis.params.district_operators == ()
    assert genesis.document["consensus"]["time_precision_ms"] == genesis.consensus.time_precision_ms == 500


def test_ports_and_configs(layout: Layout) -> None:
    root = layout.directory
    validator_urls = [f"http://127.0.0.1:{26600 + i}" for i in range(4)]
    for i in range(4):
        config = load_node_config(root / f"validator-{i}")
        assert (config.name, config.role, config.listen_port) == (f"validator-{i}", "validator", 26600 + i)
        assert config.api_url == validator_urls[i]
        assert config.key_file == root / f"validator-{i}" / "node-key.json"
        assert [(p.name, p.url) for p in config.peers] == [
            (f"validator-{j}", validator_urls[j]) for j in range(4) if j != i]
    observer = load_node_config(root / "observer-0")
    assert (observer.role, observer.listen_port, observer.key_file) == ("observer", 26604, None)
    assert [p.url for p in observer.peers] == validator_urls
    gateway = load_gateway_config(root / "gateway")
    assert (gateway.listen_port, gateway.url) == (26605, "http://127.0.0.1:26605")
    assert list(gateway.nodes) == validator_urls
    assert gateway.sms["provider"] == "outbox" and gateway.form_min_seconds <= 1
    raw = json.loads((root / "validator-0" / "config.json").read_text(encoding="utf-8"))
    assert set(raw) == {"name", "role", "listen_host", "listen_port", "api_url", "genesis_file", "key_file",
                        "signing_state_file", "data_dir", "peers", "log_level", "mempool_max_txs",
                        "mempool_max_bytes"}
    raw_gateway = json.loads((root / "gateway" / "config.json").read_text(encoding="utf-8"))
    assert set(raw_gateway) == {"name", "role", "listen_host", "listen_port", "url", "genesis_file", "key_file",
                                "data_dir", "nodes", "sms", "form_min_seconds", "trusted_proxy_header", "tls"}


def test_layout_reads_back(layout: Layout) -> None:
    assert load_testnet(layout.directory) == layout
    assert [n.name for n in layout.validators] == [f"validator-{i}" for i in range(4)]
    assert [n.name for n in layout.observers] == ["observer-0"]


def test_refuses_an_initialised_folder(layout: Layout) -> None:
    before = layout.genesis_file.read_bytes()
    with pytest.raises(GenesisError, match="already holds a genesis.json"):
        init_testnet(layout.directory, now_ms=NOW_MS)
    result = CliRunner().invoke(init_command, [str(layout.directory), "--json"])
    assert result.exit_code != 0
    assert "already holds a genesis.json" in result.output
    assert layout.genesis_file.read_bytes() == before


def test_refuses_a_folder_with_a_home_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "validator-1").mkdir()
    with pytest.raises(GenesisError, match="validator-1"):
        init_testnet(tmp_path, now_ms=NOW_MS)
    assert not (tmp_path / "genesis.json").exists()


def test_refuses_a_file_in_place_of_the_folder(tmp_path: Path) -> None:
    (tmp_path / "net").write_text("not a folder", encoding="utf-8")
    with pytest.raises(GenesisError, match="is not a folder"):
        init_testnet(tmp_path / "net", now_ms=NOW_MS)


def test_json_output_shape(tmp_path: Path) -> None:
    target = tmp_path / "net"
    result = CliRunner().invoke(init_command, [str(target), "--validators", "3", "--observers", "2",
                                               "--base-port", "31000", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert set(document) == {"chain_id", "nodes", "gateway"}
    assert set(document["gateway"]) == {"home", "url"}
    assert document["gateway"] == {"home": str((target / "gateway").resolve()), "url": "http://127.0.0.1:31005"}
    expected = [("validator-0", "validator", 31000), ("validator-1", "validator", 31001),
                ("validator-2", "validator", 31002), ("observer-0", "observer", 31003),
                ("observer-1", "observer", 31004)]
    assert [(n["name"], n["role"], int(n["api_url"].rsplit(":", 1)[1])) for n in document["nodes"]] == expected
    for node in document["nodes"]:
        assert set(node) == {"name", "role", "home", "api_url"}
        assert Path(node["home"]).name == node["name"] and Path(node["home"]).is_dir()
        assert not node["api_url"].endswith("/")
    assert document["chain_id"] == load_genesis(target / "genesis.json").chain_id


def test_friendly_summary_and_options(tmp_path: Path) -> None:
    target = tmp_path / "net"
    result = CliRunner().invoke(init_command, [str(target), "--validators", "1", "--observers", "0",
                                               "--host", "localhost", "--chain-id", "my-chain"])
    assert result.exit_code == 0, result.output
    assert "my-chain" in result.output and "veche testnet start" in result.output
    genesis = load_genesis(target / "genesis.json")
    assert genesis.chain_id == "my-chain"
    assert genesis.validator_urls() == [("validator-0", "http://localhost:26600")]
    assert load_gateway_config(target / "gateway").url == "http://localhost:26601"
    assert load_node_config(target / "validator-0").peers == ()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"validators": 0}, "--validators must be between 1"),
    ({"observers": -1}, "--observers must be between 0"),
    ({"base_port": 65533}, "must lie within 1..65535"),
    ({"chain_id": "my chain"}, "--chain-id must match"),
    ({"host": "bad host"}, "--host must be a host name"),
    ({"now_ms": 0}, "now_ms must be a positive integer"),
])
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(GenesisError, match=message):
        init_testnet(tmp_path / "net", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "net" / "genesis.json").exists()


def test_cli_rejects_bad_counts(tmp_path: Path) -> None:
    result = CliRunner().invoke(init_command, [str(tmp_path / "net"), "--validators", "0"])
    assert result.exit_code != 0
    assert not (tmp_path / "net").exists()


def test_ipv6_host(tmp_path: Path) -> None:
    layout = init_testnet(tmp_path / "net", validators=1, observers=0, host="::1", now_ms=NOW_MS)
    assert layout.nodes[0].api_url == "http://[::1]:26600"
    assert load_node_config(layout.nodes[0].home).api_url == "http://[::1]:26600"
