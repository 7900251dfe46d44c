"""Strict parsing of numbers from outside input: ASCII decimal digits only.

``str.isdigit()`` accepts "¹" and other digits ``int()`` refuses, and ``int()`` (like ``float()``
and the regex ``\\d``) accepts Arabic-Indic, full-width and other Unicode digits, signs, spaces and
underscores. Every route parameter, header and form field that carries a number goes through
``parse_decimal`` (or ``is_decimal``) instead: "0"–"9" only, bounded length, no sign, no space.
"""

from __future__ import annotations

ASCII_DIGITS = frozenset("0123456789")


def is_decimal(text: str, max_digits: int = 18) -> bool:
    """True when ``text`` is 1..``max_digits`` ASCII digits (nothing else: no sign, space or "_")."""
    return 0 < len(text) <= max_digits and all(ch in ASCII_DIGITS for ch in text)


def parse_decimal(text: str, max_digits: int = 18) -> int | None:
    """The value of ``text`` if ``is_decimal(text, max_digits)``, else None."""
    if not isinstance(text, str) or not is_decimal(text, max_digits):
        return None
    return int(text)


def parse_seconds(text: str | None, *, default: float, maximum: float) -> float:
    """An HTTP ``Retry-After`` in delta-seconds (RFC 9110 §10.2.3), clamped to [0, maximum];
    ``default`` when absent or not plain ASCII digits (an HTTP date, "nan", "１")."""
    value = parse_decimal(text, 9) if text is not None else None
    if value is None:
        return default
    return float(min(value, maximum))
