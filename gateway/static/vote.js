// Veche ballot page: the citizen's own voter key (docs/GATEWAY.md "Voter-held keys", PROTOCOL §16).
// Progressive enhancement: without JavaScript or without Ed25519 in WebCrypto the form posts as before
// and the gateway signs with a key it keeps sealed. With both, this script
// 1. makes an Ed25519 key in the browser (kept in this tab's memory and sessionStorage only);
// 2. blinds the token message (RFC 9474 RSABSSA-SHA384-PSS-Deterministic) under the campaign's
//    certification key read from a node, asks the gateway to sign the blinded message (the only
//    request with the session cookie), unblinds it and checks the token (s^e mod n = the encoding);
// 3. signs the ballot, sends it to a node of the genesis file (or the cookie-less relay) without
//    credentials, waits for its block and offers the receipt file for download.
// Comment lines and spare spaces are stripped when the gateway serves this file (gateway/site.py).
// Short names: F the form, d its data-* (from the server), S WebCrypto, B BigInt, U a byte array.
(() => {
  "use strict";
  const F = document.getElementById("ballot"), d = F && F.dataset, S = crypto.subtle, B = BigInt,
    E = B(65537), O = B(0), I = B(1), K = "veche-key-" + (d && d.campaign), ED = {name: "Ed25519"},
    U = a => new Uint8Array(a), J = JSON, ST = sessionStorage;
  if (!d || !d.tokenUrl || !S || !["choose-1", "approval", "knapsack"].includes(d.ballotType)) return;
  let ok = 0;
  S.generateKey(ED, true, ["sign", "verify"]).then(() => ok = 1, () => 0);
  const cat = a => { let n = 0, r; a.forEach(x => n += x.length); r = U(n); n = 0; a.forEach(x => { r.set(x, n); n += x.length; }); return r; },
    hex = b => [...b].map(x => x.toString(16).padStart(2, "0")).join(""),
    unhex = s => U(s.length / 2).map((_, i) => parseInt(s.substr(2 * i, 2), 16)),
    num = b => B("0x" + hex(b)),
    bytes = (x, n) => unhex(x.toString(16).padStart(2 * n, "0")),
    pow = (b, e, m) => { let r = I; for (b %= m; e > O; e >>= I, b = b * b % m) if (e & I) r = r * b % m; return r; },
    inv = (a, m) => { let t = O, u = I, r = m, s = a, q, x; while (s) { q = r / s; x = t - q * u; t = u; u = x; x = r - q * s; r = s; s = x; } return t < O ? t + m : t; },
    sha = (n, b) => S.digest("SHA-" + n, b).then(U),
    pause = ms => new Promise(f => setTimeout(f, ms)),
    fail = e => { const x = Error(e.message); x.code = e.code; throw x; },
    te = s => new TextEncoder().encode(s),
    post = (url, body, extra) => fetch(url, Object.assign({method: "POST", body: body, credentials: "omit"}, extra)),
    say = (text, cls) => {
      let p = document.getElementById("vh-status");
      if (!p) { p = document.createElement("p"); p.id = "vh-status"; p.setAttribute("role", "status"); F.before(p); }
      p.className = "box " + (cls || "warn"); p.textContent = text;
    },
    keep = k => ST.setItem(K, J.stringify(k));
  // canonical msgpack (PROTOCOL §1) of the shapes a ballot needs: arrays, byte strings, short strings
  const enc = v => {
    let n = v.length;
    if (Array.isArray(v)) return cat([U(n < 16 ? [0x90 | n] : [0xdc, 0, n]), ...v.map(enc)]);
    if (v instanceof Uint8Array) return cat([U(n < 256 ? [0xc4, n] : [0xc5, n >> 8, n & 255]), v]);
    v = te(v); n = v.length;
    return cat([U(n < 32 ? [0xa0 | n] : [0xd9, n]), v]);
  };
  // EMSA-PSS-ENCODE (RFC 8017 §9.1.1): SHA-384, MGF1-SHA-384, 48-byte salt; emBits = modBits − 1
  const pss = async (m, bits) => {
    const L = Math.ceil((bits - 1) / 8), salt = crypto.getRandomValues(U(48)), H = await sha(384, cat([U(8), await sha(384, m), salt])),
      parts = [], db = U(L - 49);
    for (let i = 0; i * 48 < L - 49; i++) parts.push(sha(384, cat([H, U([0, 0, 0, i])])));
    const mask = cat(await Promise.all(parts));
    db[L - 98] = 1; db.set(salt, L - 97);
    db.forEach((x, i) => db[i] = x ^ mask[i]);
    db[0] &= 0xff >> (8 * L - bits + 1);
    return cat([db, H, U([0xbc])]);
  };
  // a node of the genesis file, never with cookies; on failure the next one
  const api = async (path, init, i = 0) => {
    const nodes = d.nodes.split(" ");
    try {
      const r = await fetch(nodes[i % nodes.length] + path, Object.assign({credentials: "omit", cache: "no-store"}, init));
      if (r.status > 499) throw Error(r.status);
      return await r.json();
    } catch (e) {
      if (i + 1 >= 2 * nodes.length) throw e;
      await pause(200);
      return api(path, init, i + 1);
    }
  };
  // step 2: a token for a fresh key, or the key this tab already certified
  const certify = async () => {
    let k = J.parse(ST.getItem(K) || "{}");
    if (k.token) return [await S.importKey("pkcs8", unhex(k.sk), ED, false, ["sign"]), k];
    const x = await S.generateKey(ED, true, ["sign", "verify"]), c = await api("/api/v1/campaigns/" + d.campaign),
      mod = unhex(c.campaign.certification_key), n = num(mod), len = mod.length;
    k = {pk: hex(U(await S.exportKey("raw", x.publicKey))), sk: hex(U(await S.exportKey("pkcs8", x.privateKey)))};
    keep(k);
    const m = num(await pss(cat([te("veche/v1/voter-token"), enc([d.chain, d.campaign, unhex(k.pk)])]), n.toString(2).length));
    let r;
    do r = num(crypto.getRandomValues(U(len))); while (r < I || r >= n);
    const body = new URLSearchParams({csrf_token: F.elements.csrf_token.value, blinded: hex(bytes(m * pow(r, E, n) % n, len))}),
      answer = await post(d.tokenUrl, body, {credentials: "same-origin"}), a = await answer.json();
    if (!answer.ok) fail(a.error);
    const s = num(unhex(a.blind_sig)) * inv(r, n) % n;
    if (pow(s, E, n) !== m) throw Error("not a valid token");
    k.token = hex(bytes(s, len)); keep(k);
    return [x.privateKey, k];
  };
  const send = async (body, tries) => {
    const init = {method: "POST", body: body, headers: {"Content-Type": "application/octet-stream"}},
      a = d.relay ? await (await post(d.relay, body, init)).json() : await api("/api/v1/txs", init),
      bad = a.error || (a.rejected || [])[0];
    // a node a block behind the gateway may not count the token yet
    if (bad && bad.code == "tokens_exhausted" && tries < 50) { await pause(300); return send(body, tries + 1); }
    if (bad && bad.code.indexOf("already_")) fail(bad);
  };
  const vote = async choices => {
    say(d.tWorking);
    const [key, k] = await certify(), body = [d.campaign, d.district, choices.sort(), [], [d.campaign, unhex(k.token)]],
      sig = await S.sign(ED, key, cat([te("veche/v1/vote.cast" + d.chain), enc(body)])),
      tx = enc(["vote.cast", d.chain, body, [[unhex(k.pk), U(sig)]]]), hash = hex(await sha(256, tx)),
      until = Date.now() + (d.relay ? 9e5 : 12e4);
    await send(enc([tx]), 0);
    say(d.tSent);
    let f;
    while ((f = await api("/api/v1/txs/" + hash)).status != "committed") {
      if (f.status == "rejected") fail(f);
      if (Date.now() > until) throw Error(d.tPending);
      await pause(300);
    }
    const p = f.proof, box = document.createElement("section"), a = document.createElement("a"),
      receipt = {version: 1, chain_id: d.chain, genesis_hash: d.genesisHash, tx_hash: hash, tx: hex(tx), height: f.height,
        index: f.index, tree_size: p.tree_size, proof: p.path, header: p.header, certificate: p.certificate};
    box.id = "vh-done";
    box.innerHTML = '<h2></h2><p class="box ok" role="status"></p><p class="hash" id="tx-hash"></p>';
    [d.tCounted, d.tHeld + " " + f.height, hash].forEach((t, i) => box.children[i].textContent = t);
    a.href = "data:application/json;charset=utf-8," + encodeURIComponent(J.stringify(receipt));
    a.download = "veche-receipt-" + hash.slice(0, 16) + ".json"; a.id = "receipt-download"; a.className = "button";
    a.textContent = d.tReceipt; box.append(a);
    document.getElementById("vh-status").remove();
    F.replaceWith(box);
  };
  F.addEventListener("submit", ev => {
    const choices = [...F.elements].filter(e => e.name == "choice" && e.checked).map(e => e.value);
    // no Ed25519 here (or nothing chosen): the form posts as before
    if (!ok || F.dataset.sending || !choices.length) return;
    ev.preventDefault();
    F.dataset.sending = 1;
    vote(choices).catch(e => {
      delete F.dataset.sending;
      // voted here without JavaScript before: go on that way
      if (e.code == "gateway_key_exists") { ST.removeItem(K); F.dataset.sending = 1; return F.submit(); }
      say(d.tFailed + " " + (e.code ? e.code + ": " : "") + e.message, "err");
    });
  });
})();
