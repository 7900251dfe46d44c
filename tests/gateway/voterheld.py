"""Browser helpers for voter-held keys: vote with the ballot page's script, read what the browser
kept, and search a process's memory (``/proc/PID/mem``) for bytes."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.receipt import verify_receipt
from chain.tx import Tx, decode_tx
from genesis.model import load_genesis
from tests.gateway.cdp import CdpError, Page
from tests.gateway.realnet import RealNet, get_json

FORM_WAIT_S = 1.1


@dataclass(frozen=True)
class BrowserBallot:
    tx_hash: str
    tx: Tx
    public_key: bytes
    seed: bytes
    token: bytes
    receipt: dict[str, Any]

    def needles(self) -> dict[str, bytes]:
        """Every form in which the voter's key or token could travel or be stored."""
        found: dict[str, bytes] = {}
        for name, value in (("public key", self.public_key), ("private key", self.seed), ("token", self.token)):
            found[f"{name} (raw)"] = value
            found[f"{name} (hex)"] = value.hex().encode()
            found[f"{name} (HEX)"] = value.hex().upper().encode()
            found[f"{name} (base64)"] = base64.b64encode(value).rstrip(b"=")
            found[f"{name} (base64url)"] = base64.urlsafe_b64encode(value).rstrip(b"=")
        return found


async def evaluate(page: Page, expression: str) -> Any:
    result = await page.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                  "returnByValue": True})
    if "exceptionDetails" in result:
        raise CdpError(f"{expression[:60]}: {result['exceptionDetails']}")
    return result["result"].get("value")


async def wait_for_selector(page: Page, selector: str, timeout: float, fail: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not await page.exists(selector):
        if fail is not None and await page.exists(fail):
            raise AssertionError(f"{fail}: {await page.text_of(fail)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {selector} after {timeout} s:\n{await page.html()}")
        await asyncio.sleep(0.2)


async def login(net: RealNet, page: Page, phone: str, campaign: str = "ib-2027") -> str:
    """Steps 1–2 from the home page; returns the district path the citizen is back on."""
    gateway = net.gateway_url
    await page.goto(gateway + "/")
    await page.click_and_wait(f'a[href^="/c/{campaign}/d/"]')
    district_path = (await page.url()).removeprefix(gateway)
    await page.click_and_wait("a.button")
    await page.type("#phone", phone)
    await asyncio.sleep(FORM_WAIT_S)
    await page.click_and_wait('form[action="/login"] button[type="submit"]')
    await page.type("#code", net.outbox_code(phone))
    await asyncio.sleep(FORM_WAIT_S)
    await page.click_and_wait('form[action="/login/code"] button[type="submit"]')
    assert (await page.url()) == gateway + district_path
    return district_path


async def vote_with_script(net: RealNet, page: Page, campaign: str = "ib-2027") -> BrowserBallot:
    """Steps 3–4 with JavaScript: the script makes the key, gets the token, sends the ballot to a node."""
    assert await page.exists('script[src="/static/vote.js"]'), await page.html()
    await page.click('input[name="choice"]')
    await asyncio.sleep(FORM_WAIT_S)
    await page.click('form#ballot button[type="submit"]')             # the script takes over: no navigation
    await wait_for_selector(page, "#vh-done", 90, fail="#vh-status.err")
    html = await page.html()
    assert "Ваш голос учтён" in html or "Your vote is counted" in html
    tx_hash = await page.text_of("#tx-hash")
    assert re.fullmatch(r"[0-9a-f]{64}", tx_hash)
    kept = json.loads(await evaluate(page, f"sessionStorage.getItem('veche-key-{campaign}')"))
    href = await page.attribute("#receipt-download", "href") or ""
    assert href.startswith("data:application/json;charset=utf-8,")
    assert (await page.attribute("#receipt-download", "download") or "").endswith(".json")
    receipt = json.loads(urllib.parse.unquote(href.split(",", 1)[1]))
    found = get_json(f"{net.node_urls[0]}/api/v1/txs/{tx_hash}")
    assert found["status"] == "committed"
    tx = decode_tx(bytes.fromhex(found["proof"]["tx"]))
    public_key, seed, token = bytes.fromhex(kept["pk"]), bytes.fromhex(kept["sk"])[-32:], bytes.fromhex(kept["token"])
    assert tx.signers == (public_key,) and tx.body.token == token and tx.body.mode == "voter-held"
    checked = verify_receipt(receipt, load_genesis(net.layout.genesis_file).params)
    assert checked.tx.hash.hex() == tx_hash and receipt["tx_hash"] == tx_hash
    return BrowserBallot(tx_hash, tx, public_key, seed, token, receipt)


def process_memory(pid: int) -> list[bytes]:
    """Every readable mapping of process ``pid`` (a memory dump through /proc/PID/mem)."""
    regions: list[bytes] = []
    with open(f"/proc/{pid}/maps", encoding="ascii") as maps, open(f"/proc/{pid}/mem", "rb", 0) as memory:
        for line in maps:
            fields = line.split()
            start, end = (int(part, 16) for part in fields[0].split("-"))
            if not fields[1].startswith("r") or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]", "[vvar_vclock]")):
                continue
            try:
                memory.seek(start)
                regions.append(memory.read(end - start))
            except (OSError, ValueError, OverflowError):
                continue
    return regions


def files_under(directory: Path) -> list[tuple[Path, bytes]]:
    return [(path, path.read_bytes()) for path in sorted(directory.rglob("*")) if path.is_file()]
