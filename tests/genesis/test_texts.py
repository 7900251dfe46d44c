"""The gettext catalogues of both web apps (gateway, operator console), checked one way: complete,
compiled, in step with the code and templates (genesis/texts.py loads them), with the shared
formatting translated in each."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

import gateway.i18n
import node.console.i18n
from genesis.texts import Catalogues
from tests.paths import REPO_ROOT

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


@dataclass(frozen=True, slots=True)
class App:
    name: str
    folder: str            # the package folder, relative to the repository root (its babel.cfg is there)
    texts: Catalogues
    docs: str              # where the extract/update/compile commands are written down

    @property
    def translated(self) -> list[str]:
        return [lang for lang in self.texts.langs if lang != self.texts.source_lang]

    def extracted(self) -> set[str | tuple[str, ...]]:
        """Every message id the code and templates mark, as ``pybabel extract -F <folder>/babel.cfg`` finds them."""
        with open(REPO_ROOT / self.folder / "babel.cfg", encoding="utf-8") as handle:
            method_map, options_map = parse_mapping_cfg(handle)  # type: ignore[no-untyped-call]
        return {message for _, _, message, _, _ in extract_from_dir(str(REPO_ROOT), method_map, options_map,
                                                                     keywords=DEFAULT_KEYWORDS)}

    def catalogue(self, lang: str) -> Catalog:
        with open(self.texts.locale_dir / lang / "LC_MESSAGES" / "messages.po", "rb") as handle:
            return read_po(handle, locale=lang)


APPS = [App("gateway", "gateway", gateway.i18n.TEXTS, "docs/GATEWAY.md"),
        App("console", "node/console", node.console.i18n.TEXTS, "docs/OPERATOR.md")]
TRANSLATIONS = [pytest.param(app, lang, id=f"{app.name}-{lang}") for app in APPS for lang in app.translated]


@pytest.mark.parametrize("app", APPS, ids=lambda app: app.name)
def test_the_template_lists_exactly_the_messages_the_code_uses(app: App) -> None:
    with open(app.texts.locale_dir / "messages.pot", "rb") as handle:
        template = {m.id for m in read_po(handle) if m.id}
    in_code = app.extracted()
    assert sorted(map(str, in_code - template)) == [], f"run the extract command of {app.folder}/babel.cfg"
    assert sorted(map(str, template - in_code)) == []


@pytest.mark.parametrize("app, lang", TRANSLATIONS)
def test_every_message_is_translated_with_the_same_placeholders(app: App, lang: str) -> None:
    po = app.catalogue(lang)
    in_code = app.extracted()
    by_id = {m.id: m for m in po if m.id}
    assert [str(m) for m in in_code if m not in by_id] == [], f"{lang}: run pybabel update ({app.docs})"
    assert [str(m) for m in by_id if m not in in_code] == [], f"{lang}: obsolete messages"
    for message in by_id.values():
        assert not message.fuzzy, message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        assert all(strings), f"{lang}: untranslated {message.id!r}"
        wanted = set(PLACEHOLDER.findall(" ".join(map(str, ids))))
        for text in strings:
            found = set(PLACEHOLDER.findall(str(text)))
            assert found <= wanted | {"num"}, (message.id, text)
            assert found >= wanted - {"num"}, (message.id, text)
    assert list(po.check()) == []                       # Babel's own checks (python-format, plural count)


@pytest.mark.parametrize("app, lang", TRANSLATIONS)
def test_committed_mo_file_is_what_the_po_file_compiles_to(app: App, lang: str) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, app.catalogue(lang), use_fuzzy=False)
    committed = (app.texts.locale_dir / lang / "LC_MESSAGES" / "messages.mo").read_bytes()
    assert committed == compiled.getvalue(), f"run: pybabel compile -d {app.folder}/locale -D messages -l {lang}"


@pytest.mark.parametrize("app", APPS, ids=lambda app: app.name)
@pytest.mark.parametrize("size, ru, en", [
    (740, "740 байт", "740 bytes"), (12 * 1024 + 100, "12 КБ", "12 KB"),
    (int(3.42 * 1024 * 1024), "3,4 МБ", "3.4 MB"),
])
def test_sizes_read_the_same_in_both_apps(app: App, size: int, ru: str, en: str) -> None:
    assert app.texts.format_size(size, "ru") == ru
    assert app.texts.format_size(size, "en") == en

