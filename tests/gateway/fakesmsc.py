"""A local fake of SMSC.ru's HTTP API (``/sys/send.php``, ``/sys/balance.php``, answers with ``fmt=3``).

It checks the credentials (``apikey``, or ``login`` + ``psw``) and the fields the documented
protocol needs, records every message it took, and plays a script of answers: ``"ok"``, an SMSC
error code (``3`` no money, ``9`` too many requests…), ``"http500"``, ``"slow"`` (answers after
``slow_s``) or ``"garbage"`` (a 200 that is not JSON). ``balance`` is what the balance request
answers. In-process (``async with FakeSmsc(...)``) or as a process for multi-machine tests:

    python -m tests.gateway.fakesmsc --host H --port P --secret-file F [--login L] --messages OUT.jsonl
                                     [--cert C --key K]

(with ``--login`` the secret file holds that login's password, else the API key).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web

ERROR_TEXT = {1: "parameters error", 2: "invalid login or password", 3: "insufficient funds",
              4: "IP address temporarily blocked", 6: "message is prohibited", 7: "invalid phone number format",
              8: "message cannot be delivered", 9: "too many concurrent requests"}


class FakeSmsc:
    def __init__(self, *, apikey: str | None = "smsc-key", login: str | None = None, password: str | None = None,
                 balance: str = "1250.40", script: list[int | str] | None = None, slow_s: float = 1.0,
                 messages_file: Path | None = None) -> None:
        self.apikey = apikey
        self.login = login
        self.password = password
        self.balance = balance
        self.script = list(script or [])
        self.slow_s = slow_s
        self.messages_file = messages_file
        self.received: list[dict[str, str]] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.next_id = 1
        self.runner: web.AppRunner | None = None
        self.url = ""

    def authorised(self, form: dict[str, str]) -> bool:
        if "apikey" in form:
            return self.apikey is not None and form["apikey"] == self.apikey
        return self.login is not None and form.get("login") == self.login and form.get("psw") == self.password

    async def form(self, request: web.Request) -> dict[str, str]:
        fields = dict(request.query)
        if request.method == "POST":
            fields.update({key: str(value) for key, value in (await request.post()).items()})
        return fields

    @staticmethod
    def error(code: int, **extra: Any) -> web.Response:
        return web.json_response({"error": ERROR_TEXT.get(code, "error"), "error_code": code, **extra})

    async def send(self, request: web.Request) -> web.Response:
        form = await self.form(request)
        self.requests.append(("send", form))
        step: int | str = self.script.pop(0) if self.script else "ok"
        if step == "slow":
            await asyncio.sleep(self.slow_s)
        if step == "http500":
            return web.Response(status=500, text="internal error")
        if step == "garbage":
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        if not self.authorised(form):
            return self.error(2)
        if form.get("fmt") != "3" or not form.get("phones") or not form.get("mes") or form.get("charset") != "utf-8":
            return self.error(1)
        if isinstance(step, int):
            return self.error(step, id=self.next_id) if step in (3, 6, 7, 8) else self.error(step)
        message = {"phones": form["phones"], "mes": form["mes"], "sender": form.get("sender", "")}
        self.received.append(message)
        if self.messages_file is not None:
            with self.messages_file.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(message, ensure_ascii=False) + "\n")
        self.next_id += 1
        return web.json_response({"id": self.next_id - 1, "cnt": 1})

    async def balance_request(self, request: web.Request) -> web.Response:
        form = await self.form(request)
        self.requests.append(("balance", form))
        if not self.authorised(form):
            return self.error(2)
        return web.json_response({"balance": self.balance})

    def app(self) -> web.Application:
        app = web.Application()
        for path, handler in (("/sys/send.php", self.send), ("/sys/balance.php", self.balance_request)):
            app.router.add_get(path, handler)
            app.router.add_post(path, handler)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, ssl_context=ssl_context, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        bound = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"{'https' if ssl_context else 'http'}://{host}:{bound}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def __aenter__(self) -> "FakeSmsc":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake SMSC.ru for tests.")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret-file", type=Path, required=True, help="the API key, or the password of --login")
    parser.add_argument("--login")
    parser.add_argument("--messages", type=Path, required=True, help="JSON lines of the messages taken")
    parser.add_argument("--cert", type=Path)
    parser.add_argument("--key", type=Path)
    args = parser.parse_args()
    context = None
    if args.cert is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    secret = args.secret_file.read_text(encoding="utf-8").strip()
    if args.login:
        fake = FakeSmsc(apikey=None, login=args.login, password=secret, messages_file=args.messages)
    else:
        fake = FakeSmsc(apikey=secret, messages_file=args.messages)

    async def serve() -> None:
        await fake.start(args.host, args.port, context)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        print(f"fake SMSC.ru at {fake.url}", flush=True)
        await stop.wait()
        await fake.stop()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
