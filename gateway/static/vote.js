/* Veche ballot page: the citizen's own voter key (docs/GATEWAY.md "Voter-held keys", PROTOCOL §16).
   Progressive enhancement: without JavaScript, or without Ed25519 in WebCrypto, the form posts as
   before and the gateway signs with a key it keeps sealed. With both, this script
   1. makes an Ed25519 key in the browser (kept in this tab's memory and sessionStorage only),
   2. blinds the token message (RFC 9474 RSABSSA-SHA384-PSS-Deterministic) under the campaign's
      certification key read from a node, asks the gateway to sign the blinded message (the only
      request that carries the session cookie), unblinds and checks the token,
   3. signs the ballot and sends it to a node of the genesis file (or the cookie-less relay) without
      credentials, waits for its commit and offers the receipt file for download. */
(function () {
  "use strict";
  var form = document.getElementById("ballot");
  if (!form || !form.dataset.tokenUrl || !window.crypto || !crypto.subtle || typeof BigInt !== "function" ||
      ["choose-1", "approval", "knapsack"].indexOf(form.dataset.ballotType) < 0) return;
  var d = form.dataset, subtle = crypto.subtle, te = new TextEncoder(), E = 65537n;
  var ready = subtle.generateKey({name: "Ed25519"}, true, ["sign", "verify"]).then(function () { return true; },
    function () { return false; });
  var supported = false;
  ready.then(function (ok) { supported = ok; });

  function cat(parts) {
    var n = 0, i, o = 0; for (i = 0; i < parts.length; i++) n += parts[i].length;
    var out = new Uint8Array(n); for (i = 0; i < parts.length; i++) { out.set(parts[i], o); o += parts[i].length; }
    return out;
  }
  function hex(b) { var s = ""; for (var i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16); return s; }
  function unhex(s) { var b = new Uint8Array(s.length / 2); for (var i = 0; i < b.length; i++) b[i] = parseInt(s.substr(2 * i, 2), 16); return b; }
  function toInt(b) { return b.length ? BigInt("0x" + hex(b)) : 0n; }
  function toBytes(x, len) { var s = x.toString(16); while (s.length < 2 * len) s = "0" + s; return unhex(s); }
  function modpow(b, e, m) { var r = 1n; b %= m; while (e > 0n) { if (e & 1n) r = r * b % m; b = b * b % m; e >>= 1n; } return r; }
  function inverse(a, m) {
    var t = 0n, nt = 1n, r = m, nr = a % m, q, x;
    while (nr) { q = r / nr; x = t - q * nt; t = nt; nt = x; x = r - q * nr; r = nr; nr = x; }
    if (r !== 1n) throw new Error("no inverse");
    return t < 0n ? t + m : t;
  }
  function sha(name, data) { return subtle.digest(name, data).then(function (h) { return new Uint8Array(h); }); }
  // canonical msgpack (docs/PROTOCOL.md §1) of the few shapes a ballot needs
  function enc(v) {
    var i, b, n;
    if (Array.isArray(v)) {
      var items = v.map(enc); n = v.length;
      return cat([n < 16 ? [0x90 | n] : [0xdc, n >> 8, n & 255]].map(function (h) { return new Uint8Array(h); }).concat(items));
    }
    if (v instanceof Uint8Array) {
      n = v.length;
      return cat([new Uint8Array(n < 256 ? [0xc4, n] : [0xc5, n >> 8, n & 255]), v]);
    }
    if (typeof v === "number") {
      if (v < 128) return new Uint8Array([v]);
      if (v < 256) return new Uint8Array([0xcc, v]);
      return new Uint8Array([0xcd, v >> 8, v & 255]);
    }
    b = te.encode(v); n = b.length;
    return cat([new Uint8Array(n < 32 ? [0xa0 | n] : n < 256 ? [0xd9, n] : [0xda, n >> 8, n & 255]), b]);
  }
  function mgf1(seed, len) {
    var blocks = [], i;
    for (i = 0; i * 48 < len; i++) blocks.push(sha("SHA-384", cat([seed, new Uint8Array([i >>> 24, (i >> 16) & 255, (i >> 8) & 255, i & 255])])));
    return Promise.all(blocks).then(function (parts) { return cat(parts).slice(0, len); });
  }
  // EMSA-PSS-ENCODE (RFC 8017 §9.1.1), SHA-384, 48-byte salt
  function pss(message, modBits) {
    var emBits = modBits - 1, emLen = Math.ceil(emBits / 8), salt = crypto.getRandomValues(new Uint8Array(48)), H;
    return sha("SHA-384", message).then(function (mHash) {
      return sha("SHA-384", cat([new Uint8Array(8), mHash, salt]));
    }).then(function (h) {
      H = h; return mgf1(H, emLen - 49);
    }).then(function (mask) {
      var db = new Uint8Array(emLen - 49); db[emLen - 98] = 1; db.set(salt, emLen - 97);
      for (var i = 0; i < db.length; i++) db[i] ^= mask[i];
      db[0] &= 0xff >> (8 * emLen - emBits);
      return cat([db, H, new Uint8Array([0xbc])]);
    });
  }
  function randomBelow(n, len) {
    for (;;) { var r = toInt(crypto.getRandomValues(new Uint8Array(len))) % (1n << BigInt(8 * len)); if (r > 0n && r < n) return r; }
  }
  function api(path, init) {   // a node of the genesis file, never with cookies
    var nodes = d.nodes.split(" ").filter(Boolean), i = 0;
    init = Object.assign({credentials: "omit", cache: "no-store"}, init || {});
    function next(err) {
      if (i >= nodes.length) return Promise.reject(err || new Error("no node"));
      var url = nodes[i++] + path;
      return fetch(url, init).then(function (r) { if (r.status >= 500) throw new Error(url + " " + r.status); return r.json(); }).catch(next);
    }
    return next();
  }
  function say(text, cls) {
    var box = document.getElementById("vh-status");
    if (!box) { box = document.createElement("p"); box.id = "vh-status"; box.setAttribute("role", "status"); form.parentNode.insertBefore(box, form); }
    box.className = "box " + (cls || "warn"); box.textContent = text;
  }
  function stored() { try { return JSON.parse(sessionStorage.getItem("veche-key-" + d.campaign) || "null"); } catch (e) { return null; } }

  function certify() {   // step 2: a token for a fresh key, or the key this tab already certified
    var keep = stored(), keys, pk, n, len, msg, m, inv, z;
    if (keep && keep.token) return subtle.importKey("pkcs8", unhex(keep.pkcs8), {name: "Ed25519"}, false, ["sign"])
      .then(function (priv) { return {priv: priv, pk: unhex(keep.pk), token: unhex(keep.token)}; });
    return subtle.generateKey({name: "Ed25519"}, true, ["sign", "verify"]).then(function (k) {
      keys = k; return Promise.all([subtle.exportKey("raw", k.publicKey), subtle.exportKey("pkcs8", k.privateKey)]);
    }).then(function (raw) {
      pk = new Uint8Array(raw[0]);
      keep = {pk: hex(pk), pkcs8: hex(new Uint8Array(raw[1]))};
      sessionStorage.setItem("veche-key-" + d.campaign, JSON.stringify(keep));
      return api("/api/v1/campaigns/" + d.campaign);
    }).then(function (c) {
      var modulus = unhex(c.campaign.certification_key);
      n = toInt(modulus); len = modulus.length;
      msg = cat([te.encode("veche/v1/voter-token"), enc([d.chain, d.campaign, pk])]);
      return pss(msg, n.toString(2).length);
    }).then(function (em) {
      m = toInt(em);
      var r = randomBelow(n, len); inv = inverse(r, n); z = m * modpow(r, E, n) % n;
      var body = new URLSearchParams({csrf_token: form.elements.csrf_token.value, blinded: hex(toBytes(z, len))});
      return fetch(d.tokenUrl, {method: "POST", body: body, credentials: "same-origin"});
    }).then(function (r) {
      return r.json().then(function (a) { if (!r.ok) { var e = new Error(a.error.message); e.code = a.error.code; throw e; } return a; });
    }).then(function (a) {
      var s = toInt(unhex(a.blind_sig)) * inv % n;
      if (modpow(s, E, n) !== m) throw new Error("the gateway's answer is not a valid token");
      keep.token = hex(toBytes(s, len));
      sessionStorage.setItem("veche-key-" + d.campaign, JSON.stringify(keep));
      return {priv: keys.privateKey, pk: pk, token: unhex(keep.token)};
    });
  }

  function vote(choices) {
    var tx, hash, body;
    say(d.tWorking);
    return certify().then(function (key) {
      choices.sort();
      body = [d.campaign, d.district, choices, [], [d.campaign, key.token]];
      var message = cat([te.encode("veche/v1/vote.cast" + d.chain), enc(body)]);
      return subtle.sign({name: "Ed25519"}, key.priv, message).then(function (sig) {
        tx = enc(["vote.cast", d.chain, body, [[key.pk, new Uint8Array(sig)]]]);
        return sha("SHA-256", tx);
      });
    }).then(function (h) {
      hash = hex(h);
      var init = {method: "POST", body: enc([tx]), headers: {"Content-Type": "application/octet-stream"}};
      if (d.relay) return fetch(d.relay, Object.assign({credentials: "omit"}, init)).then(function (r) { return r.json(); });
      return send(init, 0);
    }).then(function () {
      say(d.tSent);
      return wait(hash, Date.now() + 1000 * (d.relay ? 900 : 120));
    }).then(function (found) {
      return api("/api/v1/status").then(function (st) { done(hash, tx, found, st); });
    });
  }
  function send(init, tries) {   // a node a block behind the gateway may not count the token yet: retry
    return api("/api/v1/txs", init).then(function (a) {
      var bad = a.rejected && a.rejected[0];
      if (bad && bad.code === "tokens_exhausted" && tries < 50) return new Promise(function (ok) { setTimeout(ok, 300); }).then(function () { return send(init, tries + 1); });
      if (bad && bad.code !== "already_pending" && bad.code !== "already_committed") { var e = new Error(bad.message); e.code = bad.code; throw e; }
    });
  }
  function wait(hash, deadline) {
    return api("/api/v1/txs/" + hash).then(function (f) {
      if (f.status === "committed") return f;
      if (f.status === "rejected") { var e = new Error(f.message); e.code = f.code; throw e; }
      if (Date.now() > deadline) throw new Error(d.tPending);
      return new Promise(function (ok) { setTimeout(ok, 300); }).then(function () { return wait(hash, deadline); });
    });
  }
  function done(hash, tx, f, st) {
    var receipt = {version: 1, chain_id: d.chain, genesis_hash: d.genesisHash, tx_hash: hash, tx: hex(tx),
      height: f.height, index: f.index, tree_size: f.proof.tree_size, proof: f.proof.path, header: f.proof.header,
      certificate: f.proof.certificate};
    var box = document.createElement("section"), link = document.createElement("a"), p, h;
    box.id = "vh-done";
    h = document.createElement("h2"); h.textContent = d.tCounted; box.appendChild(h);
    p = document.createElement("p"); p.className = "box ok"; p.setAttribute("role", "status"); p.textContent = d.tHeld + " " + f.height; box.appendChild(p);
    p = document.createElement("p"); p.className = "hash"; p.id = "tx-hash"; p.textContent = hash; box.appendChild(p);
    link.href = "data:application/json;charset=utf-8," + encodeURIComponent(JSON.stringify(receipt));
    link.download = "veche-receipt-" + hash.slice(0, 16) + ".json"; link.id = "receipt-download"; link.className = "button";
    link.textContent = d.tReceipt; box.appendChild(link);
    var status = document.getElementById("vh-status"); if (status) status.remove();
    form.parentNode.replaceChild(box, form);
    if (st.genesis_hash !== d.genesisHash) say(d.tGenesis, "err");
  }

  form.addEventListener("submit", function (event) {
    if (!supported || form.dataset.sending) return;          // no Ed25519 here: the form posts as before
    var choices = Array.prototype.filter.call(form.elements, function (e) { return e.name === "choice" && e.checked; })
      .map(function (e) { return e.value; });
    if (!choices.length) return;
    event.preventDefault();
    form.dataset.sending = "1";
    vote(choices).catch(function (err) {
      delete form.dataset.sending;
      if (err.code === "gateway_key_exists") {   // voted here without JavaScript before: go on that way
        sessionStorage.removeItem("veche-key-" + d.campaign); form.dataset.sending = "1"; form.submit(); return;
      }
      say(d.tFailed + " " + (err.code ? err.code + ": " : "") + err.message, "err");
    });
  });
})();
