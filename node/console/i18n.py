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
from genesis.texts import format_money as format_money

LOCALE_DIR = Path(__file__).parent / "locale"
SOURCE_LANG = "en"
LANGS = ("ru", "en")
TEXTS = Catalogues(LOCALE_DIR, LANGS, SOURCE_LANG)
catalogue = TEXTS.catalogue
translate = TEXTS.translate
translate_plural = TEXTS.translate_plural
named = TEXTS.named
format_size = TEXTS.format_size


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
