// The console's own script: live updates without a reload, and confirmations.
// Served from this site only (the Content-Security-Policy allows no inline script).
"use strict";

const refreshMs = Number(document.body.dataset.refreshMs || 2000);

async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (response.status === 401) { window.location.reload(); return null; }
  if (!response.ok) { throw new Error(`${url}: ${response.status}`); }
  return response.json();
}

// ---- reports: new cases appear at the top as they are registered ----------------------
function startReports() {
  const body = document.getElementById("case-rows");
  if (!body || body.dataset.live !== "1") { return; }
  const template = document.getElementById("row-template");
  const words = document.getElementById("words").dataset;
  const newest = () => Math.max(0, ...[...body.querySelectorAll("tr[data-id]")].map((row) => Number(row.dataset.id)));
  const flag = (value) => (value === true ? words.inside : value === false ? words.outside : words.unknown);
  async function poll() {
    try {
      const url = new URL(body.dataset.api, window.location.href);
      url.searchParams.set("after", String(newest()));
      url.searchParams.set("limit", "200");
      const answer = await getJson(url);
      const rows = (answer && answer.rows) || [];
      for (const r of rows.reverse()) {   // oldest first, each put on top
        const row = template.content.firstElementChild.cloneNode(true);
        row.dataset.id = String(r.id);
        const cells = row.children;
        const link = cells[0].firstElementChild;
        link.href = `/reports/${encodeURIComponent(r.case_no)}`;
        link.textContent = r.case_no;
        cells[1].textContent = `${words[r.kind]} · ${r.major} / ${r.minor}`;
        cells[2].textContent = r.description;
        cells[3].textContent = r.inspector;
        cells[4].textContent = r.segment || "";
        cells[5].textContent = r.units.join("、");
        cells[6].textContent = `${r.district || ""} ${r.grid || ""}`;
        cells[7].textContent = r.received_local;
        cells[8].textContent = flag(r.inside_window);
        cells[8].className = r.inside_window ? "ok" : "warn";
        cells[9].textContent = flag(r.inside_coverage);
        cells[9].className = r.inside_coverage ? "ok" : "warn";
        cells[10].className = "state";
        cells[10].dataset.state = r.state;
        if (r.light) {
          const dot = document.createElement("span");
          dot.className = `light light-${r.light}`;
          dot.title = words[r.light] || r.light;
          cells[10].append(dot, " ");
        }
        cells[10].append(r.state_label);
        body.prepend(row);
        const empty = document.getElementById("no-reports");
        if (empty) { empty.remove(); }
      }
    } catch (error) {
      console.warn(error);
    }
    setTimeout(poll, refreshMs);
  }
  setTimeout(poll, refreshMs);
}

// ---- fleet: presence, battery and the rest, every few seconds --------------------------
function startFleet() {
  const table = document.getElementById("fleet");
  if (!table) { return; }
  const words = document.getElementById("words").dataset;
  async function poll() {
    try {
      const answer = await getJson(table.dataset.api);
      for (const d of (answer && answer.devices) || []) {
        let row = document.getElementById(`device-${d.device_id}`);
        if (!row) {
          row = document.createElement("tr");
          row.id = `device-${d.device_id}`;
          row.dataset.device = d.device_id;
          for (let i = 0; i < 12; i += 1) { row.appendChild(document.createElement("td")); }
          document.getElementById("fleet-rows").appendChild(row);
        }
        const c = row.children;
        c[0].textContent = d.device_id;
        c[1].textContent = d.inspector_id || "";
        c[2].textContent = d.unit || "";
        c[3].textContent = d.online === true ? words.online : d.online === false ? words.offline : words.unknown;
        c[3].className = `presence ${d.online === true ? "ok" : d.online === false ? "warn" : ""}`;
        c[4].textContent = d.status_local;
        c[5].textContent = d.battery_pct === null ? "" : `${Math.round(d.battery_pct)}%`;
        c[6].textContent = d.firmware || "";
        c[7].textContent = d.signal_dbm === null ? "" : `${d.signal_dbm} dBm`;
        c[8].textContent = String(d.uploading);
        const reason = d.last_refusal || d.last_reason;
        c[9].textContent = reason ? `${d.rejected + d.refused} ${reason}` : String(d.rejected + d.refused);
        c[10].textContent = d.last_fix ? `${d.last_fix[0].toFixed(5)}, ${d.last_fix[1].toFixed(5)}` : "";
        c[11].textContent = words[d.status] || d.status;
        c[11].className = d.status === "active" ? "" : "warn";
      }
    } catch (error) {
      console.warn(error);
    }
    setTimeout(poll, refreshMs);
  }
  setTimeout(poll, refreshMs);
}

// ---- a retry of a dead letter is confirmed first ---------------------------------------
function confirmRetries() {
  for (const form of document.querySelectorAll("form.retry")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); return; }
      form.querySelector("input[name=confirm]").value = "yes";
    });
  }
}

// ---- a case's transition form: only the fields the chosen action reads -----------------
function startActForm() {
  const action = document.getElementById("act-action");
  if (!action) { return; }
  const show = () => {
    for (const field of document.querySelectorAll("#act-form [data-for]")) {
      field.hidden = !field.dataset.for.split(" ").includes(action.value);
    }
  };
  action.addEventListener("change", show);
  show();
}

startReports();
startActForm();
startFleet();
confirmRetries();
