(function () {
  "use strict";
  // A large report carries its tables gzip-compressed (base64) and inflates them with the browser's own
  // DecompressionStream: a tenth of the bytes to read, no library, nothing fetched.
  function inflate(node) {
    if (node.dataset.encoding !== "gzip") return Promise.resolve(JSON.parse(node.textContent));
    if (typeof DecompressionStream === "undefined") {
      return Promise.reject(new Error("this browser cannot decompress the tables (DecompressionStream)"));
    }
    var binary = atob(node.textContent);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text().then(JSON.parse);
  }
  inflate(document.getElementById("report-data")).then(start, function (error) {
    document.getElementById("accounts-count").textContent = "The accounts table cannot be shown: " + error.message;
  });

  function start(data) {
  // Directory values are hostile text: every cell is set with textContent, never parsed as HTML.
  var PAGE = 200;

  // ---- accounts: rows arrive as arrays; some columns as positions in a per-column list of values ----
  var encoded = data.accounts;
  var index = {};
  encoded.columns.forEach(function (name, i) { index[name] = i; });
  function cell(row, name) {
    var value = row[index[name]];
    var dictionary = encoded.dictionaries[name];
    return dictionary ? dictionary[value] : value;
  }
  var rows = encoded.rows;
  var columns = [
    ["source", "Source"], ["username", "Username"], ["display_name", "Name"], ["kind", "Kind"],
    ["enabled", "Enabled"], ["privileged", "Privileged"], ["activity", "Activity"],
    ["days_since_activity", "Days since use"], ["last_activity_attribute", "Activity attribute"],
    ["policy_strength", "Policy"], ["mfa_registered", "MFA"], ["findings", "Findings"]
  ];
  var state = { key: "days_since_activity", dir: -1, text: "", activity: "", source: "", shown: PAGE };
  var table = document.getElementById("accounts");
  var head = table.querySelector("thead tr");
  var body = table.querySelector("tbody");
  var counter = document.getElementById("accounts-count");
  var more = document.getElementById("show-more");

  function show(value) {
    if (value === null) return "unknown";  // the source does not say: shown, never blank
    if (value === undefined) return "";
    if (value === true) return "yes";
    if (value === false) return "no";
    return String(value);
  }
  function compare(a, b) {
    var x = cell(a, state.key), y = cell(b, state.key);
    if (x === y) return 0;
    if (x === null || x === undefined || x === "") return 1;
    if (y === null || y === undefined || y === "") return -1;
    if (typeof x === "number" && typeof y === "number") return (x - y) * state.dir;
    return String(x).localeCompare(String(y)) * state.dir;
  }
  function matches(row) {
    if (state.activity && cell(row, "activity") !== state.activity) return false;
    if (state.source && cell(row, "source") !== state.source) return false;
    if (!state.text) return true;
    var hay = (cell(row, "username") + " " + cell(row, "display_name") + " " + cell(row, "email") + " " +
               cell(row, "groups") + " " + cell(row, "findings")).toLowerCase();
    return hay.indexOf(state.text) !== -1;
  }
  var sorted = null;  // sorting 100,000 rows is the costly step: redo it only when the sort changes
  function render() {
    if (sorted === null) sorted = rows.slice().sort(compare);
    var selected = (state.text || state.activity || state.source) ? sorted.filter(matches) : sorted;
    var fragment = document.createDocumentFragment();
    selected.slice(0, state.shown).forEach(function (row) {
      var tr = document.createElement("tr");
      columns.forEach(function (column) {
        var td = document.createElement("td");
        td.textContent = show(cell(row, column[0]));
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
      sorted = null;
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

  // ---- findings: each rule's rows are built when its section is first opened ----
  // A large report keeps them in an element of their own, read once the accounts table is usable: at a million
  // accounts they are 40% of the data, a second of the time to a usable page.
  var findings = data.findings || null;
  var waiting = [];
  function withFindings(action) {
    if (findings) action(); else waiting.push(action);
  }
  function renderFindings(section, count) {
    var list = findings[section.dataset.rule] || [];
    var tbody = section.querySelector("tbody");
    var fragment = document.createDocumentFragment();
    list.slice(tbody.children.length, Math.min(list.length, count)).forEach(function (f) {
      var tr = document.createElement("tr");
      if (f[5]) tr.className = "excluded";
      var severity = document.createElement("span");
      severity.className = "sev sev-" + f[0];
      severity.textContent = f[0];
      [severity, f[1], f[2], f[3], f[4]].forEach(function (value, i) {
        var td = document.createElement("td");
        if (i === 0) td.appendChild(value); else td.textContent = value;
        if (i === 3 && f[5]) {
          var note = document.createElement("div");
          note.className = "muted";
          note.textContent = f[5];
          td.appendChild(note);
        }
        if (i === 4) td.className = "evidence";
        tr.appendChild(td);
      });
      fragment.appendChild(tr);
    });
    tbody.appendChild(fragment);
    var button = section.querySelector("button.more");
    button.hidden = tbody.children.length >= list.length;
    button.textContent = "Show more (" + (list.length - tbody.children.length) + " not shown)";
  }
  var sections = document.querySelectorAll("details.rule");
  sections.forEach(function (section) {
    var tbody = section.querySelector("tbody");
    if (section.open) withFindings(function () { renderFindings(section, PAGE); });
    section.addEventListener("toggle", function () {
      if (section.open) withFindings(function () { renderFindings(section, Math.max(PAGE, tbody.children.length)); });
    });
    section.querySelector("button.more").addEventListener("click", function () {
      renderFindings(section, tbody.children.length + PAGE * 5);
    });
  });
  // Printing shows every finding of every rule.
  window.addEventListener("beforeprint", function () {
    sections.forEach(function (section) {
      section.open = true;
      withFindings(function () { renderFindings(section, Infinity); });
    });
  });

  // ---- framework filter: only rules mapped to the chosen framework ----
  document.getElementById("filter-framework").addEventListener("change", function (event) {
    var wanted = event.target.value;
    document.querySelectorAll("#rules-summary tbody tr, details.rule").forEach(function (element) {
      element.hidden = wanted !== "" && element.dataset.frameworks.split("|").indexOf(wanted) === -1;
    });
  });

  render();
  // Benchmarks read this: the summary is shown and the accounts table usable from here on.
  document.documentElement.dataset.interactive = String(Math.round(performance.now()));
  function ready() {  // tests read this: every table of the page is in place
    document.documentElement.dataset.ready = String(Math.round(performance.now()));
  }
  if (findings) {
    ready();
  } else {
    inflate(document.getElementById("findings-data")).then(function (value) {
      findings = value;
      waiting.splice(0).forEach(function (action) { action(); });
      ready();
    }, function (error) {
      sections.forEach(function (section) {
        var button = section.querySelector("button.more");
        button.hidden = false;
        button.disabled = true;
        button.textContent = "The findings cannot be shown: " + error.message;
      });
    });
  }
  }
})();
