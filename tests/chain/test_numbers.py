"""Strict number parsing: ASCII decimal digits only (chain/numbers.py)."""

from __future__ import annotations

import pytest

from chain.numbers import is_decimal, parse_decimal, parse_seconds

# "¹" passes str.isdigit() but int() refuses it; the others int() and float() accept.
UNICODE_DIGITS = ["¹", "²³", "٣", "٠١٢", "۴", "３", "１２", "߁", "৩", "𝟕"]


@pytest.mark.parametrize("text", UNICODE_DIGITS)
def test_unicode_digits_are_not_numbers(text: str) -> None:
    assert not is_decimal(text)
    assert parse_decimal(text) is None
    assert parse_seconds(text, default=0.5, maximum=5.0) == 0.5


@pytest.mark.parametrize("text", ["", " 1", "1 ", "+1", "-1", "1_000", "0x10", "1.5", "1e3", "nan", "inf", "1\n"])
def test_signs_spaces_and_other_forms_are_refused(text: str) -> None:
    assert parse_decimal(text) is None


def test_ascii_digits_parse_within_the_length_bound() -> None:
    assert parse_decimal("0") == 0
    assert parse_decimal("007") == 7
    assert parse_decimal("123456789012345678") == 123456789012345678
    assert parse_decimal("1234567890123456789") is None       # 19 digits > the default 18
    assert parse_decimal("1234", 3) is None
    assert parse_seconds("7", default=0.5, maximum=5.0) == 5.0
    assert parse_seconds("2", default=0.5, maximum=5.0) == 2.0
    assert parse_seconds(None, default=0.5, maximum=5.0) == 0.5
    assert parse_seconds("Wed, 21 Oct 2015 07:28:00 GMT", default=1.0, maximum=5.0) == 1.0
