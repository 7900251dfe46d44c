"""Reading what an operator types or uploads: money, numbers, times, district lists, files.

Every reader raises ``ConsoleError`` with a message id (translated on the page) and never
accepts a value it has to guess at. Money is typed in rubles (``12 345,67`` or ``12345.67``) and
kept in kopecks; times are the browser's ``datetime-local`` value plus a UTC offset; a gateway's
certification key is its hex RSA modulus (as ``veche gateway certification-key`` prints it) or an
RSA public key in PEM.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web
from multidict import MultiDict

from chain.crypto import RSA_EXPONENT, RSA_MAX_BITS, RSA_MIN_BITS
from chain.tx import ID_PATTERN
from node.console.i18n import N_

HEX_DIGITS = re.compile(r"[0-9a-fA-F]+")
PRIVATE_KEY_MARKS = ("PRIVATE KEY", '"p"', '"q"', '"d"')
MONEY = re.compile(r"([0-9]{1,15})(?:[.,]([0-9]{1,2}))?")
LOCAL_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?")
MAX_FIELD_CHARS = 20_000
MAX_FIELDS = 200
HARD_BODY_LIMIT = 96 * 1024 * 1024


class ConsoleError(Exception):
    """Bad input or a refusal, shown to the operator as a clear message (``message`` is a message id)."""

    def __init__(self, message: str, status: int = 400, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.params = params


@dataclass(slots=True)
class Upload:
    field: str
    filename: str
    content_type: str
    data: bytes = b""
    size: int = 0
    over_limit: bool = False


@dataclass(slots=True)
class Form:
    fields: MultiDict[str] = field(default_factory=MultiDict)
    files: list[Upload] = field(default_factory=list)

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.getall(name, [])
        if len(values) > 1:
            raise ConsoleError(N_("The field %(name)s was sent twice."), name=name)
        return values[0].strip() if values else default

    def getall(self, name: str) -> list[str]:
        return [value.strip() for value in self.fields.getall(name, [])]

    def uploads(self, name: str) -> list[Upload]:
        return [upload for upload in self.files if upload.field == name and upload.size > 0]


async def read_form(request: web.Request, *, max_file_bytes: int, max_files: int = 16) -> Form:
    """The POSTed form (urlencoded or multipart). Files over ``max_file_bytes`` are read to the end but
    not kept (``over_limit``), so the answer can be a page that says so instead of a cut connection."""
    form = Form()
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            posted = await request.post()
        except (ValueError, UnicodeDecodeError):
            raise ConsoleError(N_("The form could not be read.")) from None
        for name, value in posted.items():
            if not isinstance(value, str):
                raise ConsoleError(N_("The form could not be read."))
            form.fields.add(name, _field(name, value))
        return form
    if request.content_type != "multipart/form-data":
        raise ConsoleError(N_("The form could not be read."), status=415)
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError):
        raise ConsoleError(N_("The form could not be read.")) from None
    total = 0
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader) or not part.name:
            raise ConsoleError(N_("The form could not be read."))
        if len(form.fields) + len(form.files) >= MAX_FIELDS:
            raise ConsoleError(N_("The form could not be read."))
        if part.filename is None:
            raw = await part.read(decode=False)
            total += len(raw)
            if len(raw) > MAX_FIELD_CHARS * 4:
                raise ConsoleError(N_("The field %(name)s is too long."), name=part.name)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ConsoleError(N_("The form could not be read.")) from None
            form.fields.add(part.name, _field(part.name, text))
            continue
        upload = Upload(part.name, part.filename, part.headers.get("Content-Type", ""))
        chunks: list[bytes] = []
        while True:
            chunk = await part.read_chunk(1 << 16)
            if not chunk:
                break
            upload.size += len(chunk)
            total += len(chunk)
            if total > HARD_BODY_LIMIT:
                raise ConsoleError(N_("The upload is far too large."), status=413)
            if upload.size > max_file_bytes:
                upload.over_limit = True
                chunks = []
            elif not upload.over_limit:
                chunks.append(chunk)
        upload.data = b"".join(chunks)
        if upload.size > 0:
            if len(form.files) >= max_files:
                raise ConsoleError(N_("At most %(count)s files can be sent at once."), count=max_files)
            form.files.append(upload)
    return form


def _field(name: str, value: str) -> str:
    if len(value) > MAX_FIELD_CHARS or "\x00" in value:
        raise ConsoleError(N_("The field %(name)s is too long."), name=name)
    return value


# --- values ------------------------------------------------------------------------------------------


def parse_rubles(text: str, what: str) -> int:
    """``12 345,67`` / ``12345.67`` / ``12345`` rubles → kopecks."""
    cleaned = text.replace("\u00a0", "").replace(" ", "").replace("\u202f", "")
    match = MONEY.fullmatch(cleaned)
    if match is None:
        raise ConsoleError(N_("%(what)s: enter an amount in rubles, such as 1250000 or 1 250 000,50."), what=what)
    kopecks = int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
    return kopecks


def parse_int(text: str, what: str, low: int, high: int) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 15 or not low <= int(text) <= high:
        raise ConsoleError(N_("%(what)s: enter a whole number from %(low)s to %(high)s."), what=what, low=low,
                           high=high)
    return int(text)


def parse_ident(text: str, what: str) -> str:
    if not ID_PATTERN.fullmatch(text):
        raise ConsoleError(N_("%(what)s: use 1 to 64 Latin letters, digits, dots, hyphens or underscores."),
                           what=what)
    return text


def parse_text(text: str, what: str, limit: int, *, required: bool = True) -> str:
    if required and not text:
        raise ConsoleError(N_("%(what)s: this field is required."), what=what)
    if len(text) > limit:
        raise ConsoleError(N_("%(what)s: at most %(limit)s characters."), what=what, limit=limit)
    return text


def local_time_to_rfc3339(text: str, offset_minutes: int, what: str) -> str:
    """A ``datetime-local`` value (``2027-03-01T09:00``) and a UTC offset → ``2027-03-01T09:00:00+03:00``."""
    match = LOCAL_TIME.fullmatch(text)
    if match is None:
        raise ConsoleError(N_("%(what)s: enter a date and time."), what=what)
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    seconds = match.group(6) or "00"
    return (f"{match.group(1)}-{match.group(2)}-{match.group(3)}T{match.group(4)}:{match.group(5)}:{seconds}"
            f"{sign}{hours:02d}:{minutes:02d}")


def parse_offset(text: str) -> int:
    """``+03:00`` / ``-05:30`` / ``+00:00`` → minutes."""
    match = re.fullmatch(r"([+-])([0-9]{2}):([0-9]{2})", text)
    if match is None or int(match.group(2)) > 14 or int(match.group(3)) > 59:
        raise ConsoleError(N_("The UTC offset is written like +03:00."))
    minutes = int(match.group(2)) * 60 + int(match.group(3))
    return -minutes if match.group(1) == "-" else minutes


def parse_districts(text: str) -> list[dict[str, Any]]:
    """CSV lines ``district_id;name;budget in rubles`` (``,`` also separates; a header line is skipped)."""
    rows = []
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ConsoleError(N_("Districts: list at least one district as id;name;budget."))
    delimiter = ";" if ";" in lines[0] else ","
    seen: set[str] = set()
    for number, row in enumerate(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter), start=1):
        cells = [cell.strip() for cell in row]
        if number == 1 and cells and cells[0].lower() in ("district_id", "id", "district"):
            continue
        if len(cells) != 3:
            raise ConsoleError(N_("Districts, line %(line)s: write id;name;budget in rubles."), line=number)
        district_id, name, budget = cells
        if not ID_PATTERN.fullmatch(district_id):
            raise ConsoleError(N_("Districts, line %(line)s: the id %(id)s is not 1 to 64 Latin letters, digits, "
                                  "dots, hyphens or underscores."), line=number, id=district_id[:64])
        if district_id in seen:
            raise ConsoleError(N_("Districts, line %(line)s: %(id)s is listed twice."), line=number, id=district_id)
        if not name or len(name) > 200:
            raise ConsoleError(N_("Districts, line %(line)s: a name of 1 to 200 characters is needed."), line=number)
        seen.add(district_id)
        rows.append({"district_id": district_id, "name": name,
                     "budget": parse_rubles(budget, f"{district_id}") if budget else 0})
    if not rows:
        raise ConsoleError(N_("Districts: list at least one district as id;name;budget."))
    if len(rows) > 512:
        raise ConsoleError(N_("Districts: at most 512."))
    return rows


def districts_to_csv(districts: list[dict[str, Any]]) -> str:
    from node.console.i18n import format_rubles_input

    return "\n".join(f"{d['district_id']};{d['name']};{format_rubles_input(int(d.get('budget', 0)))}"
                     for d in districts)


def parse_certification_key(text: str) -> bytes:
    """The gateway's RSA certification key (docs/PROTOCOL.md §16.1) → its modulus bytes; ``b""`` if empty.

    Takes the hex modulus ``veche gateway certification-key`` prints (line breaks, spaces and colons
    ignored; ``e`` = 65537 is implied) or a PEM ``PUBLIC KEY`` / ``RSA PUBLIC KEY``, whose exponent
    must be 65537. The modulus must have 3072 to 4096 bits in whole bytes and be odd — the chain's
    rule (``chain.crypto.check_rsa_modulus``), said in words. A private key is refused outright."""
    text = text.strip()
    if not text:
        return b""
    if is_private_key_text(text):
        raise ConsoleError(N_("Certification key: this is a private key. Paste only the public key the gateway "
                              "operator gives (veche gateway certification-key prints it); the private key never "
                              "leaves the gateway."))
    if text.startswith("-----BEGIN"):
        modulus, exponent = _pem_rsa_public_key(text)
    else:
        digits = re.sub(r"[\s:]", "", text).removeprefix("0x")
        if not HEX_DIGITS.fullmatch(digits):
            raise ConsoleError(N_("Certification key: paste the hex modulus that veche gateway certification-key "
                                  "prints, or an RSA public key in PEM."))
        modulus, exponent = int(digits, 16), RSA_EXPONENT
    if exponent != RSA_EXPONENT:
        raise ConsoleError(N_("Certification key: its public exponent is %(exponent)s; it must be 65537."),
                           exponent=exponent)
    bits = modulus.bit_length()
    if not RSA_MIN_BITS <= bits <= RSA_MAX_BITS or bits % 8:
        raise ConsoleError(N_("Certification key: the RSA key has %(bits)s bits; it must have %(low)s to %(high)s "
                              "bits, a multiple of 8."), bits=bits, low=RSA_MIN_BITS, high=RSA_MAX_BITS)
    if not modulus & 1:
        raise ConsoleError(N_("Certification key: this number is even, so it is not an RSA modulus."))
    return modulus.to_bytes(bits // 8, "big")


def is_private_key_text(text: str) -> bool:
    """A PEM private key or a gateway's ``certification-key.json`` (it holds the primes)."""
    return any(mark in text for mark in PRIVATE_KEY_MARKS)


def _pem_rsa_public_key(text: str) -> tuple[int, int]:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(text.encode("ascii", "replace"))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConsoleError(N_("Certification key: the PEM text could not be read as a public key.")) from None
    if not isinstance(key, RSAPublicKey):
        raise ConsoleError(N_("Certification key: the PEM key is not an RSA key."))
    numbers = key.public_numbers()
    return numbers.n, numbers.e
