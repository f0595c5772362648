// opportunist dashboard: reads the JSON API (docs/dashboard.md) and draws it.
// No libraries; the charts are SVG strings. Every number it shows comes from
// the API as it is: the summaries are the simulator's, not recomputed here.
"use strict";

let state = null;
let capacityHistory = null;

const $ = (id) => document.getElementById(id);

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function fmt(v, digits = 1) {
  return Number(v ?? 0).toFixed(digits);
}

// num prints a number with at most one decimal and no trailing ".0".
function num(v) {
  const r = Math.round(Number(v ?? 0) * 10) / 10;
  return String(r);
}

function clock(t) {
  return new Date(t).toISOString().slice(11, 19);
}

// elapsed prints seconds as m:ss, or h:mm:ss past an hour.
function elapsed(s) {
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

function resource(v, name) {
  return (v.resources || []).find((r) => r.name === name);
}

// keptFree is the headroom of a resource: allocatable minus the fill line
// (0 when the line is unknown, as on a live cluster).
function keptFree(r) {
  return r && r.line > 0 ? r.allocatable - r.line : 0;
}

// --- the explanation at the top ---------------------------------------------

function drawIntro() {
  const sc = state.scenario;
  const names = state.views.map((v) => v.name);
  if (sc) {
    $("intro-title").textContent = `What you are watching: the scenario ${sc.name}`;
    $("scenario-text").innerHTML = `${esc(sc.description)} ${esc(sc.setting)}`;
    $("numbers-note").innerHTML = `Below, each strategy plays the same paid load on its own copy of the cluster, side by side, on the same time axis. ` +
      `The numbers under each name are what <code>opportunist simulate --scenario ${esc(sc.name)}</code> reports for the whole ` +
      `${esc(durationWords(sc.durationSeconds))}; the charts fill in as the scenario plays.`;
  } else {
    $("intro-title").textContent = "What you are watching: this cluster, live";
    $("scenario-text").textContent = "The pods' requests on this cluster's Ready nodes: paid work (every pod that is not opportunistic) and the opportunistic workloads that opportunist scales into the room left over.";
    $("numbers-note").textContent = "";
  }
  $("compare-title").textContent = names.length > 1 ? `What each strategy does with the room: ${names.join(" and ")} on the same paid load` : "Requests over time";
}

function durationWords(s) {
  if (s >= 2 * 86400 && s % 86400 === 0) return `${s / 86400} days`;
  if (s >= 2 * 3600 && s % 3600 === 0) return `${s / 3600} hours`;
  if (s % 60 === 0) return `${s / 60} minutes`;
  return `${s} seconds`;
}

// --- legend -----------------------------------------------------------------

function drawLegend() {
  const cpu = state.views.length ? resource(state.views[0], "cpu") : null;
  const memory = state.views.length ? resource(state.views[0], "memory") : null;
  const kept = [cpu, memory].filter((r) => keptFree(r) > 0 && (r === cpu || memoryMatters(capacityHistory?.views || [])))
    .map((r) => `${num(keptFree(r))} ${r.unit}`);
  const items = [
    ["paid", "paid pods' requests"],
    ["opportunistic", "opportunistic pods' requests (the harvest)"],
    ["allocatable", "allocatable: all the room of the Ready nodes"],
  ];
  if (kept.length > 0) items.push(["fill-line", `fill line: keep ${kept.join(" and ")} free for paid work`]);
  items.push(["waiting", "paid pods waiting for room"]);
  const html = items.map(([cls, text]) => `<span class="item ${cls}"><i class="sw ${cls}"></i>${esc(text)}</span>`).join("");
  if ($("legend").innerHTML !== html) $("legend").innerHTML = html;
}

// --- the side-by-side panels ------------------------------------------------

// ensureLayout builds one comparison panel and one details column per view,
// once: later renders only fill them.
function ensureLayout() {
  const key = state.views.map((v) => v.name).join(",");
  if ($("compare").dataset.key === key) return;
  $("compare").dataset.key = key;
  $("compare").innerHTML = state.views.map((v) =>
    `<div class="panel" data-view="${esc(v.name)}">` +
    `<h3>${esc(v.name)}</h3>` +
    `<p class="what">${esc(v.description || "")}</p>` +
    `<dl class="summary"></dl>` +
    `<svg class="chart cpu" role="img" aria-label="${esc(v.name)}: CPU requests over time, in cores"></svg>` +
    `<p class="now cpu-now"></p>` +
    `<svg class="chart memory" role="img" aria-label="${esc(v.name)}: memory requests over time, in GiB"></svg>` +
    `<p class="now memory-now"></p>` +
    `</div>`).join("");
  $("details").innerHTML = state.views.map((v) =>
    `<div class="column" data-view="${esc(v.name)}">` +
    (state.views.length > 1 ? `<h2>${esc(v.name)}: now</h2>` : "") +
    `<section class="card table"><h2>Opportunistic workloads</h2><div class="workloads"></div></section>` +
    `<section class="card"><h2>Paid pods waiting for room</h2><div class="pending"></div></section>` +
    `<section class="card"><h2>Free room per node <span class="muted">(CPU, cores)</span></h2><div class="nodes"></div></section>` +
    `<section class="card"><h2>Scale decisions</h2><ol class="decisions"></ol></section>` +
    `</div>`).join("");
}

const panel = (name) => $("compare").querySelector(`.panel[data-view="${CSS.escape(name)}"]`);
const column = (name) => $("details").querySelector(`.column[data-view="${CSS.escape(name)}"]`);

// summaryItems are the simulator's numbers for one view, each with whether
// more is better (to mark the better and the worse strategy).
function summaryItems(s) {
  const sc = state.scenario || {};
  const cpu = state.views.length ? resource(state.views[0], "cpu") : null;
  const free = keptFree(cpu);
  return [
    { key: "harvest", label: "harvest", value: s.harvestCoreHours, higherIsBetter: true,
      text: `${fmt(s.harvestCoreHours)} core-h`, note: `${fmt(100 * s.harvestOfInstantLaw, 1)}% of the instant law` },
    { key: "overshoot", label: "overshoot", value: s.overshootCoreHours, higherIsBetter: false,
      text: `${fmt(s.overshootCoreHours, 2)} core-h`, note: free > 0 ? `into the ${num(free)} cores kept free` : "into the room kept free" },
    { key: "wait", label: "longest paid wait", value: s.longestPaidWaitSeconds, higherIsBetter: false,
      text: `${fmt(s.longestPaidWaitSeconds, 0)} s`, note: `${fmt(s.paidPendingPodSeconds, 0)} pod-s waited in all` },
    { key: "direction", label: "direction changes", value: s.directionChanges, higherIsBetter: false,
      text: `${s.directionChanges}`, note: sc.loadChanges !== undefined ? `the paid load changed ${sc.loadChanges} times` : `${s.scaleEvents} scale writes` },
  ];
}

function drawSummaries() {
  const items = state.views.map((v) => (v.summary ? summaryItems(v.summary) : null));
  state.views.forEach((v, i) => {
    const dl = panel(v.name).querySelector(".summary");
    dl.style.display = items[i] ? "" : "none";
    if (!items[i]) return;
    dl.innerHTML = items[i].map((it) => {
      const others = items.filter((x, j) => x && j !== i).map((x) => x.find((y) => y.key === it.key).value);
      let cls = "";
      if (others.length && others.every((o) => o !== it.value)) {
        const best = it.higherIsBetter ? Math.max(it.value, ...others) : Math.min(it.value, ...others);
        cls = it.value === best ? "better" : "worse";
      }
      return `<div class="${cls}" data-key="${it.key}"><dt>${esc(it.label)}</dt><dd>${esc(it.text)}<small>${esc(it.note)}</small></dd></div>`;
    }).join("") + unschedulableNote(state.views[i].summary);
  });
}

// unschedulableNote says, under the numbers, when a strategy created
// opportunistic replicas that fit on no node (as the simulate plots do).
function unschedulableNote(s) {
  if (!(s.unschedulablePodHours > 0)) return "";
  return `<div class="note worse" data-key="unschedulable"><dt>unschedulable replicas</dt><dd>${fmt(s.unschedulablePodHours, 2)} pod-h <small>opportunistic replicas created that fit on no node: they harvest nothing</small></dd></div>`;
}

// --- charts -----------------------------------------------------------------

// niceStep rounds a tick step up to 1, 2 or 5 times a power of ten.
function niceStep(raw) {
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) || raw;
}

// timeAxis says where the x axis starts and ends and how to tick it: the
// whole scenario in minutes (or hours, days) since its start in the demo,
// the clock on a live cluster.
function timeAxis(series) {
  const first = series.length ? Date.parse(series[0].points[0]?.time) : NaN;
  const sc = state.scenario;
  if (sc && !isNaN(first)) {
    const d = sc.durationSeconds;
    const [unit, word, steps] = d <= 2 * 3600 ? [60, "minutes", [1, 2, 5, 10, 15, 20, 30, 60]]
      : d <= 3 * 86400 ? [3600, "hours", [1, 2, 3, 6, 12, 24]] : [86400, "days", [1, 2, 7, 14, 28]];
    const span = d / unit;
    const step = steps.find((s) => span / s <= 8) || steps[steps.length - 1];
    const ticks = [];
    for (let v = 0; v <= span + 1e-9; v += step) ticks.push({ t: first + v * unit * 1000, label: String(v) });
    return { t0: first, t1: first + d * 1000, ticks, title: `${word} since the start` };
  }
  let t0 = Infinity, t1 = -Infinity;
  for (const s of series) for (const p of s.points) { const t = Date.parse(p.time); t0 = Math.min(t0, t); t1 = Math.max(t1, t); }
  if (!isFinite(t0)) return { t0: 0, t1: 1, ticks: [], title: "time (UTC)" };
  const spanS = Math.max((t1 - t0) / 1000, 1);
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400].find((s) => spanS / s <= 6) || 86400;
  const ticks = [];
  for (let t = Math.ceil(t0 / 1000 / step) * step * 1000; t <= t1; t += step * 1000) ticks.push({ t, label: clock(t).slice(0, step < 60 ? 8 : 5) });
  return { t0, t1, ticks, title: "time (UTC)" };
}

// chart draws one resource's history: paid and opportunistic requests stacked
// as areas, allocatable and the fill line as lines, a strip along the bottom
// where paid pods waited. axis is timeAxis's; top is the y axis' top, shared
// by the panels so that they compare at a glance.
function chart(svg, points, name, unit, axis, top) {
  // Drawn at the element's own pixel size, so text is not stretched.
  const W = Math.round(svg.clientWidth) || 600, H = Math.round(svg.clientHeight) || 200, L = 42, R = 8, B = 34, T = 18;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const rows = points.map((p) => ({ t: Date.parse(p.time), r: (p.resources || []).find((x) => x.name === name), waiting: p.pendingPaidPods || 0 })).filter((p) => p.r);
  if (rows.length < 2) {
    svg.innerHTML = `<text x="${W / 2}" y="${H / 2}" text-anchor="middle">waiting for data…</text>`;
    return;
  }
  const step = niceStep(top / 4);
  const yTop = Math.ceil(top / step) * step;
  const x = (t) => L + ((t - axis.t0) / Math.max(axis.t1 - axis.t0, 1)) * (W - L - R);
  const y = (v) => T + (1 - v / yTop) * (H - T - B);
  const line = (f) => rows.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(f(p.r)).toFixed(1)}`).join("");
  const area = (lo, hi) => line(hi) + rows.slice().reverse().map((p) => `L${x(p.t).toFixed(1)},${y(lo(p.r)).toFixed(1)}`).join("") + "Z";
  let out = "";
  for (let v = 0; v <= yTop + step / 2; v += step) {
    out += `<line class="grid" x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}"/>`;
    out += `<text x="${L - 4}" y="${y(v) + 4}" text-anchor="end">${fmt(v, step < 1 ? 1 : 0)}</text>`;
  }
  out += `<text class="axis-unit" x="${L - 4}" y="${T - 6}" text-anchor="end">${esc(unit)}</text>`;
  for (const tk of axis.ticks) {
    const tx = x(tk.t);
    out += `<line class="grid" x1="${tx}" x2="${tx}" y1="${T}" y2="${H - B}"/>`;
    out += `<text class="tick-x" x="${tx}" y="${H - B + 14}" text-anchor="middle">${esc(tk.label)}</text>`;
  }
  out += `<text class="axis-unit axis-time" x="${W - R}" y="${H - 3}" text-anchor="end">${esc(axis.title)}</text>`;
  out += `<path d="${area(() => 0, (r) => r.paid)}" fill="var(--paid)" fill-opacity=".75" class="series paid"/>`;
  out += `<path d="${area((r) => r.paid, (r) => r.paid + r.opportunistic)}" fill="var(--opportunistic)" fill-opacity=".75" class="series opportunistic"/>`;
  out += `<path d="${line((r) => r.allocatable)}" fill="none" stroke="var(--allocatable)" stroke-width="2" class="series allocatable"/>`;
  // A live cluster does not know the fill line (it is each scaler's): 0 means unknown.
  if (rows.some((p) => p.r.line > 0)) {
    out += `<path d="${line((r) => r.line)}" fill="none" stroke="var(--fill-line)" stroke-width="2" stroke-dasharray="6 4" class="series fill-line"/>`;
  }
  // Paid pods waiting: a strip under the data, one segment per run of samples.
  for (let i = 0; i < rows.length; i++) {
    if (rows[i].waiting <= 0) continue;
    let j = i;
    while (j + 1 < rows.length && rows[j + 1].waiting > 0) j++;
    const x0 = x(rows[i].t), x1 = j + 1 < rows.length ? x(rows[j + 1].t) : x(rows[j].t) + 2;
    out += `<rect class="waiting" x="${x0.toFixed(1)}" y="${H - B + 1}" width="${Math.max(x1 - x0, 3).toFixed(1)}" height="5" fill="var(--bad)"><title>paid pods waiting for room</title></rect>`;
    i = j;
  }
  svg.innerHTML = out;
}

// memoryMatters: memory earns a chart when some strategy kept memory
// headroom, or requested at least half of the allocatable memory.
function memoryMatters(series) {
  for (const s of series) {
    for (const p of s.points) {
      const m = (p.resources || []).find((r) => r.name === "memory");
      if (m && m.allocatable > 0 && ((m.line > 0 && m.line < m.allocatable - 1e-9) || m.paid + m.opportunistic >= 0.5 * m.allocatable)) return true;
    }
  }
  return false;
}

// peak is the highest allocatable or requested amount of a resource over
// every series: one y scale for every panel.
function peak(series, name) {
  let top = 0;
  for (const s of series) {
    for (const p of s.points) {
      const r = (p.resources || []).find((x) => x.name === name);
      if (r) top = Math.max(top, r.allocatable, r.paid + r.opportunistic);
    }
  }
  return top * 1.05 || 1;
}

function drawCharts() {
  if (!state || !capacityHistory) return;
  const series = capacityHistory.views || [];
  const axis = timeAxis(series);
  const showMemory = memoryMatters(series);
  const topCPU = peak(series, "cpu"), topMemory = peak(series, "memory");
  for (const v of state.views) {
    const p = panel(v.name);
    if (!p) continue;
    const points = (series.find((s) => s.name === v.name) || { points: [] }).points;
    chart(p.querySelector(".chart.cpu"), points, "cpu", "cores", axis, topCPU);
    const mem = p.querySelector(".chart.memory");
    mem.style.display = showMemory ? "" : "none";
    p.querySelector(".memory-now").style.display = showMemory ? "" : "none";
    if (showMemory) chart(mem, points, "memory", "GiB", axis, topMemory);
  }
  let mostMemory = 0, allocMemory = 0;
  for (const s of series) {
    for (const pt of s.points) {
      const m = (pt.resources || []).find((r) => r.name === "memory");
      if (m) { mostMemory = Math.max(mostMemory, m.paid + m.opportunistic); allocMemory = Math.max(allocMemory, m.allocatable); }
    }
  }
  $("memory-note").textContent = showMemory || allocMemory === 0 ? "" :
    `Memory: at most ${num(mostMemory)} of ${num(allocMemory)} GiB requested (${fmt(100 * mostMemory / allocMemory, 0)}%)` +
      (state.scenario ? " and no memory headroom kept" : "") + ": it never limits anything here, so it has no chart.";
}

function drawNow(v) {
  const p = panel(v.name);
  for (const r of v.resources || []) {
    const el = p.querySelector(`.${r.name}-now`);
    if (!el) continue;
    const free = keptFree(r);
    el.textContent = `now: paid ${num(r.paid)} ${r.unit}, opportunistic ${num(r.opportunistic)} ${r.unit}, of ${num(r.allocatable)} ${r.unit} allocatable` +
      (free > 0 ? `; opportunistic work may fill up to ${num(r.line)} ${r.unit} (${num(free)} kept free)` : "") + ".";
  }
}

// --- forecasts (a live cluster's predicting scalers) ----------------------------

// drawForecasts draws, for each forecast of each view, the paid demand
// observed and the forecast with its band; the card is hidden without any
// (the demo has none).
function drawForecasts() {
  const all = [];
  for (const v of state.views) for (const f of v.forecasts || []) all.push(f);
  $("forecast-card").hidden = all.length === 0;
  if (all.length === 0) return;
  const legend = [
    ["paid", "paid demand observed (highest of each minute)"],
    ["forecast", "forecast"],
    ["band", "band: forecast + its backtest error quantile"],
    ["peak", "forecast peak within the lead time (band and margin included)"],
  ].map(([cls, text]) => `<span class="item ${cls}"><i class="sw ${cls}"></i>${esc(text)}</span>`).join("");
  if ($("forecast-legend").innerHTML !== legend) $("forecast-legend").innerHTML = legend;
  const key = all.map((f) => `${f.workload}/${f.resource}`).join(",");
  const box = $("forecasts");
  if (box.dataset.key !== key) {
    box.dataset.key = key;
    box.innerHTML = all.map((f) =>
      `<div class="forecast" data-key="${esc(f.workload + "/" + f.resource)}"><h3>${esc(f.workload)}: ${esc(f.resource)}</h3>` +
      `<svg class="chart forecast-chart" role="img" aria-label="${esc(f.workload)}: paid ${esc(f.resource)} demand observed and forecast, in ${esc(f.unit)}"></svg>` +
      `<p class="now"></p></div>`).join("");
  }
  all.forEach((f, i) => {
    const el = box.children[i];
    forecastChart(el.querySelector("svg"), f);
    el.querySelector(".now").textContent = forecastWords(f);
  });
}

// forecastWords says the forecast in a sentence under its chart.
function forecastWords(f) {
  if (!f.forecast || f.forecast.length === 0) return `reactive (${f.forecaster || "None"}): ${f.reason || "no forecast yet"}.`;
  const peak = f.peakTime ? `; peak ${num(f.peak)} ${f.unit} at ${clock(f.peakTime).slice(0, 5)}` : "";
  return `${f.forecaster}: the band reaches ${num(f.band)} ${f.unit} above the forecast${peak}.`;
}

// forecastChart: observed demand as a paid area, the forecast as a dashed
// line over its band (forecast to forecast + band), a "now" line where the
// forecast starts, the peak as a dot. Time on the clock (UTC).
function forecastChart(svg, f) {
  const W = Math.round(svg.clientWidth) || 600, H = Math.round(svg.clientHeight) || 160, L = 42, R = 8, B = 34, T = 18;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const stepMs = (f.stepSeconds || 60) * 1000;
  const obs = (f.observed || []).map((v, i) => ({ t: Date.parse(f.observedStart) + i * stepMs, v }));
  const fc = f.forecastStart ? (f.forecast || []).map((v, i) => ({ t: Date.parse(f.forecastStart) + i * stepMs, v })) : [];
  if (obs.length + fc.length < 2) {
    svg.innerHTML = `<text x="${W / 2}" y="${H / 2}" text-anchor="middle">waiting for data…</text>`;
    return;
  }
  const ts = obs.concat(fc).map((p) => p.t);
  const t0 = Math.min(...ts), t1 = Math.max(...ts) + stepMs;
  let top = f.peak || 0;
  for (const p of obs) if (p.v !== null) top = Math.max(top, p.v);
  for (const p of fc) top = Math.max(top, p.v + (f.band || 0));
  top = top * 1.05 || 1;
  const step = niceStep(top / 4);
  const yTop = Math.ceil(top / step) * step;
  const x = (t) => L + ((t - t0) / Math.max(t1 - t0, 1)) * (W - L - R);
  const y = (v) => T + (1 - v / yTop) * (H - T - B);
  let out = "";
  for (let v = 0; v <= yTop + step / 2; v += step) {
    out += `<line class="grid" x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}"/>`;
    out += `<text x="${L - 4}" y="${y(v) + 4}" text-anchor="end">${fmt(v, step < 1 ? 1 : 0)}</text>`;
  }
  out += `<text class="axis-unit" x="${L - 4}" y="${T - 6}" text-anchor="end">${esc(f.unit)}</text>`;
  const spanS = Math.max((t1 - t0) / 1000, 1);
  const tickStep = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].find((s) => spanS / s <= 6) || 86400;
  for (let t = Math.ceil(t0 / 1000 / tickStep) * tickStep * 1000; t <= t1; t += tickStep * 1000) {
    out += `<line class="grid" x1="${x(t)}" x2="${x(t)}" y1="${T}" y2="${H - B}"/>`;
    out += `<text class="tick-x" x="${x(t)}" y="${H - B + 14}" text-anchor="middle">${esc(clock(t).slice(0, 5))}</text>`;
  }
  out += `<text class="axis-unit axis-time" x="${W - R}" y="${H - 3}" text-anchor="end">time (UTC)</text>`;
  // Observed: one area per run of known samples (a gap is left blank, not drawn as zero).
  for (let i = 0; i < obs.length; i++) {
    if (obs[i].v === null) continue;
    let j = i;
    while (j + 1 < obs.length && obs[j + 1].v !== null) j++;
    const run = obs.slice(i, j + 1);
    const top = run.map((p, k) => `${k ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}L${x(p.t + stepMs).toFixed(1)},${y(p.v).toFixed(1)}`).join("");
    out += `<path d="${top}L${x(run[run.length - 1].t + stepMs).toFixed(1)},${y(0)}L${x(run[0].t).toFixed(1)},${y(0)}Z" fill="var(--paid)" fill-opacity=".6" class="series observed"/>`;
    i = j;
  }
  if (fc.length > 0) {
    const upper = fc.map((p, k) => `${k ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v + f.band).toFixed(1)}`).join("");
    const lower = fc.slice().reverse().map((p) => `L${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join("");
    out += `<path d="${upper}${lower}Z" fill="var(--paid)" fill-opacity=".18" class="series band"/>`;
    out += `<path d="${fc.map((p, k) => `${k ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join("")}" fill="none" stroke="var(--paid)" stroke-width="2" stroke-dasharray="5 3" class="series forecast"/>`;
    out += `<line class="now-line" x1="${x(fc[0].t)}" x2="${x(fc[0].t)}" y1="${T}" y2="${H - B}" stroke="var(--allocatable)" stroke-width="1"/>`;
    out += `<text x="${x(fc[0].t) + 3}" y="${T + 10}">now</text>`;
  }
  if (f.peakTime) {
    out += `<circle class="peak" cx="${x(Date.parse(f.peakTime)).toFixed(1)}" cy="${y(f.peak).toFixed(1)}" r="4" fill="var(--fill-line)"><title>peak ${num(f.peak)} ${esc(f.unit)} at ${clock(f.peakTime)}</title></circle>`;
  }
  svg.innerHTML = out;
}

// --- details, per view --------------------------------------------------------

function drawWorkloads(el, v) {
  if (!v.workloads || v.workloads.length === 0) {
    el.innerHTML = `<p class="muted">none</p>`;
    return;
  }
  el.innerHTML = `<table><thead><tr><th>workload</th><th class="num">replicas now</th><th class="num">desired</th><th class="num hide-narrow">min–max</th><th class="num hide-narrow">pool nodes</th><th class="num">stranded</th><th>limited by</th></tr></thead><tbody>` +
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

function drawPending(el, v) {
  const p = v.pendingPaid || {};
  const cls = p.pods > 0 ? "bad" : "ok";
  el.innerHTML = `<div class="big ${cls}">${p.pods || 0} <span class="muted">pods waiting now</span></div>` +
    (p.pods > 0
      ? `<div>the oldest has waited <b>${fmt(p.oldestWaitSeconds, 0)} s</b> so far, for opportunistic pods to make room</div>`
      : `<div>none waiting: paid pods get their room</div>`) +
    `<div class="muted">longest wait so far: ${fmt(p.maxWaitSeconds, 0)} s</div>` +
    (p.gated > 0 ? `<div class="muted">${p.gated} gated (scheduling gates: waiting for admission, not for room)</div>` : "");
}

function drawNodes(el, v) {
  const nodes = v.nodes || [];
  if (nodes.length === 0) {
    el.innerHTML = `<p class="muted">no nodes</p>`;
    return;
  }
  el.innerHTML = nodes.map((n) => {
    const c = n.cpu, a = c.allocatable || 1, unit = c.unit || "cores";
    const pct = (x) => `${Math.max(0, (x / a) * 100).toFixed(1)}%`;
    return `<div class="node" title="${esc(n.name)}: ${num(c.paid)} paid, ${num(c.opportunistic)} opportunistic, ${num(c.free)} free of ${num(c.allocatable)} ${unit}; ${n.pods ? n.pods + " pods; " : ""}${esc(n.state)}">` +
      `<span class="name">${esc(n.name)}</span><span class="bar"><span class="paid" style="width:${pct(c.paid)}"></span><span class="opportunistic" style="width:${pct(c.opportunistic)}"></span></span>` +
      `<span class="num">${num(c.free)} ${c.free === 1 && unit === "cores" ? "core" : unit} free</span>` + reclaimLine(n.reclaim) + `</div>`;
  }).join("");
}

// reclaimLine is a node's reclaimable CPU (issue 15) under its bar, the
// formula with its numbers as the tooltip; "" when nothing reclaims there.
function reclaimLine(r) {
  if (!r) return "";
  const why = r.usageFresh ? r.formula : `usage stale: ${r.message || "no fresh metrics"}`;
  return `<span class="reclaim muted" title="${esc(r.workload)}: ${esc(why)}">reclaimable <b>${num(r.reclaimableCores)}</b> cores, published ${num(r.publishedCores)}${r.usageFresh ? "" : " (usage stale)"}</span>`;
}

function drawDecisions(el, v) {
  const ds = v.decisions || [];
  el.innerHTML = ds.length === 0 ? `<li class="muted">no decisions yet</li>` :
    ds.map((d) => `<li><b>${when(d.time)}</b> ${esc(d.workload)} ${d.from} → ${d.to} <span class="tag">${esc(d.limitedBy || "–")}</span><div class="reason">${esc(d.reason)}</div></li>`).join("");
}

// when prints an instant as the time since the scenario started (demo) or
// the clock (live cluster).
function when(t) {
  const first = capacityHistory?.views?.[0]?.points?.[0]?.time;
  if (state.scenario && first) return elapsed((Date.parse(t) - Date.parse(first)) / 1000);
  return clock(t);
}

function render() {
  if (!state || !state.views || state.views.length === 0) return;
  $("origin").textContent = state.origin || "";
  const sc = state.scenario;
  const first = capacityHistory?.views?.[0]?.points?.[0]?.time;
  $("clock").textContent = (sc && first
    ? `${elapsed((Date.parse(state.time) - Date.parse(first)) / 1000)} of ${elapsed(sc.durationSeconds)} played`
    : clock(state.time)) + (state.finished ? " · scenario finished" : "");
  ensureLayout();
  drawIntro();
  drawLegend();
  drawSummaries();
  drawCharts();
  drawForecasts();
  for (const v of state.views) {
    drawNow(v);
    const c = column(v.name);
    drawWorkloads(c.querySelector(".workloads"), v);
    drawPending(c.querySelector(".pending"), v);
    drawNodes(c.querySelector(".nodes"), v);
    drawDecisions(c.querySelector(".decisions"), v);
  }
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

window.addEventListener("resize", () => { drawCharts(); if (state) drawForecasts(); });

start();
