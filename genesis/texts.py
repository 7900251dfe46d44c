"""Compiled gettext catalogues, shared by the gateway's and the operator console's texts.

Each of them keeps its own catalogue (``<package>/locale/<lang>/LC_MESSAGES/messages.mo``, made
from the ``.po`` beside it with Babel) and its own message tables; this is only the loading and the
lookup: English is the source language (its texts are the message ids, it needs no catalogue),
``%(name)s`` placeholders are filled after translation, plural forms come from the catalogue's own
plural rule (Russian has three) with ``%(num)d`` standing for the count.
"""

from __future__ import annotations

import gettext
from pathlib import Path

DOMAIN = "messages"


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
