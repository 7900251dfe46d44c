// Veche ballot page: the citizen's own voter key (docs/GATEWAY.md "Voter-held keys", PROTOCOL §16).
// Progressive enhancement: without JavaScript or without Ed25519 in WebCrypto the form posts as before
// and the gateway signs with a key it keeps sealed. With both, this script
// 1. makes an Ed25519 key in the browser (kept in this tab's memory and sessionStorage only);
// 2. blinds the token message (RFC 9474 RSABSSA-SHA384-PSS-Deterministic) under the campaign's
//    certification key read from a node, asks the gateway to sign the blinded message (the only
//    request with the session cookie), unblinds it and checks the token (s^e mod n = the encoding);
// 3. signs the ballot, sends it to a node of the genesis file (or the cookie-less relay) without
//    credentials, waits for its block and offers the receipt file for download.
// Comment lines and indentation are stripped when the gateway serves this file (gateway/site.py).
(function () {
  "use strict";
  var F = document.getElementById("ballot"), d = F && F.dataset, S = crypto.subtle, T = new TextEncoder(), E = BigInt(65537);
  if (!d || !d.tokenUrl || !S || ["choose-1", "approval", "knapsack"].indexOf(d.ballotType) < 0) return;
  var ok = 0, K = "veche-key-" + d.campaign, Z = BigInt(0), I = BigInt(1);
  S.generateKey({name: "Ed25519"}, true, ["sign", "verify"]).then(function () { ok = 1; }, function () {});
  function cat(a) {
    var n = 0, o = 0, r;
    a.forEach(function (x) { n += x.length; });
    r = new Uint8Array(n);
    a.forEach(function (x) { r.set(x, o); o += x.length; });
    return r;
  }
  function u8(a) { return new Uint8Array(a); }
  function hex(b) { return Array.prototype.map.call(b, function (x) { return (x < 16 ? "0" : "") + x.toString(16); }).join(""); }
  function unhex(s) { for (var b = u8(s.length / 2), i = 0; i < b.length; i++) b[i] = parseInt(s.substr(2 * i, 2), 16); return b; }
  function num(b) { return BigInt("0x" + hex(b)); }
  function bytes(x, n) { return unhex(x.toString(16).padStart(2 * n, "0")); }
  function pow(b, e, m) { var r = I; for (b %= m; e > Z; e >>= I, b = b * b % m) if (e & I) r = r * b % m; return r; }
  function inv(a, m) {
    var t = Z, u = I, r = m, s = a, q, x;
    while (s) { q = r / s; x = t - q * u; t = u; u = x; x = r - q * s; r = s; s = x; }
    return t < Z ? t + m : t;
  }
  function sha(n, b) { return S.digest("SHA-" + n, b).then(u8); }
  function pause(ms) { return new Promise(function (f) { setTimeout(f, ms); }); }
  function fail(e) { var x = new Error(e.message); x.code = e.code; throw x; }
  // canonical msgpack (PROTOCOL §1) of the shapes a ballot needs
  function enc(v) {
    var n = v.length, b;
    if (Array.isArray(v)) return cat([u8(n < 16 ? [0x90 | n] : [0xdc, 0, n])].concat(v.map(enc)));
    if (v instanceof Uint8Array) return cat([u8(n < 256 ? [0xc4, n] : [0xc5, n >> 8, n & 255]), v]);
    b = T.encode(v); n = b.length;
    return cat([u8(n < 32 ? [0xa0 | n] : [0xd9, n]), b]);
  }
  // EMSA-PSS-ENCODE (RFC 8017 §9.1.1): SHA-384, MGF1-SHA-384, 48-byte salt; emBits = modBits − 1
  function pss(m, bits) {
    var L = Math.ceil((bits - 1) / 8), salt = crypto.getRandomValues(u8(48)), H;
    return sha(384, m).then(function (h) { return sha(384, cat([u8(8), h, salt])); }).then(function (h) {
      H = h;
      for (var i = 0, p = []; i * 48 < L - 49; i++) p.push(sha(384, cat([H, u8([0, 0, 0, i])])));
      return Promise.all(p);
    }).then(function (p) {
      var mask = cat(p), db = u8(L - 49);
      db[L - 98] = 1; db.set(salt, L - 97);
      for (var i = 0; i < db.length; i++) db[i] ^= mask[i];
      db[0] &= 0xff >> (8 * L - bits + 1);
      return cat([db, H, u8([0xbc])]);
    });
  }
  // a node of the genesis file, never with cookies
  function api(path, init, i) {
    var nodes = d.nodes.split(" "), url = nodes[(i = i || 0) % nodes.length] + path;
    return fetch(url, Object.assign({credentials: "omit", cache: "no-store"}, init)).then(function (r) {
      if (r.status > 499) throw new Error(url);
      return r.json();
    }).catch(function (e) { if (i + 1 < 2 * nodes.length) return pause(200).then(function () { return api(path, init, i + 1); }); throw e; });
  }
  function say(text, cls) {
    var p = document.getElementById("vh-status");
    if (!p) { p = document.createElement("p"); p.id = "vh-status"; p.setAttribute("role", "status"); F.before(p); }
    p.className = "box " + (cls || "warn"); p.textContent = text;
  }
  function kept() { try { return JSON.parse(sessionStorage.getItem(K)) || {}; } catch (e) { return {}; } }
  function keep(k) { sessionStorage.setItem(K, JSON.stringify(k)); }
  // step 2: a token for a fresh key, or the key this tab already certified
  function certify() {
    var k = kept(), key, n, len, m, r;
    if (k.token) return S.importKey("pkcs8", unhex(k.sk), {name: "Ed25519"}, false, ["sign"]).then(function (p) { return [p, k]; });
    return S.generateKey({name: "Ed25519"}, true, ["sign", "verify"]).then(function (x) {
      key = x.privateKey;
      return Promise.all([S.exportKey("raw", x.publicKey), S.exportKey("pkcs8", key), api("/api/v1/campaigns/" + d.campaign)]);
    }).then(function (a) {
      k = {pk: hex(u8(a[0])), sk: hex(u8(a[1]))}; keep(k);
      var mod = unhex(a[2].campaign.certification_key);
      n = num(mod); len = mod.length;
      return pss(cat([T.encode("veche/v1/voter-token"), enc([d.chain, d.campaign, unhex(k.pk)])]), n.toString(2).length);
    }).then(function (em) {
      m = num(em);
      do r = num(crypto.getRandomValues(u8(len))); while (r < I || r >= n);
      var body = new URLSearchParams({csrf_token: F.elements.csrf_token.value, blinded: hex(bytes(m * pow(r, E, n) % n, len))});
      return fetch(d.tokenUrl, {method: "POST", body: body, credentials: "same-origin"});
    }).then(function (x) {
      return x.json().then(function (a) { if (!x.ok) fail(a.error); return a; });
    }).then(function (a) {
      var s = num(unhex(a.blind_sig)) * inv(r, n) % n;
      if (pow(s, E, n) !== m) throw new Error("not a valid token");
      k.token = hex(bytes(s, len)); keep(k);
      return [key, k];
    });
  }
  function send(init, tries) {
    return (d.relay ? fetch(d.relay, Object.assign({credentials: "omit"}, init)).then(function (r) { return r.json(); }) : api("/api/v1/txs", init)).then(function (a) {
      var bad = a.error || (a.rejected || [])[0];
      // a node a block behind the gateway may not count the token yet
      if (bad && bad.code === "tokens_exhausted" && tries < 50) return pause(300).then(function () { return send(init, tries + 1); });
      if (bad && bad.code.indexOf("already_")) fail(bad);
    });
  }
  function wait(hash, until) {
    return api("/api/v1/txs/" + hash).then(function (f) {
      if (f.status === "committed") return f;
      if (f.status === "rejected") fail(f);
      if (Date.now() > until) throw new Error(d.tPending);
      return pause(300).then(function () { return wait(hash, until); });
    });
  }
  function vote(choices) {
    var tx, hash;
    say(d.tWorking);
    return certify().then(function (a) {
      var k = a[1], body = [d.campaign, d.district, choices.sort(), [], [d.campaign, unhex(k.token)]];
      return S.sign({name: "Ed25519"}, a[0], cat([T.encode("veche/v1/vote.cast" + d.chain), enc(body)])).then(function (sig) {
        tx = enc(["vote.cast", d.chain, body, [[unhex(k.pk), u8(sig)]]]);
        return sha(256, tx);
      });
    }).then(function (h) {
      hash = hex(h);
      return send({method: "POST", body: enc([tx]), headers: {"Content-Type": "application/octet-stream"}}, 0);
    }).then(function () {
      say(d.tSent);
      return wait(hash, Date.now() + (d.relay ? 9e5 : 12e4));
    }).then(function (f) {
      var p = f.proof, box = document.createElement("section"), a = document.createElement("a");
      var receipt = {version: 1, chain_id: d.chain, genesis_hash: d.genesisHash, tx_hash: hash, tx: hex(tx), height: f.height,
        index: f.index, tree_size: p.tree_size, proof: p.path, header: p.header, certificate: p.certificate};
      box.id = "vh-done";
      box.innerHTML = '<h2></h2><p class="box ok" role="status"></p><p class="hash" id="tx-hash"></p>';
      box.children[0].textContent = d.tCounted;
      box.children[1].textContent = d.tHeld + " " + f.height;
      box.children[2].textContent = hash;
      a.href = "data:application/json;charset=utf-8," + encodeURIComponent(JSON.stringify(receipt));
      a.download = "veche-receipt-" + hash.slice(0, 16) + ".json"; a.id = "receipt-download"; a.className = "button";
      a.textContent = d.tReceipt; box.append(a);
      document.getElementById("vh-status").remove();
      F.replaceWith(box);
    });
  }
  F.addEventListener("submit", function (ev) {
    var choices = [].filter.call(F.elements, function (e) { return e.name === "choice" && e.checked; }).map(function (e) { return e.value; });
    // no Ed25519 here (or nothing chosen): the form posts as before
    if (!ok || F.dataset.sending || !choices.length) return;
    ev.preventDefault();
    F.dataset.sending = 1;
    vote(choices).catch(function (e) {
      delete F.dataset.sending;
      // voted here without JavaScript before: go on that way
      if (e.code === "gateway_key_exists") { sessionStorage.removeItem(K); F.dataset.sending = 1; return F.submit(); }
      say(d.tFailed + " " + (e.code ? e.code + ": " : "") + e.message, "err");
    });
  });
})();
