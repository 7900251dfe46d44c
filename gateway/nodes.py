"""The gateway's client for the nodes' public API, with fail-over across the configured nodes.

A request goes to the node that answered last. A connection error, a timeout, a 5xx answer, 429
(over budget) or 503 (shedding load) marks that node down for a growing back-off and the request
moves on to the next node; each node is tried at most once per call. A 4xx answer other than 429 is
the node's verdict and comes back to the caller with its JSON body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgpack

from chain.numbers import parse_seconds
from gateway.errors import NodeAnswerError, NodeUnavailable

log = logging.getLogger("veche.gateway.nodes")

API = "/api/v1"
MAX_JSON_BYTES = 32 * 1024 * 1024
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 15.0


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class SubmitResult:
    accepted: frozenset[str]
    rejected: tuple[Rejection, ...]
    node: str


@dataclass(slots=True)
class NodeHealth:
    url: str
    down_until: float = 0.0
    backoff: float = BACKOFF_START_S
    failures: int = 0

    def failed(self, now: float, hint: float | None = None) -> None:
        self.failures += 1
        wait = self.backoff if hint is None else max(hint, BACKOFF_START_S)
        self.down_until = now + min(wait, BACKOFF_MAX_S)
        self.backoff = min(self.backoff * 2, BACKOFF_MAX_S)

    def succeeded(self) -> None:
        self.down_until = 0.0
        self.backoff = BACKOFF_START_S


class NodePool:
    """Talks to several nodes; owns no session (the app's cleanup context does)."""

    def __init__(self, urls: tuple[str, ...], session: aiohttp.ClientSession, *, timeout_s: float = 5.0,
                 on_failover: Callable[[str], None] | None = None) -> None:
        if not urls:
            raise NodeUnavailable("no node URLs configured")
        self.on_failover = on_failover
        self.nodes = [NodeHealth(url.rstrip("/")) for url in urls]
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(timeout_s, 2.0))
        self.current = 0

    def _order(self) -> list[NodeHealth]:
        now = time.monotonic()
        rotated = self.nodes[self.current:] + self.nodes[:self.current]
        up = [n for n in rotated if n.down_until <= now]
        down = sorted((n for n in rotated if n.down_until > now), key=lambda n: n.down_until)
        return up + down

    async def request(self, method: str, path: str, *, data: bytes | None = None,
                      content_type: str | None = None, ok_statuses: tuple[int, ...] = (200,),
                      raw: bool = False) -> tuple[int, Any, str]:
        """(status, parsed JSON — or the bytes with ``raw`` — , node URL) from the first node that answers usefully."""
        problems: list[str] = []
        for node in self._order():
            url = node.url + API + path
            headers = {"Accept": "application/json"}
            if content_type:
                headers["Content-Type"] = content_type
            try:
                async with self.session.request(method, url, data=data, headers=headers,
                                                timeout=self.timeout) as response:
                    body = await _read_limited(response)
                    status = response.status
                    retry_after = response.headers.get("Retry-After")
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                node.failed(time.monotonic())
                self._failed_over(node)
                problems.append(f"{node.url}: {exc.__class__.__name__}")
                log.warning("node %s unreachable (%s); trying the next one", node.url, exc.__class__.__name__)
                continue
            if status >= 500 or status == 429:
                node.failed(time.monotonic(), _retry_after(retry_after))
                self._failed_over(node)
                problems.append(f"{node.url}: HTTP {status}")
                log.warning("node %s answered HTTP %s; trying the next one", node.url, status)
                continue
            if len(body) > MAX_JSON_BYTES:
                raise NodeAnswerError(f"node {node.url} sent more than {MAX_JSON_BYTES} bytes")
            if raw and status == 200:
                node.succeeded()
                self.current = self.nodes.index(node)
                return status, body, node.url
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                node.failed(time.monotonic())
                self._failed_over(node)
                problems.append(f"{node.url}: not JSON")
                continue
            node.succeeded()
            self.current = self.nodes.index(node)
            if status not in ok_statuses and not 400 <= status < 500:
                raise NodeAnswerError(f"node {node.url} answered HTTP {status} to {method} {path}")
            return status, parsed, node.url
        raise NodeUnavailable("no node answered: " + "; ".join(problems))

    def _failed_over(self, node: NodeHealth) -> None:
        if self.on_failover is not None:
            self.on_failover(node.url)

    async def get(self, path: str, *, ok_statuses: tuple[int, ...] = (200,)) -> tuple[int, Any]:
        status, parsed, _ = await self.request("GET", path, ok_statuses=ok_statuses)
        return status, parsed

    async def get_ok(self, path: str) -> Any:
        status, parsed = await self.get(path)
        if status != 200:
            raise NodeAnswerError(f"GET {path}: HTTP {status}: {_error_text(parsed)}")
        return parsed

    async def get_raw(self, path: str) -> bytes | None:
        """The bytes of a 200 answer, or None for a 404."""
        status, body, node = await self.request("GET", path, ok_statuses=(200, 404), raw=True)
        if status == 404:
            return None
        if status != 200 or not isinstance(body, bytes):
            raise NodeAnswerError(f"GET {path} on {node}: HTTP {status}")
        return body

    async def submit(self, raw_txs: list[bytes]) -> SubmitResult:
        body = msgpack.packb(raw_txs, use_bin_type=True)
        status, parsed, node = await self.request("POST", "/txs", data=body,
                                                  content_type="application/octet-stream")
        if status != 200 or not isinstance(parsed, dict):
            raise NodeAnswerError(f"node {node} refused the submission: HTTP {status}: {_error_text(parsed)}")
        accepted = parsed.get("accepted", [])
        rejected_raw = parsed.get("rejected", [])
        if not isinstance(accepted, list) or not isinstance(rejected_raw, list):
            raise NodeAnswerError(f"node {node} sent a malformed submission answer")
        rejected = []
        for item in rejected_raw:
            if not isinstance(item, dict) or not isinstance(item.get("index"), int):
                raise NodeAnswerError(f"node {node} sent a malformed rejection")
            rejected.append(Rejection(item["index"], str(item.get("code", "rejected")), str(item.get("message", ""))))
        return SubmitResult(frozenset(str(h) for h in accepted), tuple(rejected), node)

    async def tx_status(self, tx_hash_hex: str) -> dict[str, Any]:
        status, parsed = await self.get(f"/txs/{tx_hash_hex}", ok_statuses=(200, 404))
        if status == 404:
            return {"status": "unknown"}
        if not isinstance(parsed, dict) or parsed.get("status") not in ("pending", "committed", "rejected", "unknown"):
            raise NodeAnswerError("node sent a malformed tx status")
        return parsed


async def _read_limited(response: aiohttp.ClientResponse) -> bytes:
    body = bytearray()
    async for chunk in response.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            break
    return bytes(body)


def _retry_after(value: str | None) -> float | None:
    seconds = parse_seconds(value, default=-1.0, maximum=3600.0)
    return None if seconds < 0 else seconds


def _error_text(parsed: Any) -> str:
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        error = parsed["error"]
        return f"{error.get('code')}: {error.get('message')}"
    return str(parsed)[:200]
