"""The gateway's texts: every refusal has a text in every language, Russian plural forms.
(Catalogue completeness and compilation: tests/genesis/test_texts.py, for both web apps.)"""

from __future__ import annotations

import re

import pytest

from gateway.i18n import ERROR_TEXTS, LANGS, translate, translate_plural

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def test_every_refusal_message_has_a_text_in_every_language() -> None:
    for key, message in ERROR_TEXTS.items():
        params = {name: "1" for name in PLACEHOLDER.findall(message)}
        for lang in LANGS:
            assert translate(lang, message, **params).strip(), (key, lang)
        assert translate("ru", message, **params) != message, key


@pytest.mark.parametrize("count, ru, en", [
    (1, "1 голос", "1 vote"), (2, "2 голоса", "2 votes"), (4, "4 голоса", "4 votes"), (5, "5 голосов", "5 votes"),
    (11, "11 голосов", "11 votes"), (12, "12 голосов", "12 votes"), (21, "21 голос", "21 votes"),
    (22, "22 голоса", "22 votes"), (25, "25 голосов", "25 votes"), (111, "111 голосов", "111 votes"),
    (1001, "1001 голос", "1001 votes"), (0, "0 голосов", "0 votes"),
])
def test_russian_plural_forms(count: int, ru: str, en: str) -> None:
    assert translate_plural("ru", "%(num)d vote", "%(num)d votes", count) == ru
    assert translate_plural("en", "%(num)d vote", "%(num)d votes", count) == en
