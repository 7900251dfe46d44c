"""Compiled gettext catalogues, shared by the gateway's and the operator console's texts.

Each of them keeps its own catalogue (``<package>/locale/<lang>/LC_MESSAGES/messages.mo``, made
from the ``.po`` beside it with Babel) and its own message tables; this is only the loading and the
lookup: English is the source language (its texts are the message ids, it needs no catalogue),
``%(name)s`` placeholders are filled after translation, plural forms come from the catalogue's own
plural rule (Russian has three) with ``%(num)d`` standing for the count.

The formatting both show people the same way lives here too (sizes, money, a code's name from a
table): its messages are in both catalogues, so both ``babel.cfg`` files extract this module.
"""

from __future__ import annotations

import gettext
from pathlib import Path

DOMAIN = "messages"
TEMPLATES = Path(__file__).parent / "templates"   # shared/page.html: the page both base.html extend


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return message


class Catalogues:
    """The catalogues of ``langs`` under ``locale_dir``, each read once, on first use."""

    def __init__(self, locale_dir: Path, langs: tuple[str, ...], source_lang: str = "en") -> None:
        self.locale_dir = locale_dir
        self.langs = langs
        self.source_lang = source_lang
        self._loaded: dict[str, gettext.NullTranslations] = {}

    def catalogue(self, lang: str) -> gettext.NullTranslations:
        """The compiled catalogue of ``lang`` (the source language needs none); KeyError for others."""
        loaded = self._loaded.get(lang)
        if loaded is not None:
            return loaded
        if lang == self.source_lang:
            loaded = gettext.NullTranslations()
        elif lang not in self.langs:
            raise KeyError(f"no catalogue for language {lang!r}")
        else:
            with open(self.locale_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.mo", "rb") as handle:
                loaded = gettext.GNUTranslations(handle)
        self._loaded[lang] = loaded
        return loaded

    def translate(self, lang: str, message: str, **params: object) -> str:
        text = self.catalogue(lang).gettext(message)
        return text % params if params else text

    def translate_plural(self, lang: str, singular: str, plural: str, count: int, **params: object) -> str:
        """The plural form for ``count``; ``%(num)d`` in the text is the count."""
        text = self.catalogue(lang).ngettext(singular, plural, count)
        return text % {"num": count, **params}

    def named(self, table: dict[str, str], lang: str, key: str) -> str:
        """A code's name from one of the tables, or the code itself when the table lacks it."""
        message = table.get(key)
        return key if message is None else self.translate(lang, message)

    def format_size(self, size: int, lang: str) -> str:
        """A file's size for people: "740 bytes", "12 KB", "3.4 MB" (3,4 in Russian)."""
        if size < 1024:
            return self.translate(lang, N_("%(n)s bytes"), n=size)
        if size < 1024 * 1024:
            return self.translate(lang, N_("%(n)s KB"), n=round(size / 1024))
        value = f"{size / (1024 * 1024):.1f}"
        return self.translate(lang, N_("%(n)s MB"), n=value.replace(".", ",") if lang == "ru" else value)


def format_money(kopecks: int, lang: str) -> str:
    """1234567800 → "12 345 678 ₽" (kopecks shown only when not zero)."""
    rubles, rest = divmod(int(kopecks), 100)
    grouped = f"{rubles:,}".replace(",", "\u00a0" if lang == "ru" else ",")
    if rest:
        grouped += ("," if lang == "ru" else ".") + f"{rest:02d}"
    return grouped + "\u00a0₽"
