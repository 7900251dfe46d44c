// Live total of a knapsack ballot (cost against the cap) or a cumulative one (points against the most).
// Only a convenience: the page works without it and the server checks every ballot.
(function () {
  var form = document.getElementById("ballot"), out = document.getElementById("ballot-total");
  if (!form || !out) return;
  var d = out.dataset, cap = +d.cap, knapsack = form.dataset.ballot === "knapsack";
  function money(k) {
    var units = Math.floor(k / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, d.sep), rest = k % 100;
    return units + (rest ? d.dec + (rest < 10 ? "0" : "") + rest : "") + "\u00a0\u20bd";
  }
  function update() {
    var total = 0;
    form.querySelectorAll(knapsack ? "input[name=choice]:checked" : "input[type=number]").forEach(function (i) {
      var n = knapsack ? +i.dataset.cost : parseInt(i.value, 10);
      if (n > 0) total += n;
    });
    var f = knapsack ? money : String, v = {total: f(total), cap: f(cap), left: f(cap - total), over: f(total - cap)};
    out.textContent = (total > cap ? d.over : d.ok).replace(/\{(\w+)\}/g, function (m, k) { return v[k]; });
    out.className = total > cap ? "box err" : "box";
  }
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
})();
