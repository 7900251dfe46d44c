"""The console's web machinery: its state, login, CSRF, the request context, rendering and error pages.

The console serves one person on their own machine. It listens on 127.0.0.1 unless told
otherwise; a **one-time login token** printed on start opens a session (an HttpOnly, SameSite=Strict
cookie); every other page needs that session. Every form carries a CSRF token bound to the
session, and a POST whose ``Origin`` is another site is refused. Requests naming another host
(``Host`` header) are refused too, so a web page elsewhere cannot reach the console by DNS
rebinding. Pages are Russian by default, English with ``?lang=en`` (kept in a cookie).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from genesis.texts import TEMPLATES as SHARED_TEMPLATES
from node.client import ClientError, NodeApiError, NodeUnreachable
from node.console.chain import ConsoleChain
from node.console.forms import ConsoleError
from node.console.i18n import (
    BALLOT_NAMES, DOCUMENT_ROLE_NAMES, KIND_NAMES, LANGS, N_, ROLE_NAMES, RULE_NAMES, STAGE_NAMES, STATUS_NAMES,
    format_money, format_rubles_input, format_size, format_time, named, translate, translate_plural,
)

log = logging.getLogger("veche.console")

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "veche_console"
LANG_COOKIE = "veche_console_lang"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
OPEN_PATHS = ("/login", "/static/")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(eq=False)
class Console:
    """Everything a handler needs; one per app."""

    chain: ConsoleChain
    jinja: jinja2.Environment
    login_token: str
    allowed_hosts: frozenset[str]
    display_offset_minutes: int = 180
    default_lang: str = "ru"
    request_ttl_hours: int = 72
    token_used: bool = False
    session_id: str | None = None
    csrf_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    static_files: dict[str, bytes] = field(default_factory=dict)
    drafts: dict[str, Any] = field(default_factory=dict)
    requests: dict[str, Any] = field(default_factory=dict)   # signing requests this console holds (by hash)

    def csrf_token(self) -> str:
        if self.session_id is None:
            return ""
        return hmac.new(self.csrf_secret, self.session_id.encode(), "sha256").hexdigest()


CONSOLE = web.AppKey("console", Console)


def make_jinja() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader([str(TEMPLATES), str(SHARED_TEMPLATES)]), auto_reload=False,
                              autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def load_static() -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in STATIC.iterdir() if path.is_file()}


@dataclass(slots=True)
class Ctx:
    console: Console
    request: web.Request
    lang: str
    lang_from_query: bool

    @property
    def chain(self) -> ConsoleChain:
        return self.console.chain

    def t(self, message: str, **params: object) -> str:
        return translate(self.lang, message, **params)

    def nt(self, singular: str, plural: str, count: int, **params: object) -> str:
        return translate_plural(self.lang, singular, plural, count, **params)

    def u(self, path: str) -> str:
        if self.lang == self.console.default_lang:
            return path
        return path + ("&" if "?" in path else "?") + "lang=" + self.lang

    def money(self, kopecks: int) -> str:
        return format_money(kopecks, self.lang)

    def when(self, ms: int) -> str:
        return format_time(ms, self.console.display_offset_minutes, self.lang)


CTX = web.RequestKey("ctx", Ctx)


def context(request: web.Request) -> Ctx:
    if CTX in request:
        return request[CTX]
    console = request.app[CONSOLE]
    query_lang = request.query.get("lang") if request.query_string else None
    if query_lang in LANGS:
        lang, from_query = str(query_lang), True
    else:
        cookie = request.cookies.get(LANG_COOKIE)
        lang, from_query = (cookie if cookie in LANGS else console.default_lang), False
    ctx = Ctx(console, request, lang, from_query)
    request[CTX] = ctx
    return ctx


def render(ctx: Ctx, template: str, *, status: int = 200, **values: Any) -> web.Response:
    console = ctx.console
    identity = console.chain.identity
    other = "en" if ctx.lang == "ru" else "ru"
    html = console.jinja.get_template(template).render(
        _=ctx.t, ngettext=ctx.nt, u=ctx.u, lang=ctx.lang, other_lang=other, lang_link=language_link(ctx.request, other),
        csrf_token=console.csrf_token(), identity=identity, chain_id=console.chain.chain_id,
        threshold=console.chain.threshold, money=ctx.money, when=ctx.when, rubles=format_rubles_input,
        size=lambda n: format_size(n, ctx.lang), status_name=lambda s: named(STATUS_NAMES, ctx.lang, s),
        stage_name=lambda s: named(STAGE_NAMES, ctx.lang, s), role_name=lambda s: named(ROLE_NAMES, ctx.lang, s),
        rule_name=lambda s: named(RULE_NAMES, ctx.lang, s), ballot_name=lambda s: named(BALLOT_NAMES, ctx.lang, s),
        kind_name=lambda s: named(KIND_NAMES, ctx.lang, s),
        doc_role=lambda s: named(DOCUMENT_ROLE_NAMES, ctx.lang, s), path=ctx.request.path, **values)
    response = web.Response(text=html, content_type="text/html", status=status)
    if ctx.lang_from_query:
        response.set_cookie(LANG_COOKIE, ctx.lang, httponly=True, samesite="Strict", path="/", max_age=365 * 86400)
    return response


def language_link(request: web.Request, lang: str) -> str:
    kept = [(k, v) for k, v in request.query.items() if k != "lang"] if request.method == "GET" else []
    base = request.path if request.method == "GET" else "/"
    return f"{base}?{urlencode(kept + [('lang', lang)])}"


def redirect(ctx: Ctx, location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": ctx.u(location)})


def check_csrf(ctx: Ctx, token: str) -> None:
    expected = ctx.console.csrf_token()
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise ConsoleError(N_("This form expired or was not sent by this console. Reload the page and try again."),
                           status=403)


# --- login -------------------------------------------------------------------------------------------


async def login(request: web.Request) -> web.StreamResponse:
    """``GET /login?token=…``: the one-time token printed on start opens the session."""
    ctx = context(request)
    console = ctx.console
    token = request.query.get("token", "")
    if console.token_used or not token or not hmac.compare_digest(token.encode(), console.login_token.encode()):
        log.warning("refused a login with %s token", "a used" if console.token_used else "a wrong or missing")
        raise ConsoleError(N_("This login link is wrong or was already used. The link printed when the console "
                              "started works once; restart the console for a new one."), status=403)
    console.token_used = True
    console.session_id = secrets.token_urlsafe(32)
    response = redirect(ctx, "/")
    response.set_cookie(SESSION_COOKIE, console.session_id, httponly=True, samesite="Strict", path="/")
    log.info("logged in")
    return response


def logged_in(request: web.Request) -> bool:
    console = request.app[CONSOLE]
    cookie = request.cookies.get(SESSION_COOKIE, "")
    return console.session_id is not None and hmac.compare_digest(cookie.encode(), console.session_id.encode())


# --- middleware ---------------------------------------------------------------------------------------


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Host check, login and the cross-site check of every POST, before any handler runs."""
    console = request.app[CONSOLE]
    if request.host.lower() not in console.allowed_hosts:
        return web.Response(status=421, text="421: this console answers only to its own address\n")
    if not request.path.startswith(OPEN_PATHS) and not logged_in(request):
        raise ConsoleError(N_("Log in first: open the link the console printed when it started."), status=401)
    if request.method == "POST":
        origin = request.headers.get("Origin")
        if origin is not None and origin != "null" and origin.split("://", 1)[-1].lower() not in console.allowed_hosts:
            raise ConsoleError(N_("This form was sent from another site and was refused."), status=403)
    return await handler(request)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await guard(request, handler)
    except ConsoleError as error:
        return error_page(request, error)
    except web.HTTPNotFound:
        return error_page(request, ConsoleError(N_("Page not found."), status=404))
    except web.HTTPMethodNotAllowed:
        return error_page(request, ConsoleError(N_("This address does not take this request."), status=405))
    except web.HTTPException:
        raise
    except NodeUnreachable as exc:
        log.warning("no node answered for %s %s: %s", request.method, request.path, exc)
        return error_page(request, ConsoleError(N_("No node of the network answers right now: %(detail)s"),
                                                status=503, detail=exc.message))
    except NodeApiError as exc:
        if exc.status == 404:
            return error_page(request, ConsoleError(N_("Not found on the chain: %(detail)s"), status=404,
                                                    detail=exc.message))
        log.warning("%s %s: node refused: %s", request.method, request.path, exc)
        return error_page(request, ConsoleError(N_("The node refused: %(detail)s"), status=502, detail=str(exc)))
    except ClientError as exc:
        log.warning("%s %s: %s", request.method, request.path, exc)
        return error_page(request, ConsoleError(N_("The network could not be used: %(detail)s"), status=502,
                                                detail=exc.message))
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error_page(request, ConsoleError(N_("Internal error of the console. It has been logged."), status=500))


def error_page(request: web.Request, error: ConsoleError) -> web.Response:
    ctx = context(request)
    return render(ctx, "error.html", status=error.status, message=ctx.t(error.message, **error.params),
                  signed_in=logged_in(request))


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    data = request.app[CONSOLE].static_files.get(name)
    if data is None:
        raise web.HTTPNotFound()
    kind = "text/css" if name.endswith(".css") else "text/javascript"
    return web.Response(body=data, content_type=kind, charset="utf-8", headers={"Cache-Control": "max-age=3600"})

