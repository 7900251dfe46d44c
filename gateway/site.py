"""The gateway's shared web machinery: app state, request context, rendering, forms, middleware.

Handlers get a ``Ctx`` (language, session, client address) from ``context(request)`` and answer
with ``render(ctx, template, ...)``. A ``Refusal`` raised anywhere becomes a clear error page
with its status (and ``Retry-After`` for 429/503), is logged with its reason, and — for the
anti-fraud reasons — counted per campaign and district on the public transparency page.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from multidict import MultiDictProxy

from chain.crypto import SigningKey
from chain.params import ChainParams
from chain.storage import KeyValueStore
from gateway.auth import CardBook, CardGuard, CodeAuth, Session, SessionStore
from gateway.chainview import ChainView
from gateway.config import GatewayConfig
from gateway.documents import DocumentShelf
from gateway.errors import GatewayError, NodeAnswerError, NodeUnavailable, Refusal
from gateway.districts import GROUP_NAMES, capitalised
from gateway.guard import CsrfTokens, Limiter, RefusalLog, Where, client_address
from gateway.i18n import (
    CATEGORY_NAMES, LANGS, REASON_NAMES, STAGE_NAMES, STATUS_NAMES, TRACK_NAMES, document_type_name, error_text,
    format_clock, format_money, format_number, format_size, format_time, named, rejection_text, translate,
    translate_plural,
)
from gateway.nodes import NodePool
from gateway.ops.health import HealthMonitor
from gateway.ops.metrics import GatewayMetrics
from gateway.pipeline import BallotPipeline
from gateway.receipts import ReceiptBook
from gateway.sms import SmsProvider
from gateway.vault import VoterVault
from gateway import wording
from genesis.forwarding import ProxyTrust
from genesis.texts import TEMPLATES as SHARED_TEMPLATES

if TYPE_CHECKING:
    from gateway.relay import Relay
    from gateway.tokens import TokenDesk

log = logging.getLogger("veche.gateway")

SESSION_COOKIE = "veche_session"
LANG_COOKIE = "veche_lang"
HONEYPOT_FIELD = "website"
MAX_FIELD_CHARS = 2000
COUNTED_REASONS = frozenset(REASON_NAMES)
CAMPAIGN_PATH = re.compile(r"/c/([A-Za-z0-9._-]{1,64})/d/([A-Za-z0-9._-]{1,64})\Z")  # \Z: "$" matches before "\n"
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
PAGE_CACHE_SIZE = 2048


@dataclass(eq=False)
class Gateway:
    """Everything a handler needs; one per app, filled in by the app's cleanup contexts."""

    config: GatewayConfig
    params: ChainParams
    genesis_document: dict[str, Any]
    gateway_key: SigningKey
    secret: bytes
    clock: Callable[[], int]
    jinja: jinja2.Environment
    store: KeyValueStore
    vault: VoterVault
    pool: NodePool
    chain: ChainView
    pipeline: BallotPipeline
    sms: SmsProvider
    codes: CodeAuth
    cards: CardBook
    card_guard: CardGuard
    sessions: SessionStore
    csrf: CsrfTokens
    limiter: Limiter
    refusals: RefusalLog
    receipts: ReceiptBook
    documents: DocumentShelf
    static_files: dict[str, bytes]
    metrics: GatewayMetrics
    health: HealthMonitor
    proxies: ProxyTrust
    admin_token: str
    tokens: "TokenDesk | None" = None          # blind tokens for voter-held keys (certification key loaded)
    relay: "Relay | None" = None               # the cookie-less ballot relay (config relay.enabled)
    inflight: int = 0
    page_cache: OrderedDict[tuple[Any, ...], str] = field(default_factory=OrderedDict)
    voter_locks: dict[bytes, asyncio.Lock] = field(default_factory=dict)

    @property
    def chain_id(self) -> str:
        return self.params.chain_id

    @property
    def gateway_public_hex(self) -> str:
        return self.gateway_key.public_key.hex()


GATEWAY = web.AppKey("gateway", Gateway)


def make_jinja() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(TEMPLATES), str(SHARED_TEMPLATES)]), auto_reload=False,
                             autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["capfirst"] = capitalised
    return env


@dataclass(slots=True)
class Ctx:
    gw: Gateway
    request: web.Request
    lang: str
    lang_from_query: bool
    session: Session | None
    client: str
    set_session_cookie: bool = False
    csrf_token: str = ""
    cookie_lang: str | None = None

    def t(self, message: str, **params: object) -> str:
        """``message`` (an English message id) in the request's language."""
        return translate(self.lang, message, **params)

    def nt(self, singular: str, plural: str, count: int, **params: object) -> str:
        return translate_plural(self.lang, singular, plural, count, **params)

    def u(self, path: str) -> str:
        """A root-relative link that keeps a non-default language choice."""
        if self.lang == self.gw.config.default_lang:
            return path
        return path + ("&" if "?" in path else "?") + "lang=" + self.lang

    def ensure_session(self) -> Session:
        if self.session is None:
            self.session = self.gw.sessions.new()
            self.set_session_cookie = True
        if not self.csrf_token:
            self.csrf_token = self.gw.csrf.issue(self.session.sid)
        return self.session

    def where(self) -> Where:
        info = self.request.match_info
        if "campaign" in info:
            return Where(info["campaign"], info.get("district", "-"))
        if self.session is not None and self.session.next_path:
            match = CAMPAIGN_PATH.match(self.session.next_path)
            if match:
                return Where(match.group(1), match.group(2))
        if self.session is not None and self.session.identity is not None and self.session.identity.card_campaign:
            return Where(self.session.identity.card_campaign, "-")
        return Where()


CTX = web.RequestKey("ctx", Ctx)


def read_cookies(request: web.Request) -> dict[str, str]:
    """Our two cookies from the Cookie header (a plain split: much cheaper than http.cookies)."""
    found: dict[str, str] = {}
    for header in request.headers.getall("Cookie", ()):
        for part in header.split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name in (SESSION_COOKIE, LANG_COOKIE) and name not in found:
                found[name] = value.strip().strip('"')
    return found


def context(request: web.Request) -> Ctx:
    gw = request.app[GATEWAY]
    cookies = read_cookies(request)
    query_lang = request.query.get("lang") if request.query_string else None
    if query_lang in LANGS:
        lang, from_query = str(query_lang), True
    else:
        cookie_lang = cookies.get(LANG_COOKIE)
        lang, from_query = (cookie_lang if cookie_lang in LANGS else gw.config.default_lang), False
    session = gw.sessions.get(cookies.get(SESSION_COOKIE))
    ctx = Ctx(gw, request, lang, from_query, session, client_address(request, gw.config.trusted_proxy_header, gw.proxies))
    ctx.cookie_lang = cookies.get(LANG_COOKIE)
    request[CTX] = ctx
    return ctx


CSRF_MARK = "@@csrf-token@@"


def _page_key(ctx: Ctx, template: str, cache_key: tuple[Any, ...]) -> tuple[Any, ...]:
    logged_in = ctx.session is not None and ctx.session.identity is not None
    return (template, ctx.lang, ctx.request.path_qs, logged_in, cache_key)


def cached_page(ctx: Ctx, template: str, cache_key: tuple[Any, ...] | None) -> web.Response | None:
    """The page ``render(..., cache_key=cache_key)`` keeps, when it has it (so a handler can skip
    gathering the page's values)."""
    if cache_key is None or _page_key(ctx, template, cache_key) not in ctx.gw.page_cache:
        return None
    return render(ctx, template, cache_key=cache_key)


def render(ctx: Ctx, template: str, *, status: int = 200, headers: dict[str, str] | None = None,
           cache_key: tuple[Any, ...] | None = None, **values: Any) -> web.Response:
    """Render a page. With ``cache_key`` the page is rendered once per (template, language, URL,
    logged in or not, key) with a placeholder for the CSRF token, which is filled in per request."""
    gw = ctx.gw
    if cache_key is not None:
        key = _page_key(ctx, template, cache_key)
        cached = gw.page_cache.get(key)
        if cached is None:
            cached = _render(ctx, template, CSRF_MARK, values)
            gw.page_cache[key] = cached
            if len(gw.page_cache) > PAGE_CACHE_SIZE:
                gw.page_cache.popitem(last=False)
        html = cached.replace(CSRF_MARK, ctx.csrf_token)
    else:
        html = _render(ctx, template, ctx.csrf_token, values)
    response = web.Response(text=html, content_type="text/html", status=status, headers=headers)
    finish(ctx, response)
    return response


def _render(ctx: Ctx, template: str, csrf_token: str, values: dict[str, Any]) -> str:
    gw = ctx.gw
    offset = gw.config.display_utc_offset_minutes
    other_lang = "en" if ctx.lang == "ru" else "ru"
    return gw.jinja.get_template(template).render(
        _=ctx.t, ngettext=ctx.nt, u=ctx.u, lang=ctx.lang, other_lang=other_lang, lang_link=language_link(ctx.request, other_lang),
        path=ctx.request.path, csrf_token=csrf_token, session=ctx.session,
        money=lambda kopecks: format_money(kopecks, ctx.lang), num=lambda value: format_number(value, ctx.lang),
        when=lambda ms: format_time(ms, offset, ctx.lang), clock=lambda ms: format_clock(ms, offset),
        category=lambda name: named(CATEGORY_NAMES, ctx.lang, name),
        track_name=lambda name: named(TRACK_NAMES, ctx.lang, name),
        status_name=lambda name: named(STATUS_NAMES, ctx.lang, name),
        stage_name=lambda name: named(STAGE_NAMES, ctx.lang, name),
        group_name=lambda key: GROUP_NAMES[key], default_lang=gw.config.default_lang,
        ballot_summary=lambda campaign: wording.ballot_summary(ctx.lang, campaign),
        rejection=lambda code, message: rejection_text(ctx.lang, code, message),
        doc_type=document_type_name, doc_size=lambda size: format_size(size, ctx.lang),
        honeypot=HONEYPOT_FIELD, **values)


def language_link(request: web.Request, lang: str) -> str:
    """The same page in another language (for a POST answer: the page the form was on)."""
    if request.method == "GET":
        base = request.path
        kept = [(k, v) for k, v in request.query.items() if k != "lang"]
    else:
        kept = []
        if request.path.startswith("/login"):
            base = "/login"
        elif request.path.endswith("/vote"):
            base = request.path[: -len("/vote")]
        else:
            base = "/"
    query = urlencode(kept + [("lang", lang)])
    return f"{base}?{query}"


def finish(ctx: Ctx, response: web.StreamResponse) -> None:
    if ctx.set_session_cookie and ctx.session is not None:
        response.set_cookie(SESSION_COOKIE, ctx.session.sid, httponly=True, samesite="Lax",
                            secure=ctx.gw.config.tls, path="/")
    if ctx.lang_from_query and ctx.cookie_lang != ctx.lang:
        response.set_cookie(LANG_COOKIE, ctx.lang, httponly=True, samesite="Lax", secure=ctx.gw.config.tls,
                            path="/", max_age=365 * 86400)


def redirect(ctx: Ctx, location: str) -> web.Response:
    response = web.Response(status=303, headers={"Location": ctx.u(location)})
    finish(ctx, response)
    return response


# --- forms -----------------------------------------------------------------------------------------


async def read_form(ctx: Ctx, allowed: frozenset[str] | Callable[[str], bool]) -> MultiDictProxy[str]:
    """The POSTed form, size- and time-limited, with only ``allowed`` field names (a set, or a
    predicate for forms whose field names depend on the page, like a cumulative ballot's)."""
    request = ctx.request
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise Refusal("err_wrong_type", status=415, reason="wrong_content_type")
    try:
        async with asyncio.timeout(ctx.gw.config.limits.body_read_seconds):
            form = await request.post()
    except TimeoutError:
        raise Refusal("err_slow_client", status=408, reason="slow_client") from None
    except web.HTTPRequestEntityTooLarge:
        raise Refusal("err_too_large", status=413, reason="too_large") from None
    except (ValueError, UnicodeDecodeError):
        raise Refusal("err_bad_form", status=400, reason="bad_form", params={"detail": "encoding"}) from None
    is_allowed = allowed.__contains__ if isinstance(allowed, frozenset) else allowed
    for name, value in form.items():
        if not is_allowed(name):
            raise Refusal("err_bad_form", status=400, reason="bad_form",
                          params={"detail": f"unexpected field {name[:40]!r}"})
        if not isinstance(value, str) or len(value) > MAX_FIELD_CHARS or "\x00" in value:
            raise Refusal("err_bad_form", status=400, reason="bad_form", params={"detail": f"field {name[:40]!r}"})
    return form  # type: ignore[return-value]


def check_form(ctx: Ctx, form: MultiDictProxy[str], *, single_use: bool = True) -> Session:
    """Honeypot, CSRF token and minimum time on the form; return the session. The token is
    single-use (``single_use``) on the login forms, where the form time is the bot signal; the
    ballot form passes False: a repeated ballot POST is idempotent (it lands on the same receipt),
    so a double-click keeps working."""
    session = ctx.session
    if session is None:
        raise Refusal("err_no_session", status=403, reason="no_session")
    if form.get(HONEYPOT_FIELD, ""):
        raise Refusal("err_honeypot", status=400, reason="honeypot")
    token = form.get("csrf_token", "")
    if len(form.getall("csrf_token", [])) > 1:
        raise Refusal("err_csrf", status=403, reason="csrf")
    ctx.gw.csrf.check(session.sid, token, ctx.gw.config.form_min_seconds, single_use=single_use)
    return session


def single(form: MultiDictProxy[str], name: str) -> str:
    values = form.getall(name, [])
    if len(values) > 1:
        raise Refusal("err_bad_form", status=400, reason="bad_form", params={"detail": f"{name} sent twice"})
    return values[0] if values else ""


# --- middleware ------------------------------------------------------------------------------------

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
SHED_PAGE = ("<!doctype html><html lang=\"ru\"><meta charset=\"utf-8\"><title>503</title>"
             "<p>Сайт перегружен, попробуйте через несколько секунд. / The site is overloaded, "
             "please try again in a few seconds.</p></html>")
EXEMPT_FROM_SHEDDING = ("/healthz", "/metrics", "/static/", "/admin/")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def shed_load(request: web.Request, handler: Handler) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    if gw.inflight >= gw.config.limits.max_inflight_requests and not request.path.startswith(EXEMPT_FROM_SHEDDING):
        gw.refusals.refuse(Refusal("err_overloaded", status=503, reason="overload_inflight"), Where(),
                           client_address(request, gw.config.trusted_proxy_header, gw.proxies))
        return web.Response(status=503, text=SHED_PAGE, content_type="text/html", headers={"Retry-After": "2"})
    gw.inflight += 1
    try:
        return await handler(request)
    finally:
        gw.inflight -= 1


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refusal as refusal:
        return refusal_page(request, refusal)
    except web.HTTPRequestEntityTooLarge:
        return refusal_page(request, Refusal("err_too_large", status=413, reason="too_large"))
    except web.HTTPNotFound:
        return refusal_page(request, Refusal("err_not_found", status=404, reason="not_found"))
    except web.HTTPMethodNotAllowed:
        return refusal_page(request, Refusal("err_method", status=405, reason="bad_method"))
    except web.HTTPException:
        raise
    except NodeUnavailable as exc:
        log.warning("no node available for %s %s: %s", request.method, request.path, exc)
        return refusal_page(request, Refusal("err_nodes_down", status=503, reason="nodes_down", retry_after=10))
    except (NodeAnswerError, GatewayError) as exc:
        log.error("%s %s failed: %s", request.method, request.path, exc)
        return refusal_page(request, Refusal("err_internal", status=502, reason="internal"))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return refusal_page(request, Refusal("err_internal", status=500, reason="internal"))


def refusal_page(request: web.Request, refusal: Refusal) -> web.Response:
    ctx = request.get(CTX) or context(request)
    gw = ctx.gw
    if refusal.reason in COUNTED_REASONS:
        gw.refusals.refuse(refusal, ctx.where(), ctx.client)
    elif refusal.status not in (404, 405):
        log.info("refused: reason=%s status=%s path=%s", refusal.reason, refusal.status, request.path)
    headers = {}
    if refusal.retry_after is not None:
        headers["Retry-After"] = str(refusal.retry_after)
    try:
        message = error_text(ctx.lang, refusal.message, **refusal.params)
    except (KeyError, IndexError, ValueError, TypeError):
        message = error_text(ctx.lang, "err_internal")
    back = "/"
    if request.path.startswith("/login"):
        back = "/login"
    elif request.path.endswith("/vote"):
        back = request.path[: -len("/vote")]
    elif request.path.startswith(("/check", "/receipt/")):
        back = "/check"
    return render(ctx, "error.html", status=refusal.status, headers=headers, message=message,
                  retry_after=refusal.retry_after, back=back)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"


def compact_script(source: bytes) -> bytes:
    """A script as served, without comments and spaces the parser does not need.

    Our scripts keep every comment on a line of its own, use no regular-expression literals and end
    every statement with a semicolon; so dropping comment lines and every space or line break that
    does not separate two word characters (outside string literals) changes nothing but the size.
    """
    text = "\n".join(line for line in (raw.strip() for raw in source.decode("utf-8").splitlines())
                     if line and not line.startswith("//"))
    out: list[str] = []
    quote = ""
    pending_space = False
    for index, char in enumerate(text):
        if quote:
            out.append(char)
            if char == quote and text[index - 1] != "\\":
                quote = ""
            continue
        if char.isspace():
            pending_space = True
            continue
        if pending_space and out and _word(out[-1]) and _word(char):
            out.append(" ")
        pending_space = False
        if char in "\"'":
            quote = char
        out.append(char)
    return ("".join(out) + "\n").encode("utf-8")


def _word(char: str) -> bool:
    return char.isalnum() or char in "_$"


def load_static(directory: Path) -> dict[str, bytes]:
    return {path.name: compact_script(path.read_bytes()) if path.suffix == ".js" else path.read_bytes()
            for path in directory.iterdir() if path.is_file()}


def now_ms() -> int:
    return int(time.time() * 1000)
