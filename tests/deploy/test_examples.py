"""docs/examples/: every file an operator writes, complete (every key the loader knows is there) and
loaded as it is by the code that reads it in production."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from gateway.config import Limits, SmsConfig, load_config as load_gateway_config
from genesis.campaign_json import campaign_from_json, initiative_from_json
from genesis.config import GATEWAY_EXTRA_KEYS, GATEWAY_KEYS, NODE_KEYS
from genesis.model import load_genesis, parse_genesis
from node.config import LIMIT_DEFAULTS, load_config as load_node_config
from tests.paths import REPO_ROOT

EXAMPLES = REPO_ROOT / "docs" / "examples"
PKI = REPO_ROOT / "deploy" / "pki" / "veche-ca.sh"
FILES = {"genesis.json", "campaign.json", "initiative.json", "validator-config.json", "observer-config.json",
         "gateway-config.json"}


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def test_every_example_is_covered_here() -> None:
    assert {path.name for path in EXAMPLES.iterdir()} == FILES


def test_genesis_campaign_and_initiative_examples_apply_together() -> None:
    genesis = load_genesis(EXAMPLES / "genesis.json")
    assert genesis.params.chain_id == "volgograd-ib-2027" and genesis.params.validators.size == 4
    campaign, initiative = example("campaign.json"), example("initiative.json")
    body = campaign_from_json(campaign, dict(genesis.params.gateways))      # what veche campaign create sends
    assert body.campaign_id == campaign["campaign_id"]
    assert initiative_from_json(initiative).initiative_id == initiative["initiative_id"]
    # the state machine takes them: a genesis with both applies (genesis/model.py runs them through it)
    combined = parse_genesis({**genesis.document, "campaigns": [campaign], "initiatives": [initiative]})
    assert combined.params.chain_id == genesis.params.chain_id
    # every consensus setting is written out
    assert set(genesis.document["consensus"]) == {field.name for field in dataclasses.fields(genesis.consensus)}


def make_home(tmp_path: Path, config_name: str, name: str) -> Path:
    home = tmp_path / name
    home.mkdir()
    shutil.copy(EXAMPLES / config_name, home / "config.json")
    shutil.copy(EXAMPLES / "genesis.json", home / "genesis.json")
    ca = tmp_path / "ca"
    if not (ca / "ca.crt").exists():
        subprocess.run(["sh", str(PKI), "init", str(ca)], check=True, capture_output=True)
    shutil.copy(ca / "ca.crt", home / "ca.pem")
    return home


def test_node_config_examples_load_and_are_complete(tmp_path: Path) -> None:
    for config_name, role in (("validator-config.json", "validator"), ("observer-config.json", "observer")):
        document = example(config_name)
        assert set(document) == NODE_KEYS, f"{config_name} lacks {sorted(NODE_KEYS - set(document))}"
        assert set(document["limits"]) == set(LIMIT_DEFAULTS)
        home = make_home(tmp_path, config_name, role)
        config, limits = load_node_config(home)
        assert config.role == role and config.ca_file == home / "ca.pem"
        assert config.trusted_proxies == ("127.0.0.1", "::1") and config.log_file == home / "node.log"
        assert config.api_url.startswith("https://") and all(p.url.startswith("https://") for p in config.peers)
        genesis_names = {v["name"] for v in example("genesis.json")["validators"]}
        assert {p.name for p in config.peers} <= genesis_names
    assert limits.trusted_clients == ()
    validator_limits = load_node_config(tmp_path / "validator")[1]
    assert validator_limits.trusted_clients == ("203.0.113.50", "203.0.113.60")


TEST_ONLY_GATEWAY_KEYS = frozenset({"test_wire_log_file"})  # a wire log for the privacy tests: never in production


def test_gateway_config_example_loads_and_is_complete(tmp_path: Path) -> None:
    document = example("gateway-config.json")
    known = (GATEWAY_KEYS | GATEWAY_EXTRA_KEYS) - TEST_ONLY_GATEWAY_KEYS
    assert set(document) == known, f"missing {sorted(known - set(document))}"
    assert set(document["limits"]) == {field.name for field in dataclasses.fields(Limits)}
    home = make_home(tmp_path, "gateway-config.json", "gateway")
    config = load_gateway_config(home)
    assert config.sms.provider == "smsc" and config.sms.login and config.sms.api_key_file
    assert set(document["sms"]) <= {field.name for field in dataclasses.fields(SmsConfig)}
    assert config.tls and config.trusted_proxy_header == "X-Real-IP" and config.ca_file == home / "ca.pem"
    assert set(config.nodes) == {v["url"] for v in example("genesis.json")["validators"]}
    assert config.admin_token_file == home / "admin-token"
