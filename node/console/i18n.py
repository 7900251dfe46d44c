"""The console's texts: gettext catalogues (Babel) for Russian, English as the source language.

The same scheme as the gateway (gateway/i18n.py, docs/GATEWAY.md "Texts and languages"), with its
own catalogue: ``node/console/locale/<lang>/LC_MESSAGES/messages.po`` and the compiled ``.mo``
committed beside it; ``node/console/babel.cfg`` says where the messages are (docs/OPERATOR.md
"The operator console" gives the commands). Templates get ``_`` and ``ngettext`` bound to the
page's language; ``ConsoleError`` messages are message ids marked with ``N_``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from genesis.texts import DOMAIN as DOMAIN
from genesis.texts import N_ as N_
from genesis.texts import Catalogues

LOCALE_DIR = Path(__file__).parent / "locale"
SOURCE_LANG = "en"
LANGS = ("ru", "en")
TEXTS = Catalogues(LOCALE_DIR, LANGS, SOURCE_LANG)
catalogue = TEXTS.catalogue
translate = TEXTS.translate
translate_plural = TEXTS.translate_plural


STATUS_NAMES: dict[str, str] = {
    "submitted": N_("pending review"),
    "approved": N_("approved"),
    "rejected": N_("rejected"),
}
STAGE_NAMES: dict[str, str] = {
    "contract": N_("contract signed"),
    "works": N_("works under way"),
    "done": N_("done"),
    "cancelled": N_("cancelled"),
}
ROLE_NAMES: dict[str, str] = {
    "committee": N_("committee member"),
    "district": N_("district operator"),
    "gateway": N_("voting site (gateway)"),
}
RULE_NAMES: dict[str, str] = {
    "top-n": N_("most votes (top N)"),
    "greedy": N_("by votes within the budget, skipping what does not fit"),
    "greedy-no-skip": N_("by votes until the budget runs out"),
    "equal-shares": N_("method of equal shares"),
}
BALLOT_NAMES: dict[str, str] = {
    "choose-1": N_("choose one"),
    "approval": N_("approval (tick several)"),
    "knapsack": N_("knapsack (several within a total cost)"),
    "cumulative": N_("cumulative (spread points)"),
    "ordinal": N_("ranking"),
}
KIND_NAMES: dict[str, str] = {
    "campaign.create": N_("create a campaign"),
    "campaign.close": N_("close a campaign"),
    "initiative.review": N_("review an initiative"),
    "progress.report": N_("progress report"),
    "validators.update": N_("change the validator set"),
    "keys.rotate": N_("rotate a key"),
    "protocol.upgrade": N_("schedule a protocol upgrade"),
}
DOCUMENT_ROLE_NAMES: dict[str, str] = {
    "estimate": N_("estimate"),
    "photo": N_("photo"),
    "document": N_("document"),
}


def named(table: dict[str, str], lang: str, key: str) -> str:
    message = table.get(key)
    return key if message is None else translate(lang, message)


def format_money(kopecks: int, lang: str) -> str:
    """1234567800 → "12 345 678 ₽" (kopecks shown only when not zero)."""
    rubles, rest = divmod(int(kopecks), 100)
    grouped = f"{rubles:,}".replace(",", "\u00a0" if lang == "ru" else ",")
    if rest:
        grouped += ("," if lang == "ru" else ".") + f"{rest:02d}"
    return grouped + "\u00a0₽"


def format_rubles_input(kopecks: int) -> str:
    """The value a money field shows: "12345.67" or "12345" (what ``parse_rubles`` reads back)."""
    rubles, rest = divmod(int(kopecks), 100)
    return f"{rubles}.{rest:02d}" if rest else str(rubles)


def format_time(ms: int, offset_minutes: int, lang: str) -> str:
    zone = timezone(timedelta(minutes=offset_minutes))
    moment = datetime.fromtimestamp(ms / 1000, tz=zone)
    hours, minutes = divmod(abs(offset_minutes), 60)
    sign = "+" if offset_minutes >= 0 else "-"
    label = f"UTC{sign}{hours}" + (f":{minutes:02d}" if minutes else "")
    if lang == "en":
        return moment.strftime("%d %b %Y, %H:%M ") + label
    return moment.strftime("%d.%m.%Y %H:%M ") + label


def format_size(size: int, lang: str) -> str:
    if size < 1024:
        return translate(lang, N_("%(n)s bytes"), n=size)
    if size < 1024 * 1024:
        return translate(lang, N_("%(n)s KB"), n=round(size / 1024))
    value = f"{size / (1024 * 1024):.1f}"
    return translate(lang, N_("%(n)s MB"), n=value.replace(".", ",") if lang == "ru" else value)
