"""Drive Debian's headless Chromium over the Chrome DevTools Protocol (aiohttp websocket, no downloads).

``Browser.launch()`` starts ``/usr/bin/chromium --headless=new … --remote-debugging-port=0`` and
connects to the browser target; ``new_page()`` opens a page in a fresh browser context (its own
cookies). ``Page`` acts like a person: it clicks at an element's on-screen centre and types with
``Input.insertText``, so it works the same with JavaScript disabled.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--remote-debugging-port=0"]


class CdpError(Exception):
    pass


class Browser:
    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.profile = tempfile.mkdtemp(prefix="veche-chromium-")
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self.events: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
        self._event_signal = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def launch(cls) -> "Browser":
        if not Path(CHROMIUM).exists():
            raise CdpError(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
        browser = cls()
        browser.process = await asyncio.create_subprocess_exec(
            CHROMIUM, *FLAGS, f"--user-data-dir={browser.profile}", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        assert browser.process.stderr is not None
        url = None
        while url is None:
            line = await asyncio.wait_for(browser.process.stderr.readline(), 30)
            if not line:
                raise CdpError("chromium exited before it opened the DevTools port")
            found = re.search(rb"DevTools listening on (ws://\S+)", line)
            if found:
                url = found.group(1).decode()
        browser._drain_task = asyncio.create_task(browser._drain_stderr())
        browser.session = aiohttp.ClientSession()
        browser.ws = await browser.session.ws_connect(url, max_msg_size=64 * 1024 * 1024)
        browser._reader = asyncio.create_task(browser._read())
        return browser

    async def _drain_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        while await self.process.stderr.readline():
            pass

    async def _read(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                future = self._waiting.pop(data["id"], None)
                if future is not None and not future.done():
                    if "error" in data:
                        future.set_exception(CdpError(f"{data['error']}"))
                    else:
                        future.set_result(data.get("result", {}))
            else:
                self.events[data.get("sessionId")].append(data)
                self._event_signal.set()

    async def send(self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None,
                   timeout: float = 30.0) -> Any:
        assert self.ws is not None
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        await self.ws.send_str(json.dumps(message))
        return await asyncio.wait_for(future, timeout)

    async def wait_event(self, session_id: str | None, method: str, after: int, timeout: float = 30.0) -> dict[str, Any]:
        """The first ``method`` event of the session with index >= ``after``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for event in self.events[session_id][after:]:
                if event["method"] == method:
                    return event
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise CdpError(f"no {method} within {timeout} s")
            self._event_signal.clear()
            try:
                await asyncio.wait_for(self._event_signal.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def new_page(self, *, width: int = 1024, height: int = 900, mobile: bool = False,
                       javascript: bool = True) -> "Page":
        context = await self.send("Target.createBrowserContext", {"disposeOnDetach": True})
        target = await self.send("Target.createTarget", {"url": "about:blank",
                                                         "browserContextId": context["browserContextId"]})
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        page = Page(self, attached["sessionId"], target["targetId"])
        for domain in ("Page", "DOM", "Network"):
            await page.send(f"{domain}.enable")
        await page.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                               "deviceScaleFactor": 1, "mobile": mobile})
        if not javascript:
            await page.send("Emulation.setScriptExecutionDisabled", {"value": True})
        return page

    async def close(self) -> None:
        if self.ws is not None:
            try:
                await self.send("Browser.close", timeout=5)
            except (CdpError, asyncio.TimeoutError, ConnectionError, aiohttp.ClientError):
                pass
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
        if self.session is not None:
            await self.session.close()
        if self.process is not None:
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser: Browser, session_id: str, target_id: str) -> None:
        self.browser = browser
        self.session_id = session_id
        self.target_id = target_id

    async def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return await self.browser.send(method, params, self.session_id)

    def _mark(self) -> int:
        return len(self.browser.events[self.session_id])

    async def goto(self, url: str) -> None:
        mark = self._mark()
        await self.send("Page.navigate", {"url": url})
        await self.browser.wait_event(self.session_id, "Page.loadEventFired", mark)

    async def _node(self, selector: str) -> int:
        document = await self.send("DOM.getDocument", {"depth": 0})
        found = await self.send("DOM.querySelector", {"nodeId": document["root"]["nodeId"], "selector": selector})
        if not found.get("nodeId"):
            raise CdpError(f"no element matches {selector!r} on {await self.url()}")
        return int(found["nodeId"])

    async def exists(self, selector: str) -> bool:
        document = await self.send("DOM.getDocument", {"depth": 0})
        found = await self.send("DOM.querySelector", {"nodeId": document["root"]["nodeId"], "selector": selector})
        return bool(found.get("nodeId"))

    async def click(self, selector: str) -> None:
        node = await self._node(selector)
        await self.send("DOM.scrollIntoViewIfNeeded", {"nodeId": node})
        quads = (await self.send("DOM.getContentQuads", {"nodeId": node}))["quads"]
        if not quads:
            raise CdpError(f"{selector!r} is not rendered")
        quad = quads[0]            # an inline link that wraps has one quad per line: click the first
        x = sum(quad[0::2]) / 4
        y = sum(quad[1::2]) / 4
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left",
                                                         "clickCount": 1})

    async def click_and_wait(self, selector: str) -> None:
        mark = self._mark()
        await self.click(selector)
        await self.browser.wait_event(self.session_id, "Page.loadEventFired", mark)

    async def type(self, selector: str, text: str) -> None:
        await self.click(selector)
        await self.send("Input.insertText", {"text": text})

    async def press(self, key: str, code: int, modifiers: int = 0) -> None:
        """One key stroke to the focused element (``code``: the Windows virtual key code)."""
        for kind in ("rawKeyDown", "keyUp"):
            await self.send("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": key,
                                                       "windowsVirtualKeyCode": code, "modifiers": modifiers})

    async def fill(self, selector: str, text: str) -> None:
        """Replace a field's text as a person would: click, select all, type."""
        await self.click(selector)
        await self.press("a", 65, modifiers=2)            # Ctrl+A
        await self.send("Input.insertText", {"text": text})

    async def choose(self, selector: str, steps: int) -> None:
        """Pick the option ``steps`` below the current one in a <select>, with the keyboard."""
        await self.send("DOM.focus", {"nodeId": await self._node(selector)})
        for _ in range(steps):
            await self.press("ArrowDown", 40)

    async def html(self) -> str:
        document = await self.send("DOM.getDocument", {"depth": 0})
        result = await self.send("DOM.getOuterHTML", {"nodeId": document["root"]["nodeId"]})
        return str(result["outerHTML"])

    async def text_of(self, selector: str) -> str:
        node = await self._node(selector)
        result = await self.send("DOM.getOuterHTML", {"nodeId": node})
        return re.sub(r"<[^>]+>", "", str(result["outerHTML"])).strip()

    async def attribute(self, selector: str, name: str) -> str | None:
        node = await self._node(selector)
        attributes = (await self.send("DOM.getAttributes", {"nodeId": node}))["attributes"]
        pairs = dict(zip(attributes[0::2], attributes[1::2]))
        return pairs.get(name)

    async def url(self) -> str:
        history = await self.send("Page.getNavigationHistory")
        return str(history["entries"][history["currentIndex"]]["url"])

    async def content_width(self) -> float:
        metrics = await self.send("Page.getLayoutMetrics")
        return float(metrics["cssContentSize"]["width"])

    def requested_urls(self) -> list[str]:
        return [event["params"]["request"]["url"] for event in self.browser.events[self.session_id]
                if event["method"] == "Network.requestWillBeSent"]

    def statuses(self) -> list[tuple[str, int]]:
        return [(event["params"]["response"]["url"], event["params"]["response"]["status"])
                for event in self.browser.events[self.session_id] if event["method"] == "Network.responseReceived"]

    async def screenshot(self, path: Path) -> None:
        import base64

        shot = await self.send("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))
