"""What an operator types, read strictly: money, whole numbers, times, district lists, the gateway's certification
key (valid/invalid pairs), and the campaign JSON and transaction body the wizard builds from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from chain import codec
from chain.crypto import check_rsa_modulus
from chain.errors import VecheError
from genesis.campaign_json import campaign_from_json, parse_time_ms
import node.cli  # noqa: F401  - the program's import order: `veche` loads its commands, then the console
from node.cli_ops import read_json_file
from node.console.forms import (
    ConsoleError, districts_to_csv, is_private_key_text, local_time_to_rfc3339, parse_certification_key,
    parse_districts, parse_int, parse_offset, parse_rubles,
)
from node.console.wizard import campaign_document, campaign_json_text
from tests.certkey import KEY_FILE, test_certification_key


@pytest.mark.parametrize("text, kopecks", [("1250000", 125_000_000), ("1 250 000,50", 125_000_050),
                                           ("12345.6", 1_234_560), ("0,07", 7), ("1\u00a0000", 100_000)])
def test_rubles_are_read_into_kopecks(text: str, kopecks: int) -> None:
    assert parse_rubles(text, "cost") == kopecks


@pytest.mark.parametrize("text", ["", "12,345", "1.2.3", "-5", "1e6", "١٢٣", "12 345,678", "abc", "1" * 16])
def test_anything_else_is_not_an_amount(text: str) -> None:
    with pytest.raises(ConsoleError):
        parse_rubles(text, "cost")


@pytest.mark.parametrize("text, ok", [("0", True), ("100", True), ("101", False), ("¹", False), ("-1", False),
                                      ("", False), ("3.0", False)])
def test_whole_numbers(text: str, ok: bool) -> None:
    if ok:
        assert parse_int(text, "percent", 0, 100) == int(text)
    else:
        with pytest.raises(ConsoleError):
            parse_int(text, "percent", 0, 100)


def test_a_browser_time_becomes_the_rfc3339_text_the_campaign_json_takes() -> None:
    text = local_time_to_rfc3339("2027-05-01T00:00:00", parse_offset("+03:00"), "voting_start")
    assert text == "2027-05-01T00:00:00+03:00"
    assert parse_time_ms(text, "x") == 1_809_118_800_000
    assert local_time_to_rfc3339("2027-05-01T09:30", -330, "x") == "2027-05-01T09:30:00-05:30"
    for bad in ("2027-05-01", "01.05.2027 09:30", "2027-05-01T9:30"):
        with pytest.raises(ConsoleError):
            local_time_to_rfc3339(bad, 180, "x")
    for bad in ("+3", "03:00", "+15:00", "+03:60"):
        with pytest.raises(ConsoleError):
            parse_offset(bad)


def test_districts_from_csv_round_trip() -> None:
    rows = parse_districts("district_id;name;budget\nvolgograd;Волгоград;5 000 000\nvolzhsky;Волжский;2500000,50\n")
    assert rows == [{"district_id": "volgograd", "name": "Волгоград", "budget": 500_000_000},
                    {"district_id": "volzhsky", "name": "Волжский", "budget": 250_000_050}]
    assert parse_districts(districts_to_csv(rows)) == rows
    assert parse_districts("a,Alpha,10\nb,Beta,") == [{"district_id": "a", "name": "Alpha", "budget": 1000},
                                                       {"district_id": "b", "name": "Beta", "budget": 0}]


@pytest.mark.parametrize("text, fragment", [
    ("", "at least one"), ("a;Alpha", "line %(line)s"), ("a b;Alpha;1", "the id"), ("a;A;1\na;B;2", "twice"),
    ("a;;1", "a name"), ("a;A;lots", "amount"),
])
def test_bad_district_lists_say_which_line(text: str, fragment: str) -> None:
    with pytest.raises(ConsoleError) as refused:
        parse_districts(text)
    assert fragment in refused.value.message


# --- the gateway's certification key (campaign wizard) ----------------------------------------------------

def _pem(modulus: int, exponent: int = 65537, *, pkcs1: bool = False) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers

    key = RSAPublicNumbers(exponent, modulus).public_key()
    form = serialization.PublicFormat.PKCS1 if pkcs1 else serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_bytes(serialization.Encoding.PEM, form).decode()


def _printed_modulus() -> str:
    """What ``veche gateway certification-key`` prints on its second line: the key file's modulus."""
    return test_certification_key().modulus.hex()


def test_a_good_certification_key_is_read_as_the_gateway_gives_it() -> None:
    modulus = test_certification_key().modulus
    assert len(modulus) == 384
    printed = _printed_modulus()
    assert parse_certification_key(printed) == modulus
    # wrapped by a mail program or a terminal, upper case, openssl's colon form with its leading 00
    wrapped = "\n".join(printed[i:i + 64] for i in range(0, len(printed), 64))
    assert parse_certification_key(f"  {wrapped.upper()}\n") == modulus
    assert parse_certification_key("00:" + ":".join(printed[i:i + 2] for i in range(0, len(printed), 2))) == modulus
    number = int.from_bytes(modulus, "big")
    assert parse_certification_key(_pem(number)) == modulus
    assert parse_certification_key(_pem(number, pkcs1=True)) == modulus
    assert parse_certification_key("") == b"" and parse_certification_key(" \n") == b""


def _refusal(text: str) -> ConsoleError:
    with pytest.raises(ConsoleError) as refused:
        parse_certification_key(text)
    return refused.value


@pytest.mark.parametrize("text", ["not a key", "c0ffee-beef", "0x" + "g" * 768, "xyz", "-----BEGIN PUBLIC KEY-----\n"
                                  "bm90IGEga2V5\n-----END PUBLIC KEY-----\n", "Modulus=C0FFEE"])
def test_a_malformed_certification_key_gets_a_clear_message(text: str) -> None:
    refused = _refusal(text)
    assert refused.message.startswith("Certification key:") and refused.status == 400
    assert "hex modulus" in refused.message or "PEM" in refused.message


def test_a_certification_key_of_the_wrong_size_or_exponent_is_refused() -> None:
    too_short = (1 << 2047) | 1                   # a 2048-bit odd number: the size is judged first
    refused = _refusal(format(too_short, "x"))
    assert "%(bits)s bits" in refused.message and refused.params == {"bits": 2048, "low": 3072, "high": 4096}
    assert _refusal(_pem(too_short)).params["bits"] == 2048
    assert _refusal(format((1 << 4103) | 1, "x")).params["bits"] == 4104
    assert _refusal(format((1 << 3072) | 1, "x")).params["bits"] == 3073   # whole bytes only
    good = int.from_bytes(test_certification_key().modulus, "big")
    refused = _refusal(_pem(good, exponent=3))
    assert "65537" in refused.message and refused.params == {"exponent": 3}
    assert "even" in _refusal(format(good + 1, "x")).message
    # the chain itself would refuse each of them (chain.crypto.check_rsa_modulus)
    for number in (too_short, good + 1):
        with pytest.raises(VecheError):
            check_rsa_modulus(number.to_bytes((number.bit_length() + 7) // 8, "big"))


def test_a_private_key_is_refused_and_recognised() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key_file = KEY_FILE.read_text()                     # the gateway's certification-key.json: p and q
    private_pem = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    for text in (key_file, private_pem):
        assert is_private_key_text(text)
        assert "private key" in _refusal(text).message
    assert not is_private_key_text(_printed_modulus())


def _wizard_values(certification_key: str) -> dict[str, str]:
    return {"campaign_id": "gorod-2028", "title": "Город 2028", "track": "adult", "districts": "north;Север;1000000",
            "ballot_type": "approval", "min_choices": "1", "max_choices": "3", "rule": "greedy", "scope": "district",
            "min_cost": "1000", "max_cost": "500000", "categories": "", "submission_start": "2028-02-01T00:00",
            "submission_end": "2028-03-01T00:00", "voting_start": "2028-03-01T00:00",
            "voting_end": "2028-03-15T00:00:00", "utc_offset": "+03:00", "gateway": "gateway",
            "registration_cap": "100000", "ballots_per_voter": "district", "certification_key": certification_key}


def test_the_wizard_json_and_tx_body_carry_the_key_exactly_as_veche_campaign_create_reads_it(
        tmp_path: Path) -> None:
    gateways = {"gateway": bytes(range(32))}
    modulus = test_certification_key().modulus
    pasted = _pem(int.from_bytes(modulus, "big"))             # the operator pasted the PEM form
    document = campaign_document(_wizard_values(pasted))
    assert document["certification_key"] == modulus.hex()
    wizard_body = campaign_from_json(document, gateways)      # what the console signs (wizard_post)
    assert wizard_body.certification_key == modulus and wizard_body.voter_held
    # the downloaded file through the CLI's own reader: `veche campaign create FILE.json`'s build step
    path = tmp_path / "gorod-2028.json"
    path.write_text(campaign_json_text(document), encoding="utf-8")
    cli_body = campaign_from_json(read_json_file(str(path), "campaign"), gateways, where=path.name)
    wire = codec.encode(cli_body.to_wire())
    assert codec.encode(wizard_body.to_wire()) == wire
    fields = codec.decode(wire)
    assert len(fields) == 17 and fields[16] == modulus     # PROTOCOL §16.1: the 17th field, the modulus bytes
    # without a key: no field in the JSON and the 16-field body of before (old campaigns' bytes unchanged)
    plain = campaign_document(_wizard_values(""))
    assert "certification_key" not in plain
    plain_body = campaign_from_json(plain, gateways)
    assert len(codec.decode(codec.encode(plain_body.to_wire()))) == 16 and not plain_body.voter_held
    assert codec.decode(codec.encode(plain_body.to_wire())) == fields[:16]


def test_the_wizard_refuses_a_bad_key_before_building_anything() -> None:
    with pytest.raises(ConsoleError) as refused:
        campaign_document(_wizard_values(format((1 << 2047) | 1, "x")))
    assert refused.value.params["bits"] == 2048
