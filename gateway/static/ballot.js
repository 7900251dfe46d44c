// Live total of a knapsack ballot (cost against the cap) or a cumulative one (points against the most).
// Only a convenience: the page works without it, and the server checks every ballot it signs (a
// voter-held ballot, which the server never sees, is checked by /static/vote.js).
// Comment lines and spare spaces are stripped when the gateway serves this file (gateway/site.py).
(() => {
  const F = document.getElementById("ballot"), out = document.getElementById("ballot-total");
  if (!F || !out) return;
  const t = out.dataset, cap = +t.cap, knapsack = F.dataset.ballot == "knapsack",
    // kopecks as the server writes money (gateway/i18n.py format_money): 123456789 → "1 234 567,89 ₽"
    money = k => {
      let u = String(Math.floor(k / 100)), r = "", m = k % 100;
      for (; u.length > 3; u = u.slice(0, -3)) r = t.sep + u.slice(-3) + r;
      return u + r + (m ? t.dec + (m < 10 ? "0" : "") + m : "") + "\u00a0\u20bd";
    },
    update = () => {
      let total = 0, text;
      F.querySelectorAll(knapsack ? "input[name=choice]:checked" : "input[type=number]").forEach(i => {
        const n = knapsack ? +i.dataset.cost : parseInt(i.value, 10);
        if (n > 0) total += n;
      });
      const f = knapsack ? money : String, v = {total: f(total), cap: f(cap), left: f(cap - total), over: f(total - cap)};
      text = total > cap ? t.over : t.ok;
      for (const k in v) text = text.split("{" + k + "}").join(v[k]);
      out.textContent = text;
      out.className = total > cap ? "box err" : "box";
    };
  F.addEventListener("input", update);
  F.addEventListener("change", update);
  update();
})();
