"""Benchmark the citizen gateway: complete citizen flows per second through a 4-validator network.

    .venv/bin/python scripts/bench_gateway.py [--flows 3000] [--warmup 300] [--concurrency 256]
                                              [--validators 4] [--form-min-seconds 0] [--dir DIR] [--json]
                                              [--mode gateway-held|voter-held]
                                              [--relay MIN,MAX,TICK] [--batch-ms MS]

Starts a demo testnet of real processes on loopback (``python -m node --home`` per validator and
``veche gateway start --home``), then runs ``--concurrency`` simulated citizens, each doing whole
flows back to back, like a browser without JavaScript would:

    GET /login → POST /login (phone; the gateway writes the SMS to its outbox) → the code is read from
    sms-outbox.jsonl → POST /login/code (303) → GET the district's ballot page → POST …/vote (answers 303
    once the ballot is committed and its proof verified) → GET its receipt page → GET /receipt/{tx}.json (the receipt file)

With ``--mode voter-held`` each flow is what the ballot page's script does (JavaScript on, docs/GATEWAY.md
"Voter-held keys"): after the login, GET the ballot page (its ``data-*``) → make an Ed25519 key, blind
the token message → POST /c/ib-2027/token (the blind signature, once the gateway's tokens.issued
record is committed) → unblind, sign the ballot → POST it to a node (round robin, no cookie) → wait
for its block → GET /api/v1/txs/{hash} (the proof for the receipt the device keeps). The client's
own crypto (blinding, Ed25519) is counted in its CPU figure.

``--relay MIN,MAX,TICK`` (voter-held mode) turns on the gateway's cookie-less ballot relay with that
random delay U[MIN, MAX] seconds and tick, and each device sends its ballot to ``POST /relay/v1/txs``
(no cookie) instead of a node: the relay forwards the due ballots of each tick to a node in one
request, as docs/GATEWAY.md describes. ``--batch-ms`` writes ``consensus.batch_ms`` into the testnet's
genesis (how long a proposer waits for more transactions; default 5).

Each citizen has its own phone number and client address (sent in ``X-Forwarded-For``, which the
benchmark configures as the gateway's trusted proxy header, so per-address limits apply as in
production behind nginx). ``--form-min-seconds`` is 0 by default: it only adds latency per flow
(throughput = concurrency / latency), not work.

Prints: flows/s over the measured window; p50/p99 of the whole flow and of the vote step; CPU
milliseconds per flow of the gateway process, of the validators together, and of this client; the
ballot page's size with its CSS; and every failure, by kind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain import codec  # noqa: E402
from chain.blind import blind, finalize, token_message  # noqa: E402
from chain.crypto import SigningKey  # noqa: E402
from chain.tx import make_vote  # noqa: E402
from tests.gateway.realnet import RealNet, make_realnet  # noqa: E402

CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')
TX_HASH = re.compile(rb'id="tx-hash">([0-9a-f]{64})<')
CHOICE = re.compile(rb'name="choice" value="([^"]+)"')
CODE = re.compile(r"\b(\d{6})\b")
RETRIES = 50
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


class Outbox:
    """Tails the gateway's sms-outbox.jsonl and hands each phone its code."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.codes: dict[str, str] = {}
        self.waiters: dict[str, asyncio.Future[str]] = {}

    async def run(self) -> None:
        buffer = b""
        while True:
            try:
                with open(self.path, "rb") as handle:
                    handle.seek(self.offset)
                    chunk = handle.read()
            except FileNotFoundError:
                chunk = b""
            if chunk:
                self.offset += len(chunk)
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    message = json.loads(line)
                    code = CODE.search(message["text"]).group(1)  # type: ignore[union-attr]
                    waiter = self.waiters.pop(message["to"], None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(code)
                    else:
                        self.codes[message["to"]] = code
            await asyncio.sleep(0.005)

    async def code_for(self, phone: str, timeout: float = 30.0) -> str:
        if phone in self.codes:
            return self.codes.pop(phone)
        future = asyncio.get_running_loop().create_future()
        self.waiters[phone] = future
        return await asyncio.wait_for(future, timeout)


class Citizens:
    def __init__(self, net: RealNet, outbox: Outbox, districts: list[str], form_wait: float,
                 voter_held: bool = False, blocks: "BlockWatcher | None" = None, relay: bool = False) -> None:
        self.voter_held = voter_held
        self.relay = relay
        self.retries = 0
        self.relay_wait = 0.0
        self.blocks = blocks
        self.modulus = b""
        self.net = net
        self.outbox = outbox
        self.districts = districts
        self.form_wait = form_wait
        self.counter = 0
        self.flow_seconds: list[float] = []
        self.vote_seconds: list[float] = []
        self.failures: Counter[str] = Counter()
        self.done = 0

    async def flow(self, http: "Http", nodes: "list[Http] | None" = None) -> None:
        self.counter += 1
        n = self.counter
        phone = f"+79{n:09d}"
        headers = {"X-Forwarded-For": f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"}
        district = self.districts[n % len(self.districts)]
        started = time.monotonic()

        location = ""

        async def call(method: str, path: str, step: str, form: dict[str, str] | None = None,
                       expect: int = 200) -> bytes:
            nonlocal location
            status, answer_headers, body = await http.request(method, path, headers, form)
            if status != expect:
                raise RuntimeError(f"{step}: HTTP {status}")
            cookie = answer_headers.get("set-cookie")
            if cookie is not None and cookie.startswith("veche_session="):
                headers["Cookie"] = cookie.split(";", 1)[0]
            location = answer_headers.get("location", "")
            return body

        try:
            page = await call("GET", f"/login?next=/c/ib-2027/d/{district}", "login page")
            await asyncio.sleep(self.form_wait)
            page = await call("POST", "/login", "sms request",
                              {"phone": phone, "csrf_token": CSRF.search(page).group(1).decode()})  # type: ignore[union-attr]
            code = await self.outbox.code_for(phone)
            await asyncio.sleep(self.form_wait)
            await call("POST", "/login/code", "code",
                       {"code": code, "csrf_token": CSRF.search(page).group(1).decode()}, expect=303)  # type: ignore[union-attr]
            ballot = await call("GET", f"/c/ib-2027/d/{district}", "ballot page")
            choice = CHOICE.search(ballot).group(1).decode()  # type: ignore[union-attr]
            await asyncio.sleep(self.form_wait)
            voting = time.monotonic()
            if self.voter_held:
                assert nodes is not None
                await self.own_key_vote(call, nodes[n % len(nodes)], district, choice,
                                        CSRF.search(ballot).group(1).decode(), ballot)  # type: ignore[union-attr]
                self.vote_seconds.append(time.monotonic() - voting)
                self.flow_seconds.append(time.monotonic() - started)
                self.done += 1
                return
            await call("POST", f"/c/ib-2027/d/{district}/vote", "vote",
                       {"choice": choice, "csrf_token": CSRF.search(ballot).group(1).decode()},  # type: ignore[union-attr]
                       expect=303)
            answer = await call("GET", location, "receipt page")      # POST-redirect-GET, as a browser follows
            self.vote_seconds.append(time.monotonic() - voting)
            tx_hash = TX_HASH.search(answer).group(1).decode()  # type: ignore[union-attr]
            receipt = json.loads(await call("GET", f"/receipt/{tx_hash}.json", "receipt"))
            if receipt["tx_hash"] != tx_hash:
                raise RuntimeError("receipt: wrong transaction")
        except (RuntimeError, AttributeError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            self.failures[str(exc).split(":")[0] or exc.__class__.__name__] += 1
            await http.close()
            return
        self.flow_seconds.append(time.monotonic() - started)
        self.done += 1

    async def own_key_vote(self, call: Any, node: "Http", district: str, choice: str, csrf: str, page: bytes) -> None:
        """The ballot page's script: key, blind token, ballot straight to a node, commit, proof."""
        if b'data-token-url="/c/ib-2027/token"' not in page:
            raise RuntimeError("ballot page: no voter-held data")
        chain_id = re.search(rb'data-chain="([^"]+)"', page).group(1).decode()  # type: ignore[union-attr]
        voter = SigningKey.generate()
        message = token_message(chain_id, "ib-2027", voter.public_key)
        blinded = blind(self.modulus, message)
        answer = json.loads(await call("POST", "/c/ib-2027/token", "token",
                                       {"csrf_token": csrf, "blinded": blinded.blinded_msg.hex()}))
        token = finalize(self.modulus, message, bytes.fromhex(answer["blind_sig"]), blinded.inverse)
        vote = make_vote(chain_id, voter, "ib-2027", district, [choice], token=token)
        assert self.blocks is not None
        committed = self.blocks.wait(vote.hash.hex())
        if self.relay:                # the relay holds it for its random delay, then sends it with others
            relay = Http(self.net.gateway_url)
            try:
                status, _, body = await relay.request("POST", "/relay/v1/txs",
                                                      {"Content-Type": "application/octet-stream"},
                                                      raw=codec.encode([vote.raw]))
            finally:
                await relay.close()
            if status != 202:
                raise RuntimeError(f"relay HTTP {status}: {body[:160]!r}")
            await asyncio.wait_for(committed, 60 + self.relay_wait)
        for _ in range(0 if self.relay else RETRIES):      # a node a block behind the gateway's may not count the token yet
            status, _, body = await node.request("POST", "/api/v1/txs", {"Content-Type": "application/octet-stream"},
                                                 raw=codec.encode([vote.raw]))
            rejected = json.loads(body)["rejected"] if status == 200 else [{"code": f"HTTP {status}"}]
            if not rejected or rejected[0]["code"] in ("already_pending", "already_committed"):
                break                 # (a re-sent ballot is the same bytes: the node holds it already)
            if rejected[0]["code"] != "tokens_exhausted":
                raise RuntimeError(f"node {rejected[0]['code']}: {body[:160]!r}")
            self.retries += 1
            await asyncio.sleep(0.2)
        else:
            if not self.relay:
                raise RuntimeError("node tokens_exhausted: no node counted the token")
        await asyncio.wait_for(committed, 60 + self.relay_wait)
        for _ in range(50):           # the watcher follows validator-0; this node may be a block behind
            status, _, body = await node.request("GET", f"/api/v1/txs/{vote.hash.hex()}", {})
            if status != 200 or json.loads(body)["status"] != "pending":
                break
            await asyncio.sleep(0.1)
        if status != 200 or json.loads(body)["status"] != "committed":
            raise RuntimeError("receipt: no proof")

    async def worker(self, until_done: int) -> None:
        http = Http(self.net.gateway_url)
        nodes = [Http(url) for url in self.net.node_urls]
        try:
            while self.counter < until_done:
                await self.flow(http, nodes)
        finally:
            await http.close()
            for node in nodes:
                await node.close()


class Http:
    """A minimal keep-alive HTTP/1.1 client: the load generator shares the CPUs with what it measures,
    so it should cost as little as possible (aiohttp's client costs several times more per request)."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def request(self, method: str, path: str, headers: dict[str, str],
                      form: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        body = urlencode(form).encode() if form is not None else (raw or b"")
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        if form is not None:
            lines.append("Content-Type: application/x-www-form-urlencoded")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        reused = self.writer is not None
        try:
            return await self._exchange(request)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError):
            # The server closed an idle keep-alive connection (the node's keep-alive timeout is 15 s)
            # before answering: send again on a fresh one, as browsers do. Never twice.
            await self.close()
            if not reused:
                raise
            return await self._exchange(request)

    async def _exchange(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 60)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        answer: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                answer[name.strip().lower()] = value.strip()
        length = int(answer.get("content-length", "0"))
        payload = await self.reader.readexactly(length) if length else b""
        if answer.get("connection", "").lower() == "close":
            await self.close()
        return int(status_line.split(" ", 2)[1]), answer, payload


async def ballot_page_bytes(net: RealNet, outbox: Outbox, district: str) -> tuple[int, int]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        headers = {"X-Forwarded-For": "192.0.2.1"}
        async with http.get(net.gateway_url + "/login", headers=headers) as response:
            page = await response.read()
        phone = "+79999999999"
        async with http.post(net.gateway_url + "/login", headers=headers,
                             data={"phone": phone, "csrf_token": CSRF.search(page).group(1).decode()}) as response:  # type: ignore[union-attr]
            page = await response.read()
        code = await outbox.code_for(phone)
        async with http.post(net.gateway_url + "/login/code", headers=headers,
                             data={"code": code, "csrf_token": CSRF.search(page).group(1).decode()}) as response:  # type: ignore[union-attr]
            await response.read()
        async with http.get(f"{net.gateway_url}/c/ib-2027/d/{district}", headers=headers) as response:
            html = await response.read()
        async with http.get(net.gateway_url + "/static/site.css") as response:
            css = await response.read()
        return len(html), len(css)


class BlockWatcher:
    """Follows validator-0's blocks and resolves the futures of the ballots it was told to wait for."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.waiting: dict[str, asyncio.Future[None]] = {}
        self.height = 0

    def wait(self, tx_hash: str) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self.waiting[tx_hash] = future
        return future

    async def run(self) -> None:
        async with aiohttp.ClientSession() as http:
            async with http.get(self.url + "/api/v1/status") as response:
                self.height = int((await response.json())["height"])
            while True:
                async with http.get(self.url + "/api/v1/status") as response:
                    height = int((await response.json())["height"])
                while self.height < height:
                    self.height += 1
                    async with http.get(f"{self.url}/api/v1/blocks/{self.height}") as response:
                        block = await response.json()
                    for tx_hash in block["txs"]:
                        future = self.waiting.pop(tx_hash, None)
                        if future is not None and not future.done():
                            future.set_result(None)
                await asyncio.sleep(0.02)


async def node_height(net: RealNet) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.get(net.node_urls[0] + "/api/v1/status") as response:
            return int((await response.json())["height"])


async def run(args: argparse.Namespace, net: RealNet) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(net.node_urls[0] + "/api/v1/campaigns/ib-2027") as response:
            detail = await response.json()
    districts = sorted({i["district_id"] for i in detail["initiatives"] if i["status"] == "approved"})
    outbox = Outbox(net.gateway_home / "sms-outbox.jsonl")
    tailer = asyncio.create_task(outbox.run())
    voter_held = args.mode == "voter-held"
    blocks = BlockWatcher(net.node_urls[0]) if voter_held else None
    watcher = asyncio.create_task(blocks.run()) if blocks is not None else None
    citizens = Citizens(net, outbox, districts, args.form_min_seconds, voter_held, blocks, relay=args.relay is not None)
    citizens.relay_wait = args.relay[1] + args.relay[2] if args.relay is not None else 0.0
    citizens.modulus = bytes.fromhex(detail["campaign"].get("certification_key", ""))
    try:
        sizes = {d: await ballot_page_bytes(net, outbox, d) for d in districts[:1]}
        biggest = max(sizes.values(), key=sum)
        # warm-up
        await asyncio.gather(*(citizens.worker(args.warmup) for _ in range(min(args.concurrency, args.warmup))))
        citizens.flow_seconds.clear()
        citizens.vote_seconds.clear()
        citizens.failures.clear()
        done_before = citizens.done
        assert net.gateway is not None and net.gateway.process is not None
        gateway_pid = net.gateway.process.pid
        validator_pids = [p.process.pid for p in net.validators if p.process is not None]
        cpu_gateway = cpu_seconds(gateway_pid)
        cpu_nodes = sum(cpu_seconds(pid) for pid in validator_pids)
        cpu_client = time.process_time()
        height_before = await node_height(net)
        started = time.monotonic()
        target = citizens.counter + args.flows
        await asyncio.gather(*(citizens.worker(target) for _ in range(args.concurrency)))
        elapsed = time.monotonic() - started
        heights = await node_height(net) - height_before
        flows = citizens.done - done_before
        cpu_gateway = cpu_seconds(gateway_pid) - cpu_gateway
        cpu_nodes = sum(cpu_seconds(pid) for pid in validator_pids) - cpu_nodes
        cpu_client = time.process_time() - cpu_client
    finally:
        tailer.cancel()
        if watcher is not None:
            watcher.cancel()
    async with aiohttp.ClientSession() as http:
        async with http.get(net.gateway_url + "/healthz") as response:
            health = await response.json()
    return {
        "flows": flows, "seconds": round(elapsed, 2), "flows_per_s": round(flows / elapsed, 1),
        "concurrency": args.concurrency, "failures": dict(citizens.failures),
        "flow_p50_ms": round(percentile(citizens.flow_seconds, 0.5) * 1000),
        "flow_p99_ms": round(percentile(citizens.flow_seconds, 0.99) * 1000),
        "vote_p50_ms": round(percentile(citizens.vote_seconds, 0.5) * 1000),
        "vote_p99_ms": round(percentile(citizens.vote_seconds, 0.99) * 1000),
        "gateway_cpu_ms_per_flow": round(cpu_gateway * 1000 / max(flows, 1), 2),
        "validators_cpu_ms_per_flow": round(cpu_nodes * 1000 / max(flows, 1), 2),
        "client_cpu_ms_per_flow": round(cpu_client * 1000 / max(flows, 1), 2),
        "ballot_page_bytes": biggest[0], "css_bytes": biggest[1], "ballot_page_total_bytes": sum(biggest),
        "blocks": heights, "blocks_per_s": round(heights / elapsed, 1),
        "gateway_pending_after": health.get("pending"), "validators": args.validators,
        "form_min_seconds": args.form_min_seconds, "cpus": os.cpu_count(), "mode": args.mode,
        "load_average": os.getloadavg()[0], "ballot_resends": citizens.retries,
        "relay": list(args.relay) if args.relay is not None else None, "batch_ms": args.batch_ms,
    }


def relay_setting(text: str) -> tuple[float, float, float]:
    parts = text.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("--relay wants MIN,MAX,TICK in seconds, e.g. 0,2,0.25")
    low, high, tick = (float(part) for part in parts)
    return low, high, tick


def set_batch_ms(directory: Path, batch_ms: int) -> None:
    """Every home's copy of the testnet genesis gets the same ``consensus.batch_ms`` (before any node starts)."""
    for path in sorted(directory.rglob("genesis.json")):
        document = json.loads(path.read_text())
        document.setdefault("consensus", {})["batch_ms"] = batch_ms
        path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--form-min-seconds", type=float, default=0.0)
    parser.add_argument("--mode", choices=("gateway-held", "voter-held"), default="gateway-held",
                        help="gateway-held: the form posts (JavaScript off); voter-held: the page's script's protocol")
    parser.add_argument("--dir", type=Path, default=None, help="testnet folder (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--relay", type=relay_setting, default=None, metavar="MIN,MAX,TICK",
                        help="voter-held mode: ballots go through the gateway's relay with this delay and tick")
    parser.add_argument("--batch-ms", type=int, default=None, help="consensus.batch_ms in the testnet's genesis")
    args = parser.parse_args()
    if args.relay is not None and args.mode != "voter-held":
        parser.error("--relay needs --mode voter-held")
    with tempfile.TemporaryDirectory(prefix="veche-bench-gw-") as scratch:
        directory = args.dir or Path(scratch) / "testnet"
        net = make_realnet(directory, validators=args.validators)
        if args.batch_ms is not None:
            set_batch_ms(directory, args.batch_ms)
        overrides: dict[str, Any] = {"trusted_proxy_header": "X-Forwarded-For",
                                     "form_min_seconds": args.form_min_seconds, "log_level": "warning"}
        if args.relay is not None:
            low, high, tick = args.relay
            overrides["relay"] = {"enabled": True, "min_delay_seconds": low, "max_delay_seconds": high,
                                  "tick_seconds": tick}
        net.start(gateway_overrides=overrides)
        try:
            result = asyncio.run(run(args, net))
        finally:
            net.stop()
    if args.json:
        print(json.dumps(result))
        return
    print(f"mode {result['mode']}; load average {result['load_average']:.1f}")
    print(f"citizen flows: {result['flows']} in {result['seconds']} s = {result['flows_per_s']} flows/s "
          f"(concurrency {result['concurrency']}, {result['validators']} validators, {result['cpus']} CPUs)")
    print(f"flow latency p50 {result['flow_p50_ms']} ms, p99 {result['flow_p99_ms']} ms; "
          f"vote step p50 {result['vote_p50_ms']} ms, p99 {result['vote_p99_ms']} ms")
    print(f"CPU per flow: gateway {result['gateway_cpu_ms_per_flow']} ms, validators together "
          f"{result['validators_cpu_ms_per_flow']} ms, this client {result['client_cpu_ms_per_flow']} ms")
    print(f"blocks: {result['blocks']} ({result['blocks_per_s']}/s, "
          f"{round(result['flows'] / max(result['blocks'], 1))} ballots per block)")
    print(f"ballot page: {result['ballot_page_bytes']} bytes + CSS {result['css_bytes']} bytes = "
          f"{result['ballot_page_total_bytes']} bytes")
    print(f"failures: {result['failures'] or 'none'}")


if __name__ == "__main__":
    main()
