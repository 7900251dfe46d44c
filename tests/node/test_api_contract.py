"""The public API keeps its OpenAPI contract on a real node with real data.

One validator and one observer run as real processes (LevelDB, loopback HTTP); ``populate`` puts
every kind of record in every state on the chain. Then:

* every body of every public route — each campaign, tally, ballot page, initiative, block (JSON
  and msgpack), transaction in each status, both nodes' status, and the error bodies — is checked
  against the schema its route and status have in the served OpenAPI document;
* schemathesis (the field's OpenAPI fuzzer, run as its CLI with our msgpack hooks
  ``tests/node/st_hooks.py``) runs over every public operation with several seeds: no server
  error, no schema mismatch, no warning, and a 2xx for every operation from generated requests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chain.crypto import SigningKey
from consensus.messages import make_evidence, make_vote
from node.evidence import EvidenceRecord
from node.openapi import openapi_document
from tests.node.apischema import OCTET, validate_body, validate_value
from tests.node.livechain import LiveChain, populate
from tests.node.netkit import ROOT, LocalNet, get_json, wait_for
from tests.node.votes import encode_batch

pytestmark = pytest.mark.slow
PUBLIC_TAGS = ("public", "operations")
SEEDS = (1, 2, 3)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalNet, LiveChain]]:
    net = LocalNet(tmp_path_factory.mktemp("contract") / "net", validators=1, observers=1)
    try:
        net.start_all()
        chain = populate(net)
        height = net.height("validator-0")
        wait_for(lambda: net.height("observer-0") >= height, 30, "the observer to catch up")
        yield net, chain
    finally:
        net.close()


class Reader:
    """GETs and POSTs against a node, validating every answer against the served document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.seen: set[tuple[str, str, int]] = set()
        self.values: dict[str, list[Any]] = {}
        templates: list[tuple[str, re.Pattern[str]]] = [
            (path, re.compile("^" + re.sub(r"\{[a-z0-9_]+\}", "[^/]+", path) + "$")) for path in document["paths"]]
        self.templates = sorted(templates, key=lambda t: t[0].count("{"))  # literal paths first

    def template(self, path: str) -> str:
        return next(template for template, pattern in self.templates if pattern.match(path))

    def call(self, method: str, url: str, body: bytes | None = None, content_type: str = OCTET) -> tuple[int, Any]:
        request = urllib.request.Request(url, data=body, method=method,
                                         headers={"Content-Type": content_type} if body is not None else {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw, served_type = response.status, response.read(), response.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            status, raw, served_type = exc.code, exc.read(), exc.headers.get_content_type()
        path = urllib.parse.urlsplit(url).path
        template = self.template(path)
        value = validate_body(self.document, template, method, status, served_type, raw)
        self.seen.add((template, method, status))
        self.values.setdefault(f"{method} {template} {status}", []).append(value)
        return status, value

    def get(self, url: str, expect: int = 200) -> Any:
        status, value = self.call("GET", url)
        assert status == expect, (url, status, value)
        return value


def test_every_served_body_matches_its_schema(live: tuple[LocalNet, LiveChain]) -> None:
    net, chain = live
    url, observer = chain.url, net.urls["observer-0"]
    document = get_json(url + "/api/v1/openapi.json")
    reader = Reader(document)
    # every public GET without parameters (a route added later is checked too), on both nodes
    plain = [path for path, item in document["paths"].items() if "{" not in path and "get" in item
             and set(item["get"]["tags"]) & set(PUBLIC_TAGS) and not item["get"].get("parameters")]
    assert {"/api/v1/status", "/api/v1/genesis", "/api/v1/evidence", "/api/v1/campaigns", "/metrics"} <= set(plain)
    for base in (url, observer):
        for path in plain:
            reader.get(base + path)

    for base in (url, observer):      # the roster route takes an optional height
        reader.get(base + "/api/v1/validators")
        reader.get(base + "/api/v1/validators?height=0")

    for campaign_id in chain.campaigns:
        campaign = reader.get(f"{url}/api/v1/campaigns/{campaign_id}")
        reader.get(f"{url}/api/v1/campaigns/{campaign_id}/tally")
        page = reader.get(f"{url}/api/v1/campaigns/{campaign_id}/ballots?limit=2")
        while page["next"] is not None:
            page = reader.get(f"{url}/api/v1/campaigns/{campaign_id}/ballots?limit=2&after={page['next']}")
        for initiative in campaign["initiatives"]:
            reader.get(f"{url}/api/v1/campaigns/{campaign_id}/initiatives/{initiative['initiative_id']}")
            if initiative["document_hash"]:   # named; served where uploaded (p1's manifest), else 404 not_replicated
                status, _ = reader.call("GET", f"{url}/api/v1/documents/{initiative['document_hash']}")
                assert status == (200 if initiative["initiative_id"] == "p1" else 404), initiative

    for item in reader.get(url + "/api/v1/signing-requests")["requests"]:
        reader.get(f"{url}/api/v1/signing-requests/{item['signing_hash']}")
    height = net.height("validator-0")
    for block_height in range(1, height + 1):
        block = reader.get(f"{url}/api/v1/blocks/{block_height}")
        reader.get(f"{url}/api/v1/blocks/{block_height}/raw")
        for tx_hash in block["txs"]:
            assert reader.get(f"{url}/api/v1/txs/{tx_hash}")["status"] == "committed"
    pages = [reader.get(f"{url}/api/v1/blocks/raw?from=1"), reader.get(f"{url}/api/v1/blocks/raw?from=2&to=3"),
             reader.get(f"{url}/api/v1/blocks/raw?from={height + 1}"), reader.get(f"{url}/api/v1/blocks/raw?from=3&to=2")]
    assert [len(p) for p in pages] == [height, 2, 0, 0]
    assert reader.get(f"{url}/api/v1/txs/{chain.rejected_tx}")["status"] == "rejected"
    assert reader.get(f"{url}/api/v1/txs/{'ab' * 32}")["status"] == "unknown"

    status, answer = reader.call("POST", url + "/api/v1/txs", encode_batch([b"\x01", b"\x92\xa1x\xa1y"]))
    assert status == 200 and [r["code"] for r in answer["rejected"]] == ["malformed", "malformed"]
    errors = [("GET", "/api/v1/txs/zz", 400), ("GET", "/api/v1/blocks/x", 400), ("GET", "/api/v1/blocks/0", 404),
              ("GET", "/api/v1/blocks/x/raw", 400), ("GET", f"/api/v1/blocks/{height + 9}/raw", 404),
              ("GET", "/api/v1/blocks/raw", 400), ("GET", "/api/v1/blocks/raw?from=0", 400),
              ("GET", "/api/v1/campaigns/none", 404), ("GET", "/api/v1/campaigns/none/tally", 404),
              ("GET", "/api/v1/campaigns/none/ballots", 404), ("GET", "/api/v1/campaigns/ib-2027/ballots?limit=0", 400),
              ("GET", "/api/v1/campaigns/ib-2027/ballots?after=1", 400),
              ("GET", "/api/v1/campaigns/ib-2027/initiatives/none", 404),
              ("GET", "/api/v1/campaigns/none/initiatives/none", 404),
              ("GET", "/api/v1/documents/" + "AB" * 32, 400), ("GET", "/api/v1/documents/" + "ab" * 32, 404)]
    for method, path, expect in errors:
        assert reader.call(method, url + path)[0] == expect, path
    assert reader.call("POST", url + "/api/v1/txs", b"\xc1")[0] == 400
    assert reader.call("POST", url + "/api/v1/txs", encode_batch([]))[0] == 400
    assert reader.call("POST", url + "/api/v1/txs", b"[]", "application/json")[0] == 415
    assert reader.call("OPTIONS", url + "/api/v1/txs")[0] == 204      # the CORS preflight has no body

    public = {(path, method.upper()) for path, item in document["paths"].items() for method, op in item.items()
              if set(op["tags"]) & set(PUBLIC_TAGS)}
    assert public <= {(path, method) for path, method, status in reader.seen if status in (200, 204)}
    # the data covers every state a record can be in
    states = {json.dumps(v["status"]) for v in reader.values["GET /api/v1/txs/{hash} 200"]}
    assert states == {'"committed"', '"rejected"', '"unknown"'}
    campaigns = reader.values["GET /api/v1/campaigns/{campaign} 200"]
    assert {c["status"] for c in campaigns} == {"open", "closed"}
    assert {i["status"] for c in campaigns for i in c["initiatives"]} == {"submitted", "approved", "rejected"}
    tallies = reader.values["GET /api/v1/campaigns/{campaign}/tally 200"]
    assert {t["result_status"] for t in tallies} == {"provisional", "final"}
    assert {t["rule"] for t in tallies if t["winners"]} == {"top-n", "equal-shares"}
    initiatives = reader.values["GET /api/v1/campaigns/{campaign}/initiatives/{initiative} 200"]
    assert sum(len(i["progress"]) for i in initiatives) == 2
    pages = reader.values["GET /api/v1/campaigns/{campaign}/ballots 200"]
    assert any(p["next"] is not None for p in pages)
    assert any("points" in b for p in pages for b in p["ballots"])  # a scored ballot
    assert {c["campaign"]["ballot"]["type"] for c in campaigns} >= {"choose-1", "approval", "cumulative"}
    statuses = reader.values["GET /api/v1/status 200"]
    assert {s["role"] for s in statuses} == {"validator", "observer"} and any(s["sources"] for s in statuses)


def test_an_evidence_item_matches_its_schema() -> None:
    keys = [SigningKey.generate() for _ in range(4)]
    first = make_vote("veche-test", "prevote", 5, 0, b"\x01" * 32, 2, keys[2].sign)
    second = make_vote("veche-test", "prevote", 5, 0, None, 2, keys[2].sign)
    document = openapi_document()
    validate_value(document, "Evidence", {"evidence": [EvidenceRecord(make_evidence(first, second),
                                                                      1_764_000_000_000).to_json()]})


def operations_with_2xx(ndjson: Path, document: dict[str, Any]) -> dict[str, int]:
    """``"GET /path/{template}"`` → 2xx answers schemathesis got to requests it generated (coverage, fuzzing
    and stateful phases; the examples phase only replays the document's examples), from its NDJSON log."""
    reader = Reader(document)
    counts: dict[str, int] = {}
    for line in ndjson.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished or finished["phase"] == "examples":
            continue
        for interaction in finished["recorder"].get("interactions", {}).values():
            request, response = interaction["request"], interaction.get("response")
            path = urllib.parse.urlsplit(request["uri"]).path
            if response is None or not any(p.match(path) for _, p in reader.templates):
                continue
            key = f"{request['method']} {reader.template(path)}"
            if request["method"].lower() not in document["paths"][reader.template(path)]:
                continue  # schemathesis probing an undeclared method (it checks the 405 and its Allow)
            if 200 <= response["status_code"] < 300:
                counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.mark.parametrize("seed", SEEDS)
def test_schemathesis_finds_nothing_and_reaches_every_public_operation(live: tuple[LocalNet, LiveChain],
                                                                       tmp_path: Path, seed: int) -> None:
    _, chain = live
    env = dict(os.environ, SCHEMATHESIS_HOOKS="tests.node.st_hooks", PYTHONPATH=str(ROOT),
               VECHE_CHAIN_ID=chain.chain_id, NO_COLOR="1")
    report, events = tmp_path / "report.json", tmp_path / "events.ndjson"
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{chain.url}/api/v1/openapi.json",
               "--seed", str(seed), "--max-examples", "15", "--exclude-tag", "p2p", "--exclude-tag", "admin",
               "--workers", "1",
               "--suppress-health-check", "too_slow",  # data generation slowed by a loaded CI box is no API fault
               "--report", "json,ndjson", "--report-json-path", str(report), "--report-ndjson-path", str(events)]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    summary = json.loads(report.read_text())
    tail = done.stdout[-6000:]
    assert summary["failures"] == [] and summary["errors"] == [], tail
    # operator routes authenticate by committee or operator signatures inside the request, which a fuzzer cannot
    # make: that they answer generated requests only with 401/403 is their purpose, not a finding
    served = get_json(f"{chain.url}/api/v1/openapi.json")
    operators = {f"{method.upper()} {path}" for path, item in served["paths"].items() for method, op in item.items()
                 if "operators" in op["tags"]}
    warnings = {name: found for name, found in summary["warnings"].items() if found}
    if set(warnings.get("missing_auth", [])) <= operators:
        warnings.pop("missing_auth", None)
    assert warnings == {}, tail
    assert done.returncode == 0, tail
    document = get_json(f"{chain.url}/api/v1/openapi.json")
    # schemathesis leaves out the operation that served the document it loaded (the walk above reads it)
    public = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method, op in item.items()
              if set(op["tags"]) & set(PUBLIC_TAGS) and path != "/api/v1/openapi.json"}
    reached = operations_with_2xx(events, document)
    assert public - set(reached) == set(), reached
    # every operation but p2p and admin is fuzzed; operator routes (signed uploads, signing requests) need no 2xx
    # from generated requests
    fuzzed = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method, op in item.items()
              if not {"p2p", "admin"} & set(op["tags"]) and path != "/api/v1/openapi.json"}
    assert summary["operations"]["tested"] == len(fuzzed)


def test_the_served_document_names_real_ids_of_the_chain(live: tuple[LocalNet, LiveChain]) -> None:
    _, chain = live
    document = get_json(f"{chain.url}/api/v1/openapi.json")
    parameters = {p["name"]: p.get("example") for item in document["paths"].values() for op in item.values()
                  for p in op.get("parameters", [])}
    campaign = get_json(f"{chain.url}/api/v1/campaigns/{parameters['campaign']}")
    assert parameters["initiative"] in {i["initiative_id"] for i in campaign["initiatives"]}
    assert get_json(f"{chain.url}/api/v1/txs/{parameters['hash']}")["status"] == "committed"
    assert get_json(f"{chain.url}/api/v1/blocks/{parameters['height']}")["height"] == parameters["height"]
