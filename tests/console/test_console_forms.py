"""What an operator types, read strictly: money, whole numbers, times, district lists (valid/invalid pairs)."""

from __future__ import annotations

import pytest

from genesis.campaign_json import parse_time_ms
from node.console.forms import (
    ConsoleError, districts_to_csv, local_time_to_rfc3339, parse_districts, parse_int, parse_offset, parse_rubles,
)


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
