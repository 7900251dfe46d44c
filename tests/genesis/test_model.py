"""Genesis validation: one valid/invalid pair per operator mistake, the hash, and file reading."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chain.errors import GenesisError
from genesis.model import canonical_json, genesis_hash, load_genesis, parse_genesis, write_genesis
from tests.genesis.factory import GATEWAY_KEY, GENESIS_TIME_MS, VALIDATOR_KEYS, campaign, initiative, key, valid_document

Mutation = Callable[[dict[str, Any]], None]


def nothing(doc: dict[str, Any]) -> None:
    """The base document as it is."""


def setter(path: str, value: Any) -> Mutation:
    """Set doc[a][b]... where ``path`` is like "validators.0.name"."""
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return mutate


def deleter(path: str) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        del target[last]
    return mutate


def copy_field(source: str, destination: str) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        value: Any = doc
        for part in source.split("."):
            value = value[int(part)] if isinstance(value, list) else value[part]
        setter(destination, value)(doc)
    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(doc)
    return mutate


def append(path: str, value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for part in path.split("."):
            target = target[int(part)] if isinstance(target, list) else target[part]
        target.append(value)
    return mutate


OTHER_KEY = key(99).public_key.hex()

# (case id, a valid variant close to the mistake, the mistake, words the error must contain)
CASES: list[tuple[str, Mutation, Mutation, str]] = [
    ("unknown top-level key", setter("description", "Тест"), setter("descripton", "Тест"), "unknown keys: descripton"),
    ("chain id pattern", setter("chain_id", "veche.test-1_a"), setter("chain_id", "veche test"), "chain_id"),
    ("chain id type", setter("chain_id", "x"), setter("chain_id", 7), "chain_id"),
    ("genesis time", setter("genesis_time_ms", GENESIS_TIME_MS + 1), setter("genesis_time_ms", 0), "genesis_time_ms"),
    ("genesis time type", nothing, setter("genesis_time_ms", "1780000000000"), "genesis_time_ms"),
    ("genesis time bool", nothing, setter("genesis_time_ms", True), "genesis_time_ms"),
    ("float anywhere", setter("consensus.batch_ms", 5), setter("consensus.batch_ms", 5.0),
     "genesis.consensus.batch_ms"),
    ("float in campaign", nothing, setter("campaigns.0.districts.0.budget", 1e8), "campaigns[0].districts[0].budget"),
    ("description type", setter("description", "ok"), setter("description", 5), "description"),
    ("validators missing", nothing, deleter("validators"), "missing 'validators'"),
    ("validators empty", lambda d: d.update(validators=d["validators"][:1]), setter("validators", []),
     "at least one validator"),
    ("validator not an object", nothing, setter("validators.1", "validator-1"), "validators[1] must be a JSON object"),
    ("validator unknown key", setter("validators.0.operator", "committee"), setter("validators.0.pubkey", "00"),
     "validators[0] has unknown keys: pubkey"),
    ("validator missing url", nothing, deleter("validators.2.url"), "validators[2] is missing url"),
    ("validator name pattern", setter("validators.0.name", "node.A-1"), setter("validators.0.name", "node A"),
     "validators[0].name"),
    ("duplicate validator names", setter("validators.1.name", "validator-x"), setter("validators.1.name", "validator-0"),
     "validators[1].name 'validator-0' repeats validators[0].name"),
    ("duplicate validator keys", setter("validators.1.public_key", OTHER_KEY),
     copy_field("validators.0.public_key", "validators.1.public_key"), "validators[1].public_key"),
    ("duplicate validator urls", setter("validators.1.url", "http://127.0.0.1:26699/"),
     setter("validators.1.url", "http://127.0.0.1:26600/"), "validators[1].url"),
    ("bad hex key", setter("validators.0.public_key", OTHER_KEY.upper()), setter("validators.0.public_key", "zz" * 32),
     "validators[0].public_key is not valid hex"),
    ("short key", nothing, setter("validators.0.public_key", OTHER_KEY[:62]),
     "validators[0].public_key must be 64 hex digits"),
    ("long key", nothing, setter("validators.0.public_key", OTHER_KEY + "00"), "must be 64 hex digits"),
    ("key type", nothing, setter("validators.0.public_key", 12), "validators[0].public_key must be a hex string"),
    ("url scheme", setter("validators.0.url", "https://node.example.org"), setter("validators.0.url", "ftp://node.example.org"),
     "validators[0].url must be an http(s) URL"),
    ("url without host", nothing, setter("validators.0.url", "http://"), "validators[0].url"),
    ("url with query", nothing, setter("validators.0.url", "http://node.example.org/?a=1"), "plain base URL"),
    ("url port", setter("validators.0.url", "http://node.example.org:65535"),
     setter("validators.0.url", "http://node.example.org:70000"), "invalid port"),
    ("validator operator district", setter("validators.0.operator", "district:north"),
     setter("validators.0.operator", "district:no such"), "validators[0].operator district id"),
    ("validator operator organisation", setter("validators.0.operator", "Общественная палата"),
     setter("validators.0.operator", " "), "validators[0].operator"),
    ("committee missing", nothing, deleter("committee"), "missing 'committee'"),
    ("committee unknown key", nothing, setter("committee.quorum", 1), "committee has unknown keys: quorum"),
    ("committee threshold range", setter("committee.threshold", 2), setter("committee.threshold", 3),
     "committee.threshold must be an integer between 1 and 2"),
    ("committee threshold zero", setter("committee.threshold", 1), setter("committee.threshold", 0), "committee.threshold"),
    ("committee threshold bool", nothing, setter("committee.threshold", True), "committee.threshold"),
    ("committee keys empty", lambda d: d["committee"].update(keys=d["committee"]["keys"][:1]),
     setter("committee.keys", []), "committee.keys must list at least one key"),
    ("committee duplicate keys", setter("committee.keys.1.public_key", OTHER_KEY),
     copy_field("committee.keys.0.public_key", "committee.keys.1.public_key"), "committee.keys[1].public_key"),
    ("committee member unknown key", deleter("committee.keys.0.name"), setter("committee.keys.0.role", "chair"),
     "committee.keys[0] has unknown keys: role"),
    ("district operator id", setter("district_operators.0.district_id", "north-2"),
     setter("district_operators.0.district_id", "север"), "district_operators[0].district_id"),
    ("district operator shared key", copy_field("district_operators.0.public_key", "district_operators.1.public_key"),
     both(copy_field("district_operators.0.public_key", "district_operators.1.public_key"),
          setter("district_operators.1.district_id", "north")),
     "district_operators[1].(district_id, public_key) pair"),
    ("district operator unknown key", nothing, setter("district_operators.0.districts", ["north"]),
     "district_operators[0] has unknown keys: districts"),
    ("gateway name", both(setter("gateways.0.name", "gw-2"), setter("campaigns.0.gateway", "gw-2")), setter("gateways.0.name", "gw 2"), "gateways[0].name"),
    ("gateway url", deleter("gateways.0.url"), setter("gateways.0.url", "gateway.example.org"), "gateways[0].url"),
    ("duplicate gateway names",
     append("gateways", {"name": "gw-b", "public_key": OTHER_KEY}),
     append("gateways", {"name": "gw", "public_key": OTHER_KEY}), "gateways[1].name 'gw' repeats"),
    ("duplicate gateway keys",
     append("gateways", {"name": "gw-b", "public_key": OTHER_KEY}),
     append("gateways", {"name": "gw-b", "public_key": GATEWAY_KEY.public_key.hex()}), "gateways[1].public_key"),
    ("key reused across roles", setter("gateways.0.public_key", OTHER_KEY),
     both(setter("gateways.0.public_key", VALIDATOR_KEYS[0].public_key.hex()), setter("campaigns", []),
          setter("initiatives", [])),
     "gateways[0].public_key is also the key of validators[0]"),
    ("consensus unknown", setter("consensus.timeout_propose_ms", 2000), setter("consensus.timeout_propose", 2000),
     "unknown consensus settings: timeout_propose"),
    ("consensus positive", setter("consensus.heartbeat_ms", 1), setter("consensus.heartbeat_ms", 0),
     "consensus.heartbeat_ms must be a positive integer"),
    ("consensus block size", setter("consensus.max_block_txs", 20_000), setter("consensus.max_block_txs", 20_001),
     "consensus.max_block_txs must be at most 20000"),
    ("consensus type", nothing, setter("consensus", [1]), "consensus must be a JSON object"),
    ("campaign unknown gateway name", setter("campaigns.0.gateway", GATEWAY_KEY.public_key.hex()),
     setter("campaigns.0.gateway", "gateway"), "campaigns[0].gateway"),
    ("campaign gateway key not in genesis", setter("campaigns.0.gateway", "gw"), setter("campaigns.0.gateway", OTHER_KEY),
     "campaigns[0].gateway names no gateway of this genesis file"),
    ("campaign duplicate ids", append("campaigns", campaign("ib-deti-2027")), append("campaigns", campaign()),
     "campaigns[1].campaign_id 'ib-2027' repeats campaigns[0].campaign_id"),
    ("campaign over before start",
     both(setter("campaigns.0.voting_start", GENESIS_TIME_MS - 2), setter("campaigns.0.voting_end", GENESIS_TIME_MS + 1)),
     both(setter("campaigns.0.voting_start", GENESIS_TIME_MS - 2), setter("campaigns.0.voting_end", GENESIS_TIME_MS)), "campaigns[0].voting_end is not after genesis_time_ms"),
    ("campaign schedule order", setter("campaigns.0.submission_end", GENESIS_TIME_MS),
     setter("campaigns.0.submission_end", GENESIS_TIME_MS + 1), "campaigns[0]: campaign schedule"),
    ("campaign unknown key", setter("campaigns.0.description", "Описание"), setter("campaigns.0.budget", 5),
     "campaigns[0] has unknown keys: budget"),
    ("campaign rule unknown key", setter("campaigns.0.rule.min_votes", 0), setter("campaigns.0.rule.minimum_votes", 0),
     "campaigns[0].rule has unknown keys: minimum_votes"),
    ("campaign district unknown key", nothing, setter("campaigns.0.districts.0.population", 5),
     "campaigns[0].districts[0] has unknown keys: population"),
    ("campaign rule name", both(setter("campaigns.0.rule.name", "greedy"), setter("campaigns.0.rule.top_n", 0)), setter("campaigns.0.rule.name", "top_n"),
     "campaigns[0].rule.name must be one of"),
    ("campaign cost caps order", setter("campaigns.0.min_cost", 100_000_00), setter("campaigns.0.min_cost", 600_000_00),
     "min_cost exceeds max_cost"),
    ("campaign iso time", setter("campaigns.0.voting_end", "2026-06-28T00:00:00+03:00"),
     setter("campaigns.0.voting_end", "2026-06-28T00:00:00"), "needs a UTC offset"),
    ("campaign missing field", nothing, deleter("campaigns.0.track"), "campaigns[0] is missing 'track'"),
    ("initiative unknown campaign", nothing, setter("initiatives.0.campaign_id", "ib-2026"),
     "initiatives[0].campaign_id 'ib-2026' is not a campaign of this genesis file"),
    ("initiative unknown district", setter("initiatives.0.district_id", "south"), setter("initiatives.0.district_id", "east"),
     "initiatives[0].district_id 'east' is not a district of campaign 'ib-2027'"),
    ("duplicate initiative ids", append("initiatives", initiative("north-02")), append("initiatives", initiative()),
     "initiatives[2].(campaign_id, initiative_id)"),
    ("cost above cap", setter("initiatives.0.cost", 500_000_00), setter("initiatives.0.cost", 500_000_01),
     "initiatives[0].cost 50000001 is outside campaign 'ib-2027'"),
    ("cost below cap", setter("initiatives.0.cost", 10_000_00), setter("initiatives.0.cost", 9_999_99),
     "initiatives[0].cost"),
    ("cost zero", nothing, setter("initiatives.0.cost", 0), "initiatives[0]"),
    ("category allowed", setter("initiatives.0.category", "sports"), setter("initiatives.0.category", "roads"),
     "initiatives[0].category 'roads' is not one of"),
    ("initiative document hash", setter("initiatives.0.document_hash", "ab" * 32),
     setter("initiatives.0.document_hash", "xyz"), "initiatives[0].document_hash"),
    ("initiative unknown key", setter("initiatives.0.summary", ""), setter("initiatives.0.author", "Иванов"),
     "initiatives[0] has unknown keys: author"),
    ("initiative id pattern", setter("initiatives.0.initiative_id", "north.01"),
     setter("initiatives.0.initiative_id", "north/01"), "initiatives[0].initiative_id"),
]


def test_base_document_is_valid() -> None:
    genesis = parse_genesis(valid_document())
    assert genesis.chain_id == "veche-unit"
    assert genesis.params.validators.size == 4
    assert genesis.params.committee_threshold == 1
    assert [kind for kind, _ in genesis.params.initial_bodies] == ["campaign.create", "initiative.submit",
                                                                    "initiative.submit"]
    assert genesis.consensus.heartbeat_ms == 5000


@pytest.mark.parametrize(("valid", "invalid", "message"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_valid_invalid_pair(valid: Mutation, invalid: Mutation, message: str) -> None:
    good = valid_document()
    valid(good)
    parse_genesis(good)
    bad = valid_document()
    invalid(bad)
    with pytest.raises(GenesisError) as caught:
        parse_genesis(bad)
    assert message in caught.value.message


def test_not_an_object() -> None:
    with pytest.raises(GenesisError, match="genesis must be a JSON object"):
        parse_genesis([valid_document()])


def test_validator_url_is_normalised_without_trailing_slash() -> None:
    document = valid_document()
    document["validators"][0]["url"] = "http://127.0.0.1:26600/"
    genesis = parse_genesis(document)
    assert genesis.validator_urls()[0] == ("validator-0", "http://127.0.0.1:26600")
    assert genesis.gateway_url() == "http://127.0.0.1:26610"
    assert genesis.gateway_url("gw") == "http://127.0.0.1:26610"
    assert genesis.gateway_url("other") is None


def test_one_operator_key_may_serve_several_districts() -> None:
    document = valid_document()
    document["district_operators"][1]["public_key"] = document["district_operators"][0]["public_key"]
    genesis = parse_genesis(document)
    assert genesis.params.operators_of("north") == genesis.params.operators_of("south")


# --- the genesis hash --------------------------------------------------------------------------


def test_canonical_form_is_sorted_compact_utf8() -> None:
    document = {"b": [1, {"d": "Волгоград", "c": None}], "a": True}
    expected = '{"a":true,"b":[1,{"c":null,"d":"Волгоград"}]}'.encode("utf-8")
    assert canonical_json(document) == expected
    assert genesis_hash(document) == hashlib.sha256(expected).digest()


# RFC 8785 §3.2.3 and the reference implementation's test data (testdata/input|output/weird.json and
# the README's sample): keys sorted by UTF-16 code units (U+1F602, a surrogate pair D83D DE02, sorts
# before U+FB33), only " \ and control characters escaped (\n \t … short forms, others \u00xx lowercase),
# / < > & U+2028 U+007F and non-ASCII written as UTF-8.
JCS_VECTORS = [
    ('{"\\u20ac": "Euro Sign", "1": "One", "\\u0080": "Control\\u007f", "\\ud83d\\ude02": "Smiley", '
     '"\\u00f6": "Latin Small Letter O With Diaeresis", "\\ufb33": "Hebrew Letter Dalet With Dagesh", '
     '"</script>": "Browser Challenge"}',
     '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f","\u00f6":"Latin Small Letter O '
     'With Diaeresis","\u20ac":"Euro Sign","\U0001f602":"Smiley","\ufb33":"Hebrew Letter Dalet With Dagesh"}'),
    ('{"numbers": [1E30, 4.50, 6, 2e-3, 0.000000000000000000000000001], '
     '"escaping": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "other": [null, true, false]}',
     None),
    ('{"peach": 1, "p\\u00e9ch\\u00e9": 2, "p\\u00eache": 3, "sin": 4}',
     '{"peach":1,"p\u00e9ch\u00e9":2,"p\u00eache":3,"sin":4}'),
    ('{"a": "line\\u2028sep\\u2029 tab\\t nl\\n bs\\b ff\\f cr\\r nul\\u0000 us\\u001f <&>"}',
     '{"a":"line\u2028sep\u2029 tab\\t nl\\n bs\\b ff\\f cr\\r nul\\u0000 us\\u001f <&>"}'),
]
README_SAMPLE_HEX = (
    "7b226573636170696e67223a22e282ac245c75303030665c6e4127425c225c5c5c5c5c222f222c226e756d62657273223a5b31"
    "652b33302c342e352c362c302e3030322c31652d32375d2c226f74686572223a5b6e756c6c2c747275652c66616c73655d7d")


@pytest.mark.parametrize("source, expected", JCS_VECTORS)
def test_canonical_form_is_rfc_8785(source: str, expected: str | None) -> None:
    canonical = canonical_json(json.loads(source))
    if expected is None:
        assert canonical.hex() == README_SAMPLE_HEX
    else:
        assert canonical == expected.encode("utf-8")


def test_an_unpaired_surrogate_has_no_canonical_form_and_is_refused() -> None:
    document = valid_document()
    document["description"] = json.loads('"x\\ud800y"')
    with pytest.raises(GenesisError, match="no canonical form"):
        parse_genesis(document)


@pytest.mark.parametrize("value", [2**53, -(2**53), 2**62, 0.5])
def test_numbers_beyond_what_every_json_reader_holds_exactly_are_refused(value: Any) -> None:
    document = valid_document()
    document["campaigns"][0]["max_cost"] = value
    with pytest.raises(GenesisError, match=r"campaigns\[0\]\.max_cost: .*2\^53"):
        parse_genesis(document)
    document["campaigns"][0]["max_cost"] = 2**53 - 1
    assert parse_genesis(document).params.initial_bodies[0][1].max_cost == 2**53 - 1


def test_hash_ignores_key_order_and_file_formatting(tmp_path: Path) -> None:
    document = valid_document()
    reordered = json.loads(json.dumps(document, sort_keys=True))
    reordered = dict(reversed(list(reordered.items())))
    assert genesis_hash(reordered) == genesis_hash(document)
    path = tmp_path / "genesis.json"
    written = write_genesis(path, document)
    compact = tmp_path / "compact.json"
    compact.write_text(json.dumps(document, separators=(",", ":"), ensure_ascii=True), encoding="utf-8")
    assert load_genesis(path).hash == written.hash == load_genesis(compact).hash == parse_genesis(document).hash
    assert written.params.genesis_hash == written.hash


def test_hash_changes_with_any_value() -> None:
    document = valid_document()
    changed = valid_document()
    changed["initiatives"][0]["title"] = "Детская площадка!"
    assert genesis_hash(document) != genesis_hash(changed)
    assert parse_genesis(document).hash != parse_genesis(changed).hash


# --- reading files -----------------------------------------------------------------------------


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GenesisError, match="does not exist"):
        load_genesis(tmp_path / "genesis.json")


def test_load_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "genesis.json"
    path.write_text('{"chain_id": "x",', encoding="utf-8")
    with pytest.raises(GenesisError, match="is not valid JSON"):
        load_genesis(path)


def test_load_rejects_repeated_keys(tmp_path: Path) -> None:
    path = tmp_path / "genesis.json"
    text = json.dumps(valid_document())
    path.write_text(text.replace('"threshold": 1', '"threshold": 1, "threshold": 2'), encoding="utf-8")
    with pytest.raises(GenesisError, match="'threshold' appears twice"):
        load_genesis(path)
    path.write_text(text, encoding="utf-8")
    assert load_genesis(path).params.committee_threshold == 1


def test_write_genesis_refuses_an_invalid_document(tmp_path: Path) -> None:
    document = valid_document()
    document["committee"]["threshold"] = 5
    with pytest.raises(GenesisError):
        write_genesis(tmp_path / "genesis.json", document)
    assert not (tmp_path / "genesis.json").exists()


def test_genesis_hash_command_prints_the_published_hash_not_the_file_checksum(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from node.cli import main

    path = tmp_path / "genesis.json"
    written = write_genesis(path, valid_document())
    result = CliRunner().invoke(main, ["genesis", "hash", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output == written.hash.hex() + "\n"
    assert result.output.strip() == hashlib.sha256(canonical_json(json.loads(path.read_text()))).hexdigest()
    assert result.output.strip() != hashlib.sha256(path.read_bytes()).hexdigest()  # what sha256sum prints
    broken = tmp_path / "broken.json"
    broken.write_text('{"chain_id": "x"}')
    refused = CliRunner().invoke(main, ["genesis", "hash", str(broken)])
    assert refused.exit_code != 0 and "genesis_time_ms" in refused.output
