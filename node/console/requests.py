"""Committee decisions signed k of n: signing requests in the console (node/cosign/request.py format).

One member's console prepares a decision as a signing request with its own signature and posts it
to the nodes' pending-request store (node/cosign/store.py), which passes it on between nodes; the
other members' consoles list and fetch it, **show it in full — decoded from the signed bytes, never
from the text the file carries —**, check every signature, and co-sign. The console whose signature
completes k submits the transaction. The same requests travel as files too: each can be downloaded
(``veche sign``/``veche submit`` take it) and a file can be opened in any member's console.

A request that was altered between members is refused with a clear message: the file's
``signing_hash`` no longer matches its body, or a signature no longer verifies over it. An expired
request (its ``expires_at_ms`` passed, or a node answers 410) is refused too, and nothing is signed.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from chain.tx import Tx, Wire, body_to_json
from node.client import ClientError, NodeApiError
from node.console.forms import ConsoleError, Form, read_form
from node.console.i18n import N_
from node.console.web import Ctx, check_csrf, context, redirect, render
from node.cosign.request import FORMAT, MAX_REQUEST_BYTES, RequestExpired, SigningRequest, SigningRequestError

HEX = frozenset("0123456789abcdef")
HOUR_MS = 3600 * 1000


def now_ms() -> int:
    return int(time.time() * 1000)


def require_committee(ctx: Ctx) -> None:
    if not ctx.chain.identity.is_committee:
        raise ConsoleError(N_("Only a committee member's key does this."), status=403)


async def committee_form(request: web.Request) -> tuple[Ctx, Form]:
    """A form a committee member POSTed (no files), once the key's role and the CSRF token are checked."""
    ctx = context(request)
    require_committee(ctx)
    form = await read_form(request, max_file_bytes=0)
    check_csrf(ctx, form.get("csrf_token"))
    return ctx, form


def parse_hash(text: str) -> str:
    if len(text) != 64 or not set(text) <= HEX:
        raise ConsoleError(N_("A signing request is named by 64 lowercase hexadecimal characters."), status=404)
    return text


def altered(error: SigningRequestError) -> ConsoleError:
    return ConsoleError(N_("This signing request was altered or damaged on its way, so it was refused and nothing "
                           "was signed: %(detail)s"), status=409, detail=error.message)


def expired_error() -> ConsoleError:
    return ConsoleError(N_("This signing request has expired; nothing was signed or sent. Prepare the decision "
                           "again."), status=410)


# --- talking to the nodes ------------------------------------------------------------------------


def check_request(ctx: Ctx, request: SigningRequest, expected_hash: str | None = None) -> None:
    """Our chain, every signature valid, not expired (``ConsoleError`` otherwise)."""
    chain = ctx.chain
    if expected_hash is not None and request.signing_hash.hex() != expected_hash:
        raise altered(SigningRequestError("a node served a request whose signing hash is not the one asked for"))
    if request.chain_id != chain.chain_id or request.genesis_hash != chain.genesis.hash:
        raise ConsoleError(N_("This signing request is for chain %(chain)s, not this one."), status=409,
                           chain=request.chain_id)
    try:
        request.check_signatures()
    except SigningRequestError as exc:
        raise altered(exc) from exc
    try:
        request.check_open(now_ms())
    except RequestExpired:
        raise expired_error() from None


async def fetch_request(ctx: Ctx, signing_hash: str) -> SigningRequest:
    """The request from this console's own copy and every node, signatures merged, every part checked."""
    chain = ctx.chain
    found: list[SigningRequest] = []
    local = ctx.console.requests.get(signing_hash)
    if isinstance(local, SigningRequest):
        found.append(local)
    gone = False
    for url in chain.client.urls:
        try:
            answer = await chain.client.request("GET", f"/api/v1/signing-requests/{signing_hash}", only=url)
        except NodeApiError as exc:
            gone = gone or exc.status == 410
            continue
        except ClientError:
            continue
        try:
            request = SigningRequest.from_json(answer.get("request") if isinstance(answer, dict) else None)
        except SigningRequestError as exc:
            raise altered(exc) from exc
        found.append(request)
    if not found:
        if gone:
            raise expired_error()
        raise ConsoleError(N_("Neither this console nor the nodes know this signing request."), status=404)
    merged = found[0]
    for other in found:
        check_request(ctx, other, signing_hash)
    for other in found[1:]:
        for key, signature in other.signatures.items():
            merged.signatures.setdefault(key, signature)
    if gone and local is None:
        raise expired_error()
    ctx.console.requests[signing_hash] = merged
    return merged


async def share(ctx: Ctx, request: SigningRequest) -> list[str]:
    """Post the request to every node; the problems (an empty list when at least one node took it)."""
    chain = ctx.chain
    body = json.dumps(request.to_json(), ensure_ascii=False).encode()
    problems: list[str] = []

    async def one(url: str) -> None:
        try:
            await chain.client.request("POST", "/api/v1/signing-requests", body=body, only=url,
                                       headers={"Content-Type": "application/json"})
        except ClientError as exc:
            problems.append(f"{url}: {exc}")
    await asyncio.gather(*(one(url) for url in chain.client.urls))
    return problems if len(problems) == len(chain.client.urls) else []


async def list_requests(ctx: Ctx) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for url in ctx.chain.client.urls:
        try:
            answer = await ctx.chain.client.request("GET", "/api/v1/signing-requests", only=url)
        except ClientError:
            continue
        for item in answer.get("requests", []) if isinstance(answer, dict) else []:
            if not isinstance(item, dict) or not isinstance(item.get("signing_hash"), str):
                continue
            known = seen.setdefault(item["signing_hash"], dict(item))
            known["signers"] = sorted(set(known.get("signers", [])) | set(item.get("signers", [])))
    for signing_hash, request in ctx.console.requests.items():
        if signing_hash not in seen and isinstance(request, SigningRequest) and not request.expired(now_ms()):
            seen[signing_hash] = {"signing_hash": signing_hash, "kind": request.kind, "summary": request.summary(),
                                  "signers": [k.hex() for k in request.signatures],
                                  "threshold": request.committee_threshold, "prepared_at_ms": request.prepared_at_ms,
                                  "expires_at_ms": request.expires_at_ms, "committed_height": None}
    return sorted(seen.values(), key=lambda item: (item.get("prepared_at_ms", 0), item["signing_hash"]))


# --- preparing, signing, submitting --------------------------------------------------------------


async def prepare_and_share(ctx: Ctx, kind: str, body: Wire, files: list[bytes] | None = None) -> web.Response:
    """One member prepares a committee decision: sign it here, then submit (k = 1) or share it for co-signing."""
    require_committee(ctx)
    chain = ctx.chain
    view = await chain.refresh(max_age_s=0)
    body.validate()
    now = now_ms()
    request = SigningRequest(view.chain_id, view.genesis.hash, kind, body, view.threshold, list(view.committee),
                             view.height, now, expires_at_ms=now + ctx.console.request_ttl_hours * HOUR_MS)
    if files:
        await chain.upload(files)
    request.add_signature(chain.key)
    signing_hash = request.signing_hash.hex()
    ctx.console.requests[signing_hash] = request
    if view.threshold == 1:
        return await submit_request(ctx, request)
    problems = await share(ctx, request)
    if problems:
        return render(ctx, "request.html", **request_view(ctx, request), status=202,
                      notice=ctx.t(N_("Prepared and signed here, but no node took it (%(detail)s). Download the file "
                                      "and pass it to the other members."), detail="; ".join(problems)[:500]))
    return redirect(ctx, f"/requests/{signing_hash}?prepared=1")


def in_force_signers(ctx: Ctx, request: SigningRequest) -> list[bytes]:
    members = {key for _, key in ctx.chain.view.committee}
    return [key for key in sorted(request.signatures) if key in members]


async def submit_request(ctx: Ctx, request: SigningRequest) -> web.Response:
    from node.console.district import outcome_page

    view = await ctx.chain.refresh(max_age_s=0)
    signers = in_force_signers(ctx, request)
    if len(signers) < view.threshold:
        missing = [name for name, key in view.committee if key not in request.signatures]
        raise ConsoleError(N_("%(have)s of the %(need)s signatures are there; missing: %(missing)s."), status=409,
                           have=len(signers), need=view.threshold, missing=", ".join(missing))
    tx: Tx = request.transaction(signers[: view.threshold])
    outcome = await ctx.chain.submit(tx)
    return outcome_page(ctx, outcome, N_("The committee's decision is recorded."), f"/requests/{request.signing_hash.hex()}")


def request_view(ctx: Ctx, request: SigningRequest) -> dict[str, Any]:
    view = ctx.chain.view
    signatures = [{"name": request.member_name(key), "key": key.hex(), "in_force": view.committee_name(key) is not None}
                  for key in sorted(request.signatures)]
    signed_here = ctx.chain.key.public_key in request.signatures
    return {"request": request, "signing_hash": request.signing_hash.hex(), "summary": request.summary(),
            "body_json": json.dumps(body_to_json(request.body), indent=2, ensure_ascii=False),
            "signatures": signatures, "signed_here": signed_here, "have": len(in_force_signers(ctx, request)),
            "need": view.threshold, "members": [name for name, _ in view.committee], "notice": None}


# --- pages ---------------------------------------------------------------------------------------


async def requests_page(request: web.Request) -> web.Response:
    ctx = context(request)
    require_committee(ctx)
    await ctx.chain.refresh()
    items = await list_requests(ctx)
    me = ctx.chain.key.public_key.hex()
    return render(ctx, "requests.html", items=items, me=me)


async def request_page(request: web.Request) -> web.Response:
    ctx = context(request)
    require_committee(ctx)
    await ctx.chain.refresh()
    signing_request = await fetch_request(ctx, parse_hash(request.match_info["signing_hash"]))
    notice = ctx.t(N_("Prepared and signed here, and shared through the nodes: the other members see it in their "
                      "consoles.")) if request.query.get("prepared") else None
    return render(ctx, "request.html", **{**request_view(ctx, signing_request), "notice": notice})


async def sign_request(request: web.Request) -> web.Response:
    ctx, form = await committee_form(request)
    signing_request = await fetch_request(ctx, parse_hash(request.match_info["signing_hash"]))
    if form.get("signing_hash") != signing_request.signing_hash.hex():
        raise ConsoleError(N_("The request changed while you read it; open it again before signing."), status=409)
    view = await ctx.chain.refresh(max_age_s=0)
    if ctx.chain.key.public_key not in signing_request.signatures:
        signing_request.add_signature(ctx.chain.key)
    if len(in_force_signers(ctx, signing_request)) >= view.threshold:
        await share(ctx, signing_request)
        return await submit_request(ctx, signing_request)
    problems = await share(ctx, signing_request)
    if problems:
        return render(ctx, "request.html", **{**request_view(ctx, signing_request), "notice": ctx.t(
            N_("Signed here, but no node took the signature (%(detail)s). Download the file and pass it on."),
            detail="; ".join(problems)[:500])}, status=202)
    return redirect(ctx, f"/requests/{signing_request.signing_hash.hex()}")


async def submit_page(request: web.Request) -> web.Response:
    ctx, form = await committee_form(request)
    return await submit_request(ctx, await fetch_request(ctx, parse_hash(request.match_info["signing_hash"])))


async def download(request: web.Request) -> web.Response:
    ctx = context(request)
    require_committee(ctx)
    signing_request = await fetch_request(ctx, parse_hash(request.match_info["signing_hash"]))
    text = json.dumps(signing_request.to_json(), indent=2, ensure_ascii=False) + "\n"
    name = f"{signing_request.kind}-{signing_request.signing_hash.hex()[:12]}.json"
    return web.Response(text=text, content_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def import_file(request: web.Request) -> web.Response:
    """Open a signing request file (``veche … --prepare FILE`` or another member's download)."""
    ctx = context(request)
    require_committee(ctx)
    form = await read_form(request, max_file_bytes=MAX_REQUEST_BYTES, max_files=1)
    check_csrf(ctx, form.get("csrf_token"))
    uploads = form.uploads("file")
    if not uploads:
        raise ConsoleError(N_("Choose a signing request file."))
    if uploads[0].over_limit:
        raise ConsoleError(N_("A signing request file is at most 1 MB."), status=413)
    try:
        document = json.loads(uploads[0].data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ConsoleError(N_("This file is not a signing request (%(format)s)."), format=FORMAT) from None
    try:
        signing_request = SigningRequest.from_json(document)
    except SigningRequestError as exc:
        raise altered(exc) from exc
    check_request(ctx, signing_request)
    signing_hash = signing_request.signing_hash.hex()
    known = ctx.console.requests.get(signing_hash)
    if isinstance(known, SigningRequest):
        for key, signature in signing_request.signatures.items():
            known.signatures.setdefault(key, signature)
    else:
        ctx.console.requests[signing_hash] = signing_request
    await share(ctx, signing_request)
    return redirect(ctx, f"/requests/{signing_hash}")
