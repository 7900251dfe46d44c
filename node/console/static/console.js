// The initiative form: the cost against the campaign's caps while it is typed (checked again by the console).
(function () {
  var cost = document.getElementById("cost"), out = document.getElementById("cost-check");
  if (!cost || !out) { return; }
  var low = Number(cost.dataset.min), high = Number(cost.dataset.max);
  function check() {
    var text = cost.value.replace(/[\s\u00a0]/g, "").replace(",", ".");
    if (!/^\d{1,15}(\.\d{1,2})?$/.test(text)) { out.textContent = ""; out.className = ""; return; }
    var kopecks = Math.round(Number(text) * 100);
    var over = kopecks > high, under = kopecks < low;
    out.className = over || under ? "over" : "";
    out.textContent = over ? out.dataset.over : under ? out.dataset.under : out.dataset.ok;
  }
  cost.addEventListener("input", check);
  check();
})();
