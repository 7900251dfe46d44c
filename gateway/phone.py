"""Phone numbers: normalise what people type into E.164 and keep only keyed hashes of it.

Accepted by default (prefix ``+79``): ``+7 9XX XXX-XX-XX``, ``+7 (9XX) XXX XX XX``,
``8 9XX XXX-XX-XX``, ``7 9XX…``, ``9XXXXXXXXX``. Spaces, dashes, dots and one pair of
parentheses are ignored; anything else is refused. A number that starts with ``+`` and another
country code is accepted only when the gateway's ``sms.allowed_prefixes`` lists its prefix.

The number itself never leaves this module's callers unhashed except towards the SMS provider:
``PhoneKeys`` derives the keyed hashes the rest of the gateway works with.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

from chain.numbers import is_decimal
from gateway.errors import PhoneError

_SEPARATORS = re.compile(r"[\s\-.\u00a0]")
_PARENS = re.compile(r"^(\+?\d{1,3})?\((\d{3,5})\)(\d+)$", re.ASCII)
MAX_INPUT_CHARS = 40


def normalize_phone(text: str, allowed_prefixes: Sequence[str] = ("+79",)) -> str:
    """Return the E.164 form (``+79…``) or raise ``PhoneError`` with a code saying why."""
    if not isinstance(text, str) or len(text) > MAX_INPUT_CHARS:
        raise PhoneError("phone number is too long", "phone_malformed")
    compact = _SEPARATORS.sub("", text.strip())
    if not compact:
        raise PhoneError("phone number is empty", "phone_empty")
    if "(" in compact or ")" in compact:
        match = _PARENS.fullmatch(compact)
        if match is None:
            raise PhoneError("phone number has misplaced parentheses", "phone_malformed")
        compact = (match.group(1) or "") + match.group(2) + match.group(3)
    plus = compact.startswith("+")
    digits = compact[1:] if plus else compact
    if not is_decimal(digits, 32):
        raise PhoneError("phone number may contain only digits, spaces, dashes and parentheses", "phone_malformed")
    if plus:
        e164 = "+" + digits
    elif len(digits) == 11 and digits[0] in "78":
        e164 = "+7" + digits[1:]          # 8 9XX … and 7 9XX … are Russian trunk/country forms
    elif len(digits) == 10 and digits[0] == "9":
        e164 = "+7" + digits              # 9XX XXX XX XX without a prefix
    else:
        raise PhoneError("phone number has the wrong number of digits", "phone_malformed")
    if not 8 <= len(e164) - 1 <= 15:
        raise PhoneError("phone number has the wrong number of digits", "phone_malformed")
    if e164.startswith("+7") and len(e164) != 12:
        raise PhoneError("a Russian number has 10 digits after +7", "phone_malformed")
    if not any(e164.startswith(prefix) for prefix in allowed_prefixes):
        raise PhoneError("this gateway does not accept numbers with this prefix", "phone_prefix")
    return e164


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
