"""One headless Chromium per console browser test module (Playwright, Debian's chromium: tests/gateway/browser.py)."""

from __future__ import annotations

from tests.gateway.browser import chromium as chromium   # the fixture
