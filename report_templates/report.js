(function () {
  "use strict";
  // Directory values are hostile text: every cell is set with textContent, never parsed as HTML.
  var rows = JSON.parse(document.getElementById("accounts-data").textContent);
  var columns = [
    ["source", "Source"], ["username", "Username"], ["display_name", "Name"], ["kind", "Kind"],
    ["enabled", "Enabled"], ["privileged", "Privileged"], ["activity", "Activity"],
    ["days_since_activity", "Days since use"], ["last_activity_attribute", "Activity attribute"],
    ["policy_strength", "Policy"], ["mfa_registered", "MFA"], ["findings", "Findings"]
  ];
  var PAGE = 200;
  var state = { key: "days_since_activity", dir: -1, text: "", activity: "", source: "", shown: PAGE };
  var table = document.getElementById("accounts");
  var head = table.querySelector("thead tr");
  var body = table.querySelector("tbody");
  var counter = document.getElementById("accounts-count");
  var more = document.getElementById("show-more");

  function show(value) {
    if (value === null || value === undefined) return "";
    if (value === true) return "yes";
    if (value === false) return "no";
    return String(value);
  }
  function compare(a, b) {
    var x = a[state.key], y = b[state.key];
    if (x === y) return 0;
    if (x === null || x === undefined || x === "") return 1;
    if (y === null || y === undefined || y === "") return -1;
    if (typeof x === "number" && typeof y === "number") return (x - y) * state.dir;
    return String(x).localeCompare(String(y)) * state.dir;
  }
  function matches(row) {
    if (state.activity && row.activity !== state.activity) return false;
    if (state.source && row.source !== state.source) return false;
    if (!state.text) return true;
    var hay = (row.username + " " + row.display_name + " " + row.email + " " + row.groups + " " + row.findings).toLowerCase();
    return hay.indexOf(state.text) !== -1;
  }
  function render() {
    var selected = rows.filter(matches).sort(compare);
    var fragment = document.createDocumentFragment();
    selected.slice(0, state.shown).forEach(function (row) {
      var tr = document.createElement("tr");
      columns.forEach(function (column) {
        var td = document.createElement("td");
        td.textContent = show(row[column[0]]);
        if (column[0] === "days_since_activity") td.className = "num";
        tr.appendChild(td);
      });
      fragment.appendChild(tr);
    });
    body.replaceChildren(fragment);
    counter.textContent = Math.min(state.shown, selected.length) + " of " + selected.length +
      " matching accounts shown (" + rows.length + " in total)";
    more.hidden = selected.length <= state.shown;
  }
  columns.forEach(function (column) {
    var th = document.createElement("th");
    th.textContent = column[1];
    th.className = "sortable";
    th.dataset.key = column[0];
    th.addEventListener("click", function () {
      state.dir = state.key === column[0] ? -state.dir : 1;
      state.key = column[0];
      head.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
      render();
    });
    head.appendChild(th);
  });
  var timer = null;
  document.getElementById("filter-text").addEventListener("input", function (event) {
    clearTimeout(timer);
    timer = setTimeout(function () { state.text = event.target.value.toLowerCase(); state.shown = PAGE; render(); }, 120);
  });
  document.getElementById("filter-activity").addEventListener("change", function (event) {
    state.activity = event.target.value; state.shown = PAGE; render();
  });
  document.getElementById("filter-source").addEventListener("change", function (event) {
    state.source = event.target.value; state.shown = PAGE; render();
  });
  more.addEventListener("click", function () { state.shown += PAGE * 5; render(); });
  render();
})();
