"""The gettext catalogues: complete, compiled, in step with the code, with Russian plural forms."""

from __future__ import annotations

import io
import re

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from gateway.i18n import ERROR_TEXTS, LANGS, LOCALE_DIR, SOURCE_LANG, translate, translate_plural
from tests.paths import REPO_ROOT

TRANSLATED = [lang for lang in LANGS if lang != SOURCE_LANG]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted() -> dict[str | tuple[str, ...], str]:
    """Every message id the code and templates mark, as ``pybabel extract -F gateway/babel.cfg`` finds them."""
    with open(REPO_ROOT / "gateway" / "babel.cfg", encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: dict[str | tuple[str, ...], str] = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
            str(REPO_ROOT), method_map, options_map, keywords=DEFAULT_KEYWORDS):
        found[message] = filename
    return found


def catalogue(lang: str) -> Catalog:
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po", "rb") as handle:
        return read_po(handle, locale=lang)


def test_the_template_lists_exactly_the_messages_the_code_uses() -> None:
    with open(LOCALE_DIR / "messages.pot", "rb") as handle:
        template = read_po(handle)
    in_code = set(extracted())
    in_template = {m.id for m in template if m.id}
    assert sorted(map(str, in_code - in_template)) == [], "run the extract command of gateway/babel.cfg"
    assert sorted(map(str, in_template - in_code)) == []


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_message_is_translated_with_the_same_placeholders(lang: str) -> None:
    po = catalogue(lang)
    in_code = extracted()
    by_id = {m.id: m for m in po if m.id}
    missing = [str(m) for m in in_code if m not in by_id]
    assert missing == [], f"{lang}: run pybabel update (docs/GATEWAY.md)"
    assert [str(m) for m in by_id if m not in in_code] == [], f"{lang}: obsolete messages"
    for message in by_id.values():
        assert not message.fuzzy, message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        assert all(strings), f"{lang}: untranslated {message.id!r}"
        wanted = set(PLACEHOLDER.findall(" ".join(ids)))
        for text in strings:
            assert set(PLACEHOLDER.findall(text)) <= wanted | {"num"}, (message.id, text)
            assert set(PLACEHOLDER.findall(text)) >= wanted - {"num"}, (message.id, text)
    assert list(po.check()) == []                       # Babel's own checks (python-format, plural count)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_committed_mo_file_is_what_the_po_file_compiles_to(lang: str) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, catalogue(lang), use_fuzzy=False)
    committed = (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.mo").read_bytes()
    assert committed == compiled.getvalue(), f"run: pybabel compile -d gateway/locale -D messages -l {lang}"


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
