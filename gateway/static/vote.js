// Veche ballot page: the citizen's own voter key (docs/GATEWAY.md "Voter-held keys", PROTOCOL §16).
// Progressive enhancement: without JavaScript or without Ed25519 in WebCrypto the form posts as before
// and the gateway checks the ballot and signs it with a key it keeps sealed. With both, this script
// 1. reads the ballot of any type as gateway/ballot_forms.py does and checks it the same way (same
//    checks and order; the limits and messages are the server's, in the form's data-*: see
//    browser_checks): the gateway never sees this ballot, so the page stops one over its limits —
//    shown in the server's message box, every choice left as it is, no token asked, nothing sent
//    (the chain would refuse it: PROTOCOL §14.3) — and encodes it as the chain takes it (§14.2);
// 2. makes an Ed25519 key in the browser (kept in this tab's memory and sessionStorage only);
// 3. blinds the token message (RFC 9474 RSABSSA-SHA384-PSS-Deterministic) under the campaign's
//    certification key read from a node, asks the gateway to sign the blinded message (the only
//    request with the session cookie), unblinds it and checks the token (s^e mod n = the encoding);
// 4. signs the ballot, sends it to a node of the genesis file (or the cookie-less relay) without
//    credentials, waits for its block and offers the receipt file for download.
// Comment lines and spare spaces are stripped when the gateway serves this file (gateway/site.py).
// Short names: F the form, d its data-* (from the server), S WebCrypto, B BigInt, U a byte array.
(() => {
  "use strict";
  const F = document.getElementById("ballot"), d = F && F.dataset, S = crypto.subtle, B = BigInt,
    E = B(65537), O = B(0), I = B(1), K = "veche-key-" + (d && d.campaign), ED = {name: "Ed25519"},
    U = a => new Uint8Array(a), J = JSON, ST = sessionStorage;
  if (!d || !d.tokenUrl || !S) return;
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
  // canonical msgpack (PROTOCOL §1) of the shapes a ballot needs: arrays, byte strings, short strings, points
  const enc = v => {
    if (typeof v == "number") return U(v < 128 ? [v] : v < 256 ? [0xcc, v] : v < 65536 ? [0xcd, v >> 8, v & 255] : [0xce, v >>> 24, v >> 16 & 255, v >> 8 & 255, v & 255]);
    let n = v.length;
    if (Array.isArray(v)) return cat([U(n < 16 ? [0x90 | n] : [0xdc, 0, n]), ...v.map(enc)]);
    if (v instanceof Uint8Array) return cat([U(n < 256 ? [0xc4, n] : [0xc5, n >> 8, n & 255]), v]);
    v = te(v); n = v.length;
    return cat([U(n < 32 ? [0xa0 | n] : [0xd9, n]), v]);
  };
  // step 1: [choices, points], or a problem: a message of the server's with its {name} slots filled
  const no = (k, v) => { let t = d["e" + k]; for (const n in v) t = t.split("{" + n + "}").join(v[n]); throw {problem: t}; },
    count = n => { if (!n) no("None"); if (n < +d.min || n > +d.max) no("Count"); },
    read = () => {
      const T = d.ballot, c = [], q = [];
      let p = [], s = 0, g = 0;
      [...F.elements].forEach(e => {
        const n = e.name, v = (e.value || "").trim();
        if (T == "cumulative" && n.startsWith("points-")) {
          // empty or 0 gives nothing; whole numbers only (7 characters read, as the server does)
          const x = v.slice(0, 7), title = e.labels[0].firstChild.textContent.slice(0, 80);
          if (x && ![...x].every(y => y >= "0" && y <= "9")) no("Number", {title});
          if (+x) { c.push(n.slice(7)); p.push(+x); q.push(title); }
        } else if (T == "ordinal" && n.startsWith("rank-")) {
          // ranks from the first without a gap, no project twice
          if (!v) return g = 1;
          if (g) no("Gap", {rank: n.slice(5)});
          if (c.includes(v)) no("Twice", {title: e.selectedOptions[0].text.slice(0, 80)});
          c.push(v);
        } else if (n == "choice" && e.checked) { c.push(v); s += +e.dataset.cost || 0; }
      });
      count(c.length);
      if (T == "cumulative") {
        s = 0;
        p.forEach((x, i) => { if (x > +d.most) no("Most", {title: q[i]}); s += x; });
        if (s < +d.lo || s > +d.hi) no("Total", {total: s});
      }
      // rank i is worth the campaign's rank_points[i]
      if (T == "ordinal") p = d.ranks.split(" ").slice(0, c.length).map(Number);
      if (T == "knapsack" && s > +d.cap) no("Cap", {total: (s / 100).toLocaleString(document.documentElement.lang, {minimumFractionDigits: s % 100 ? 2 : 0}) + "\u00a0\u20bd"});
      // canonical order: points descending, then id (ids are ASCII: string order is byte order)
      const o = c.map((x, i) => [x, p[i] || 0]).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
      return [o.map(x => x[0]), p.length ? o.map(x => x[1]) : []];
    },
    problem = t => {
      let b = document.getElementById("ballot-problem");
      if (!b) { b = document.createElement("div"); b.id = "ballot-problem"; b.className = "box err"; b.setAttribute("role", "alert"); F.querySelector("fieldset").before(b); }
      b.innerHTML = "<p></p><p></p>";
      b.firstChild.textContent = t; b.lastChild.textContent = d.tKept;
      b.scrollIntoView();
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
  // steps 2-3: a token for a fresh key, or the key this tab already certified
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
  // step 4, for the ballot [choices, points] of step 1
  const vote = async ballot => {
    say(d.tWorking);
    const [key, k] = await certify(), body = [d.campaign, d.district, ...ballot, [d.campaign, unhex(k.token)]],
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
    const p = f.proof, done = document.createElement("section"), a = document.createElement("a"),
      receipt = {version: 1, chain_id: d.chain, genesis_hash: d.genesisHash, tx_hash: hash, tx: hex(tx), height: f.height,
        index: f.index, tree_size: p.tree_size, proof: p.path, header: p.header, certificate: p.certificate};
    done.id = "vh-done";
    done.innerHTML = '<h2></h2><p class="box ok" role="status"></p><p class="hash" id="tx-hash"></p>';
    [d.tCounted, d.tHeld + " " + f.height, hash].forEach((t, i) => done.children[i].textContent = t);
    a.href = "data:application/json;charset=utf-8," + encodeURIComponent(J.stringify(receipt));
    a.download = "veche-receipt-" + hash.slice(0, 16) + ".json"; a.id = "receipt-download"; a.className = "button";
    a.textContent = d.tReceipt; done.append(a);
    document.getElementById("vh-status").remove();
    F.replaceWith(done);
  };
  F.addEventListener("submit", ev => {
    // no Ed25519 here: the form posts as before, and the server checks it
    if (!ok || F.dataset.sending) return;
    ev.preventDefault();
    let ballot;
    try { ballot = read(); } catch (e) { if (!e.problem) throw e; return problem(e.problem); }
    const shown = document.getElementById("ballot-problem");
    if (shown) shown.remove();
    F.dataset.sending = 1;
    vote(ballot).catch(e => {
      delete F.dataset.sending;
      // voted here without JavaScript before: go on that way
      if (e.code == "gateway_key_exists") { ST.removeItem(K); F.dataset.sending = 1; return F.submit(); }
      say(d.tFailed + " " + (e.code ? e.code + ": " : "") + e.message, "err");
    });
  });
})();
