"""The console's texts: Russian plurals of its own messages.
(Catalogue completeness and compilation: tests/genesis/test_texts.py, for both web apps.)"""

from __future__ import annotations

from node.console.i18n import translate_plural


def test_russian_plurals_of_the_console() -> None:
    assert translate_plural("ru", "%(num)d district", "%(num)d districts", 3) == "3 района"
    assert translate_plural("ru", "%(num)d district", "%(num)d districts", 38) == "38 районов"
    assert translate_plural("en", "%(num)d district", "%(num)d districts", 1) == "1 district"
