"""Debian's headless Chromium driven by Playwright for Python, and axe-core loaded into real pages.

Playwright is used only as a client of the browser the machine already has (``executable_path``):
no browser is downloaded. axe-core comes from the npm registry; ``scripts/test.sh`` installs it
into ``.cache/axe`` (ignored by git), or ``VECHE_AXE_JS`` names another copy of ``axe.min.js``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic", "--disable-default-apps", "--disable-extensions",
         "--mute-audio"]
AXE_JS = Path(os.environ.get("VECHE_AXE_JS") or ROOT / ".cache/axe/node_modules/axe-core/axe.min.js")
# WCAG 2.1 levels A and AA (axe's tags for 2.0 and 2.1 success criteria)
WCAG_AA_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def launch_chromium() -> tuple[Playwright, Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
    except BaseException:
        playwright.stop()
        raise
    return playwright, browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One browser per test module (the gateway's and the console's conftest.py offer this fixture):
    while Playwright's synchronous API runs, its event loop is the thread's running loop, and the
    other modules' ``asyncio.run`` would refuse to start."""
    playwright, browser = launch_chromium()
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


def axe_source() -> str:
    if not AXE_JS.is_file():
        raise RuntimeError(f"{AXE_JS} is missing: scripts/test.sh installs axe-core "
                           "(npm install --prefix .cache/axe axe-core@4)")
    return AXE_JS.read_text(encoding="utf-8")


def run_axe(page: Page, source: str) -> dict[str, Any]:
    """axe-core's WCAG 2.1 A/AA rules on the page as it is now (the context must bypass the CSP)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=source)
    result: dict[str, Any] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations', 'incomplete']})",
        WCAG_AA_TAGS)
    return result


def describe(findings: list[dict[str, Any]]) -> list[str]:
    """One line per finding and element: rule id, impact and the element's selector."""
    lines = []
    for finding in findings:
        for node in finding.get("nodes", []):
            lines.append(f"{finding['id']} ({finding.get('impact')}): {node.get('target')} "
                         f"{node.get('failureSummary', '')[:160]!r}")
    return lines
