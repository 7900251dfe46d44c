"""The console's gettext catalogue: complete, compiled, in step with the code and templates."""

from __future__ import annotations

import io
import re

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from node.console.i18n import LANGS, LOCALE_DIR, SOURCE_LANG, translate_plural
from tests.paths import REPO_ROOT

TRANSLATED = [lang for lang in LANGS if lang != SOURCE_LANG]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted() -> set[str | tuple[str, ...]]:
    with open(REPO_ROOT / "node" / "console" / "babel.cfg", encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    return {message for _, _, message, _, _ in extract_from_dir(str(REPO_ROOT), method_map, options_map,
                                                                 keywords=keywords)}


def catalogue(lang: str) -> Catalog:
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po", "rb") as handle:
        return read_po(handle, locale=lang)


def test_the_template_lists_exactly_the_messages_the_console_uses() -> None:
    with open(LOCALE_DIR / "messages.pot", "rb") as handle:
        template = {m.id for m in read_po(handle) if m.id}
    in_code = extracted()
    assert sorted(map(str, in_code - template)) == [], "run the extract command of node/console/babel.cfg"
    assert sorted(map(str, template - in_code)) == []


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_message_is_translated_with_the_same_placeholders(lang: str) -> None:
    po = catalogue(lang)
    in_code = extracted()
    by_id = {m.id: m for m in po if m.id}
    assert [str(m) for m in in_code if m not in by_id] == [], f"{lang}: run pybabel update (docs/OPERATOR.md)"
    assert [str(m) for m in by_id if m not in in_code] == [], f"{lang}: obsolete messages"
    for message in by_id.values():
        assert not message.fuzzy, message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        assert all(strings), f"{lang}: untranslated {message.id!r}"
        wanted = set(PLACEHOLDER.findall(" ".join(ids)))
        for text in strings:
            assert set(PLACEHOLDER.findall(text)) | {"num"} >= wanted - {"num"}, (message.id, text)
            assert set(PLACEHOLDER.findall(text)) <= wanted | {"num"}, (message.id, text)
    assert list(po.check()) == []


@pytest.mark.parametrize("lang", TRANSLATED)
def test_committed_mo_file_is_what_the_po_file_compiles_to(lang: str) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, catalogue(lang), use_fuzzy=False)
    assert (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.mo").read_bytes() == compiled.getvalue(), \
        f"run: pybabel compile -d node/console/locale -D messages -l {lang}"


def test_russian_plurals_of_the_console() -> None:
    assert translate_plural("ru", "%(num)d district", "%(num)d districts", 3) == "3 района"
    assert translate_plural("ru", "%(num)d district", "%(num)d districts", 38) == "38 районов"
    assert translate_plural("en", "%(num)d district", "%(num)d districts", 1) == "1 district"
