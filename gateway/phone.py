"""Phone numbers: parse what people type with ``phonenumbers`` and keep only keyed hashes of it.

A number is accepted when libphonenumber (Google's metadata, as the ``phonenumbers`` package ships
it) finds it valid, of a mobile type, in one of the gateway's ``sms.allowed_regions`` (ISO 3166
codes, default ``["RU"]``), and — if the gateway sets ``sms.allowed_prefixes`` — starting with one
of those E.164 prefixes. National forms are read in the first allowed region: for Russia
``+7 9XX XXX-XX-XX``, ``+7 (9XX) XXX XX XX``, ``8 9XX XXX-XX-XX``, ``7 9XX…`` and ``9XXXXXXXXX``
all give ``+79XXXXXXXXX``. Before the library sees it, the input must be short and made of ASCII
digits, one leading ``+``, spaces, dashes, dots and one pair of parentheses: letters (which the
library would read as a vanity number), extensions and other scripts' digits are refused.

The number itself never leaves this module's callers unhashed except towards the SMS provider:
``PhoneKeys`` derives the keyed hashes the rest of the gateway works with.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from gateway.errors import PhoneError

MAX_INPUT_CHARS = 40
_TYPED = re.compile(r"\+?[0-9 ()\-.\u00a0]+")
_PARENS = re.compile(r"[^()]*(\([0-9 \-.\u00a0]+\))?[^()]*")
MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
DEFAULT_REGIONS = ("RU",)


def normalize_phone(text: str, allowed_regions: Sequence[str] = DEFAULT_REGIONS,
                    allowed_prefixes: Sequence[str] = ()) -> str:
    """Return the E.164 form or raise ``PhoneError`` with a code saying why:
    ``phone_empty``, ``phone_malformed`` (not a number), ``phone_prefix`` (a number, but not a
    mobile number this gateway accepts)."""
    if not isinstance(text, str) or len(text) > MAX_INPUT_CHARS:
        raise PhoneError("phone number is too long", "phone_malformed")
    typed = text.strip()
    if not typed:
        raise PhoneError("phone number is empty", "phone_empty")
    if not _TYPED.fullmatch(typed) or not _PARENS.fullmatch(typed) or "+" in typed[1:]:
        raise PhoneError("phone number may contain only digits, spaces, dashes and parentheses", "phone_malformed")
    try:
        number = phonenumbers.parse(typed, allowed_regions[0] if allowed_regions else None)
    except NumberParseException:
        raise PhoneError("not a phone number", "phone_malformed") from None
    if not phonenumbers.is_possible_number(number):
        raise PhoneError("phone number has the wrong number of digits", "phone_malformed")
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if not phonenumbers.is_valid_number(number):
        raise PhoneError("no such phone number range", "phone_malformed")
    if phonenumbers.region_code_for_number(number) not in allowed_regions \
            or phonenumbers.number_type(number) not in MOBILE_TYPES:
        raise PhoneError("this gateway accepts mobile numbers of its regions only", "phone_prefix")
    if allowed_prefixes and not any(e164.startswith(prefix) for prefix in allowed_prefixes):
        raise PhoneError("this gateway does not accept numbers with this prefix", "phone_prefix")
    return e164


def mask_phone(e164: str) -> str:
    """The number as the citizen knows it, with all but the country code, the first digits of the
    national number and the last two digits hidden: ``+7 912 ***-**-89``."""
    try:
        shown = phonenumbers.format_number(phonenumbers.parse(e164, None), PhoneNumberFormat.INTERNATIONAL)
    except NumberParseException:
        return "…" + e164[-2:]
    country, _, national = shown.partition(" ")
    digits_seen = 0
    keep_head = 3
    total = sum(ch.isdigit() for ch in national)
    masked = []
    for ch in national:
        if ch.isdigit():
            digits_seen += 1
            masked.append(ch if digits_seen <= keep_head or digits_seen > total - 2 else "*")
        else:
            masked.append(ch)
    return country + "\u00a0" + "".join(masked).replace(" ", "\u00a0")


def keyed_hash(secret: bytes, domain: bytes, *parts: bytes) -> bytes:
    """HMAC-SHA256 over length-prefixed parts under a domain label (no ambiguity between parts)."""
    mac = hmac.new(secret, domain, hashlib.sha256)
    for part in parts:
        mac.update(len(part).to_bytes(4, "big"))
        mac.update(part)
    return mac.digest()


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is voting, as keyed hashes only: a phone number or a code card.

    ``index_key`` names the voter's records (an index, never the key material);
    ``vault_key`` encrypts them. Both come from the gateway secret and the phone (or card code),
    so neither can be recomputed from the database alone. ``card_id`` is set for card logins.
    """

    index_key: bytes
    vault_key: bytes
    card_id: bytes | None = None
    card_campaign: str | None = None

    @property
    def is_card(self) -> bool:
        return self.card_id is not None


def phone_identity(secret: bytes, e164: str) -> Identity:
    phone = e164.encode()
    return Identity(keyed_hash(secret, b"veche/gw/phone-index/v1", phone),
                    keyed_hash(secret, b"veche/gw/phone-vault/v1", phone))


def phone_tag(secret: bytes, e164: str) -> bytes:
    """A keyed hash used for per-phone rate limits and lock-outs (never stored on disk)."""
    return keyed_hash(secret, b"veche/gw/phone-limit/v1", e164.encode())
