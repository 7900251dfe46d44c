"""The citizen gateway's aiohttp application: routes, resources and background tasks.

Resources are opened in ``cleanup_ctx`` and closed in reverse order (errors collected, teardown
never stops half-way): the gateway state (genesis, keys, secret, LevelDB, HTTP client, SMS
provider), then the background tasks (ballot pipeline watcher, janitor).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from chain.crypto import read_key_file
from chain.errors import VecheError
from chain.params import ChainParams
from chain.storage import LevelStore
from gateway import views_auth, views_public, views_token, views_vote
from gateway.auth import CardBook, CardGuard, CodeAuth, SessionStore, load_or_create_secret
from gateway.certifier import Certifier, read_certification_key
from gateway.chainview import ChainView
from gateway.config import GatewayConfig
from gateway.documents import DocumentShelf
from gateway.errors import ConfigError, GatewayError, NodeAnswerError
from gateway.guard import CsrfTokens, Limiter, RefusalLog
from gateway.nodes import NodePool
from gateway.ops import admin
from gateway.ops.admin import load_or_create_token
from gateway.ops.health import HealthMonitor
from gateway.ops.metrics import GatewayMetrics, MeteredSms
from gateway.pipeline import BallotPipeline
from gateway.receipts import ReceiptBook
from gateway.relay import Relay
from gateway.tokens import TokenDesk
from gateway.site import (
    GATEWAY, STATIC, Gateway, add_security_headers, errors, load_static, make_jinja, now_ms, shed_load,
)
from gateway.sms import make_provider
from gateway.vault import VoterVault
from genesis.forwarding import ProxyTrust, parse_networks
from genesis.model import load_genesis

log = logging.getLogger("veche.gateway")

JANITOR_INTERVAL_S = 5.0


class AccessLogger(AbstractAccessLogger):
    """Method, path without the query string, status, size and time: nothing a citizen typed."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %s %.1fms", request.method, request.path, response.status,
                         response.body_length, time * 1000)


def rate_limits(config: GatewayConfig) -> dict[str, object]:
    limits = config.limits
    return {name: getattr(limits, name) for name in (
        "sms_per_ip", "sms_per_subnet", "sms_per_phone", "code_per_ip", "code_per_subnet", "card_per_ip",
        "card_per_subnet", "ballot_per_ip", "ballot_per_subnet")}


async def check_gateway_key(params: ChainParams, public_key: bytes, pool: NodePool, key_file: Path) -> None:
    """The key must be a gateway key of the genesis file or, after keys.rotate (a new contractor), one the
    nodes say is in force (``GET /api/v1/validators``)."""
    if params.is_gateway(public_key):
        return
    try:
        roster = await pool.get_ok("/validators")
        keys = {str(g.get("public_key")): str(g.get("name")) for g in roster.get("gateways", []) if isinstance(g, dict)}
    except (NodeAnswerError, AttributeError, TypeError) as exc:
        raise ConfigError(f"the key in {key_file} is not a gateway of the genesis file, and no node could say "
                          f"whether a keys.rotate made it one: {exc}") from exc
    name = keys.get(public_key.hex())
    if name is None:
        raise ConfigError(f"the key in {key_file} is neither a gateway of the genesis file nor a gateway key in force")
    log.info("gateway key %s is gateway %r's since a keys.rotate", public_key.hex(), name)


def build_app(config: GatewayConfig, *, clock: Callable[[], int] = now_ms) -> web.Application:
    app = web.Application(middlewares=[shed_load, errors], client_max_size=config.limits.max_body_bytes,
                          client_max_fields=64)

    async def gateway_state(app: web.Application) -> AsyncIterator[None]:
        genesis = load_genesis(config.genesis_file)
        gateway_key = read_key_file(config.key_file)
        secret = load_or_create_secret(config.secret_file)
        store = LevelStore(config.data_dir)
        closers: list[tuple[str, Callable[[], object]]] = [("store", store.close)]
        try:
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64, limit_per_host=32,
                                                                           ssl=client_ssl_context(config)))
            closers.append(("http client", session.close))
            metrics = GatewayMetrics()
            pool = NodePool(config.nodes, session, timeout_s=config.node_timeout_seconds,
                            on_failover=lambda url: metrics.node_failovers.labels(url).inc())
            await check_gateway_key(genesis.params, gateway_key.public_key, pool, config.key_file)
            provider = MeteredSms(make_provider(config, session), metrics)
            closers.append(("sms provider", provider.close))
            health = HealthMonitor(config.nodes, genesis.params.chain_id, session, provider,
                                   interval_s=config.health_interval_seconds, timeout_s=config.node_timeout_seconds)
            refusals = RefusalLog(store)
            closers.append(("refusal counts", refusals.flush))
            receipts = ReceiptBook(pool, genesis.params)
            pipeline = BallotPipeline(store, pool, gateway_key, genesis.params.chain_id,
                                      batch_ms=config.registration_batch_ms, resubmit_s=config.resubmit_seconds,
                                      max_pending=config.limits.max_pending_ballots, on_block=receipts.add_block)
            tokens = None
            if config.certification_key_file.exists():
                certifier = Certifier(read_certification_key(config.certification_key_file))
                tokens = TokenDesk(store, pipeline, certifier, gateway_key, genesis.params.chain_id,
                                   batch_ms=config.token_batch_ms)
            relay = Relay(config.relay, pool, genesis.params.chain_id) if config.relay.enabled else None
            app[GATEWAY] = Gateway(
                config=config, params=genesis.params, genesis_document=genesis.document, gateway_key=gateway_key,
                secret=secret, clock=clock, jinja=make_jinja(), store=store, vault=VoterVault(store), pool=pool,
                chain=ChainView(pool, clock), pipeline=pipeline, sms=provider,
                codes=CodeAuth(secret, config.limits, clock), cards=CardBook(config.cards_dir),
                card_guard=CardGuard(config.limits.card_wrong_global),
                sessions=SessionStore(max_sessions=config.limits.max_sessions,
                                      ttl_s=config.limits.session_ttl_seconds, clock=clock),
                csrf=CsrfTokens(secret, clock), limiter=Limiter(rate_limits(config)),  # type: ignore[arg-type]
                refusals=refusals, receipts=receipts, documents=DocumentShelf(pool),
                static_files=load_static(STATIC),
                metrics=metrics, health=health,
                proxies=ProxyTrust(parse_networks(config.trusted_proxies, "trusted_proxies")),
                admin_token=load_or_create_token(config.admin_token_file),
                tokens=tokens, relay=relay,
            )
            bind_live_metrics(app[GATEWAY])
            log.info("gateway %s for chain %s: %d node(s), SMS provider %s; voter-held keys: %s; relay: %s",
                     config.name, genesis.params.chain_id, len(config.nodes), config.sms.provider,
                     "certification key " + tokens.modulus.hex()[:16] if tokens is not None else "off",
                     f"delay {config.relay.min_delay_seconds:g}..{config.relay.max_delay_seconds:g} s"
                     if relay is not None else "off")
            yield
        finally:
            problems = []
            for name, close in reversed(closers):
                try:
                    result = close()
                    if asyncio.iscoroutine(result):
                        await result
                except Exception as exc:  # collect, keep tearing down
                    problems.append(f"{name}: {exc}")
            for problem in problems:
                log.error("closing %s", problem)

    async def background(app: web.Application) -> AsyncIterator[None]:
        gw = app[GATEWAY]
        gw.pipeline.recover()
        tasks = [asyncio.create_task(gw.pipeline.run(), name="ballot-pipeline"),
                 asyncio.create_task(janitor(gw), name="janitor"),
                 asyncio.create_task(gw.health.run(), name="health")]
        if gw.relay is not None:
            tasks.append(asyncio.create_task(gw.relay.run(), name="ballot-relay"))
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(gateway_state)
    app.cleanup_ctx.append(background)
    app.on_response_prepare.append(add_security_headers)
    add_routes(app)
    return app


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", views_public.index)
    app.router.add_get("/login", views_auth.get_login)
    app.router.add_post("/login", views_auth.post_login)
    app.router.add_post("/login/code", views_auth.post_code)
    app.router.add_post("/login/card", views_auth.post_card)
    app.router.add_post("/logout", views_auth.post_logout)
    app.router.add_get("/c/{campaign}/d/{district}", views_vote.ballot_page)
    app.router.add_post("/c/{campaign}/d/{district}/vote", views_vote.cast_vote)
    app.router.add_post("/c/{campaign}/token", views_token.issue_token)
    app.router.add_post("/relay/v1/txs", views_token.relay_txs)
    app.router.add_get("/c/{campaign}/initiatives/{iid}", views_public.initiative_page)
    app.router.add_get("/receipt/{tx_hash:[^/]+}.json", views_public.receipt_json)
    app.router.add_get("/receipt/{tx_hash}", views_public.receipt_page)
    app.router.add_get("/check", views_public.check_page)
    app.router.add_post("/check", views_public.check_post)
    app.router.add_get("/results", views_public.results_index)
    app.router.add_get("/results/{campaign}", views_public.results)
    app.router.add_get("/results/{campaign}/d/{district}", views_public.district_results)
    app.router.add_get("/verify", views_public.verify_page)
    app.router.add_get("/dashboard", views_public.dashboard)
    app.router.add_get("/transparency", views_public.transparency)
    app.router.add_get("/healthz", views_public.healthz)
    app.router.add_get("/metrics", views_public.metrics)
    app.router.add_post(admin.UNLOCK_PATH, admin.unlock)
    app.router.add_get("/static/{name}", views_public.static_file)
    app.router.add_get("/documents/{sha256}", views_public.document_file)
    app.router.add_get("/favicon.ico", views_public.no_favicon)


def client_ssl_context(config: GatewayConfig) -> ssl.SSLContext:
    """Verifying TLS for nodes and the SMS provider: the system's CAs plus ``ca_file``'s."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if config.ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(config.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"gateway config: ca_file: cannot read the CA certificates in {config.ca_file}: "
                              f"{exc}") from exc
    return context


def bind_live_metrics(gw: Gateway) -> None:
    live = gw.metrics.live
    live.gauge("veche_gateway_unconfirmed_ballots", "Ballots and registrations acknowledged to citizens but not yet "
               "seen committed (the backlog; limits.max_pending_ballots bounds it).", lambda: gw.pipeline.in_flight)
    live.gauge("veche_gateway_sessions", "Sessions in memory (anonymous and logged in).", lambda: len(gw.sessions))
    live.gauge("veche_gateway_inflight_requests", "HTTP requests in progress.", lambda: gw.inflight)
    live.gauge("veche_gateway_healthy", "1 when /healthz answers 200.", lambda: 0 if gw.health.healthy_reasons() else 1)
    live.gauge("veche_gateway_sms_provider_up", "1 when the SMS provider's last health check passed.",
               lambda: 1 if gw.health.sms_probe.up else 0)
    live.labeled_gauge("veche_gateway_node_up", "1 when the node answered the last health check with this chain.",
                       "node", gw.health.nodes_up)
    live.labeled_counter("veche_gateway_refusals_total", "Refused requests by reason (kept across restarts; the "
                         "public /transparency page shows them per campaign and district).", "reason",
                         lambda: refusals_by_reason(gw))


def refusals_by_reason(gw: Gateway) -> dict[str, float]:
    totals: dict[str, float] = {}
    for (_campaign, _district, reason), count in gw.refusals.counts.items():
        totals[reason] = totals.get(reason, 0.0) + count
    return totals


async def janitor(gw: Gateway) -> None:
    """Flush refusal counts, prune sessions, and destroy voter keys of closed campaigns."""
    rounds = 0
    while True:
        await asyncio.sleep(JANITOR_INTERVAL_S)
        rounds += 1
        try:
            gw.refusals.flush()
            if rounds % 12 == 0:
                gw.sessions.prune()
            await destroy_closed_campaigns(gw)
        except asyncio.CancelledError:
            raise
        except (GatewayError, VecheError) as exc:
            log.warning("janitor: %s", exc)
        except Exception:
            log.exception("janitor failed; continuing")


async def destroy_closed_campaigns(gw: Gateway) -> list[str]:
    """For every closed campaign the vault still holds: settle its pending txs, then delete keys and links."""
    holding = gw.vault.campaigns_with_keys() | {t.campaign_id for t in gw.pipeline.trackers.values()}
    if not holding:
        return []
    closed = {c.campaign_id for c in await gw.chain.campaigns() if c.closed}
    destroyed = []
    for campaign_id in sorted(holding & closed):
        await gw.pipeline.settle_campaign(campaign_id)
        count = gw.vault.destroy_campaign(campaign_id)
        gw.chain.forget(campaign_id)
        destroyed.append(campaign_id)
        log.info("campaign %s closed: destroyed %d voter keys and their links", campaign_id, count)
    return destroyed
