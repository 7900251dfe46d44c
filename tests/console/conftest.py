"""One headless Chromium per console browser test module (Playwright, Debian's chromium: tests/gateway/browser.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.gateway.browser import launch_chromium


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    playwright, browser = launch_chromium()
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()
