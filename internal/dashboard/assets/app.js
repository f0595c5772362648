// opportunist dashboard: reads the JSON API (docs/dashboard.md) and draws it.
// No libraries; the charts are SVG strings.
"use strict";

let state = null;
let capacityHistory = null;
// The view shown can be linked: #hpa-writeup.
let viewName = decodeURIComponent(location.hash.slice(1)) || null;

const $ = (id) => document.getElementById(id);

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function fmt(v, digits = 1) {
  return Number(v ?? 0).toFixed(digits);
}

function clock(t) {
  const d = new Date(t);
  return d.toISOString().slice(11, 19);
}

function currentView() {
  if (!state || !state.views || state.views.length === 0) return null;
  return state.views.find((v) => v.name === viewName) || state.views[0];
}

function drawViews() {
  const nav = $("views");
  const names = state.views.map((v) => v.name);
  if (!names.includes(viewName)) viewName = names[0];
  if (nav.dataset.names !== names.join(",")) {
    nav.dataset.names = names.join(",");
    nav.innerHTML = names.length < 2 ? "" : names.map((n) => `<button type="button" data-view="${esc(n)}">${esc(n)}</button>`).join("");
  }
  for (const b of nav.querySelectorAll("button")) {
    b.setAttribute("aria-pressed", String(b.dataset.view === viewName));
  }
}

$("views").addEventListener("click", (e) => {
  const b = e.target.closest("button");
  if (!b) return;
  viewName = b.dataset.view;
  window.history.replaceState(null, "", "#" + encodeURIComponent(viewName));
  render();
});

// niceStep rounds a tick step up to 1, 2 or 5 times a power of ten.
function niceStep(raw) {
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) || raw;
}

// chart draws one resource's history: paid and opportunistic requests stacked
// as areas, allocatable and the headroom line as lines.
function chart(svg, points, resource) {
  // Drawn at the element's own pixel size, so text is not stretched.
  const W = Math.round(svg.clientWidth) || 600, H = Math.round(svg.clientHeight) || 200, L = 40, B = 18, T = 6;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const rows = points.map((p) => ({ t: Date.parse(p.time), r: (p.resources || []).find((x) => x.name === resource) })).filter((p) => p.r);
  if (rows.length < 2) {
    svg.innerHTML = `<text x="${W / 2}" y="${H / 2}" text-anchor="middle">waiting for data…</text>`;
    return;
  }
  const t0 = rows[0].t, t1 = rows[rows.length - 1].t;
  const peak = Math.max(...rows.map((p) => Math.max(p.r.allocatable, p.r.paid + p.r.opportunistic))) * 1.05 || 1;
  const step = niceStep(peak / 4);
  const top = Math.ceil(peak / step) * step;
  const x = (t) => L + ((t - t0) / Math.max(t1 - t0, 1)) * (W - L - 4);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const line = (f) => rows.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(f(p.r)).toFixed(1)}`).join("");
  const area = (lo, hi) => line(hi) + rows.slice().reverse().map((p) => `L${x(p.t).toFixed(1)},${y(lo(p.r)).toFixed(1)}`).join("") + "Z";
  let out = "";
  for (let v = 0; v <= top + step / 2; v += step) {
    out += `<line x1="${L}" x2="${W}" y1="${y(v)}" y2="${y(v)}" stroke="#e6e9ef"/>`;
    out += `<text x="${L - 4}" y="${y(v) + 4}" text-anchor="end">${fmt(v, step < 1 ? 1 : 0)}</text>`;
  }
  out += `<text x="${L}" y="${H - 3}">${clock(t0)}</text><text x="${W - 4}" y="${H - 3}" text-anchor="end">${clock(t1)}</text>`;
  out += `<path d="${area(() => 0, (r) => r.paid)}" fill="var(--paid)" fill-opacity=".55" class="series paid"/>`;
  out += `<path d="${area((r) => r.paid, (r) => r.paid + r.opportunistic)}" fill="var(--opp)" fill-opacity=".55" class="series opp"/>`;
  out += `<path d="${line((r) => r.allocatable)}" fill="none" stroke="var(--alloc)" stroke-width="2" class="series alloc"/>`;
  // A live cluster does not know the headroom line (it is each scaler's): 0 means unknown.
  if (rows.some((p) => p.r.line > 0)) {
    out += `<path d="${line((r) => r.line)}" fill="none" stroke="var(--line)" stroke-width="2" stroke-dasharray="6 4" class="series line"/>`;
  }
  svg.innerHTML = out;
}

function drawCharts() {
  const series = capacityHistory && (capacityHistory.views.find((v) => v.name === viewName) || capacityHistory.views[0]);
  const points = series ? series.points : [];
  chart($("chart-cpu"), points, "cpu");
  chart($("chart-memory"), points, "memory");
  const v = currentView();
  for (const r of v ? v.resources : []) {
    const el = $(`${r.name}-now`);
    if (el) el.textContent = `now ${fmt(r.paid)} paid + ${fmt(r.opportunistic)} opportunistic of ${fmt(r.allocatable)} ${r.unit}, line ${fmt(r.line)}`;
  }
}

function drawWorkloads(v) {
  if (!v.workloads || v.workloads.length === 0) {
    $("workloads").innerHTML = `<p class="muted">none</p>`;
    return;
  }
  $("workloads").innerHTML = `<table><thead><tr><th>workload</th><th class="num">current</th><th class="num">desired</th><th class="num hide-narrow">min–max</th><th class="num hide-narrow">pool nodes</th><th class="num">stranded</th><th>limit</th></tr></thead><tbody>` +
    v.workloads.map((w) => `<tr><td>${esc(w.name)}</td><td class="num">${w.current}</td><td class="num">${w.desired}</td><td class="num hide-narrow">${w.max ? `${w.min}–${w.max}` : "–"}</td><td class="num hide-narrow">${w.poolNodes || "–"}</td><td class="num${w.stranded > 0 ? " bad" : ""}">${w.stranded || 0}</td><td><span class="tag">${esc(w.limitedBy || "–")}</span></td></tr>` +
      slotsRow(w) +
      (w.reason ? `<tr><td colspan="7" class="reason">${esc(w.reason)}</td></tr>` : "")).join("") + `</tbody></table>`;
}

// slotsRow shows a workload's headroom slots as badges, "web 4/4": how many
// paid pods of each shape fit now (red when not all); the nodes in a tooltip.
function slotsRow(w) {
  if (!w.slots || w.slots.length === 0) return "";
  const badge = (s) => {
    const where = (s.nodes || []).map((n) => `${n.node}: ${n.slots}`).join(", ");
    return `<span class="tag slot ${s.fit < s.wanted ? "bad" : "ok"}" title="${esc(where || "fits nowhere")}">${esc(s.name)} ${s.fit}/${s.wanted}</span>`;
  };
  return `<tr><td colspan="7" class="slots"><span class="muted">slots kept for paid pods:</span> ${w.slots.map(badge).join(" ")}</td></tr>`;
}

function drawPending(v) {
  const p = v.pendingPaid || {};
  const cls = p.pods > 0 ? "bad" : "ok";
  $("pending").innerHTML = `<div class="big ${cls}">${p.pods || 0} <span class="muted">pods</span></div>` +
    (p.pods > 0
      ? `<div>waiting for <b>${fmt(p.oldestWaitSeconds, 0)} s</b> so far (the time to yield, still running)</div>`
      : `<div>none waiting: paid pods get their room</div>`) +
    `<div class="muted">longest wait so far (time to yield): ${fmt(p.maxWaitSeconds, 0)} s</div>` +
    (p.gated > 0 ? `<div class="muted">${p.gated} gated (scheduling gates: waiting for admission, not for room)</div>` : "");
}

function drawNodes(v) {
  const nodes = v.nodes || [];
  if (nodes.length === 0) {
    $("nodes").innerHTML = `<p class="muted">no nodes</p>`;
    return;
  }
  $("nodes").innerHTML = nodes.map((n) => {
    const c = n.cpu, a = c.allocatable || 1;
    const pct = (x) => `${Math.max(0, (x / a) * 100).toFixed(1)}%`;
    return `<div class="node" title="${esc(n.name)}: ${fmt(c.paid)} paid, ${fmt(c.opportunistic)} opportunistic, ${fmt(c.free)} free of ${fmt(c.allocatable)} cores; ${n.pods ? n.pods + " pods; " : ""}${esc(n.state)}">` +
      `<span class="name">${esc(n.name)}</span><span class="bar"><span class="paid" style="width:${pct(c.paid)}"></span><span class="opp" style="width:${pct(c.opportunistic)}"></span></span>` +
      `<span class="num">${fmt(c.free)} free</span></div>`;
  }).join("");
}

function drawDecisions(v) {
  const ds = v.decisions || [];
  $("decisions").innerHTML = ds.length === 0 ? `<li class="muted">no decisions yet</li>` :
    ds.map((d) => `<li><b>${clock(d.time)}</b> ${esc(d.workload)} ${d.from} → ${d.to} <span class="tag">${esc(d.limitedBy || "–")}</span><div class="reason">${esc(d.reason)}</div></li>`).join("");
}

function render() {
  if (!state) return;
  $("origin").textContent = state.origin || "";
  $("clock").textContent = clock(state.time) + (state.finished ? " · scenario finished" : "");
  drawViews();
  const v = currentView();
  if (!v) return;
  drawCharts();
  drawWorkloads(v);
  drawPending(v);
  drawNodes(v);
  drawDecisions(v);
}

function onState(s) {
  state = s;
  $("status").textContent = "live · updated " + new Date().toLocaleTimeString();
  render();
}

async function loadHistory() {
  try {
    const r = await fetch("api/v1/history");
    if (r.ok) {
      capacityHistory = await r.json();
      drawCharts();
    }
  } catch (e) {
    $("status").textContent = "history unavailable: " + e;
  }
}

async function poll() {
  try {
    const r = await fetch("api/v1/state");
    if (r.ok) onState(await r.json());
  } catch (e) {
    $("status").textContent = "disconnected: " + e;
  }
}

function start() {
  if (window.EventSource) {
    const es = new EventSource("api/v1/stream");
    es.addEventListener("state", (e) => onState(JSON.parse(e.data)));
    es.onerror = () => { $("status").textContent = "reconnecting…"; };
  } else {
    setInterval(poll, 2000);
    poll();
  }
  loadHistory();
  setInterval(loadHistory, 3000);
}

window.addEventListener("resize", drawCharts);

start();
