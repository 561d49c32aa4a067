// venueguard live dashboard: polls /api/state, /api/series and the recent alerts every second
// and redraws.
// Charts are plain SVG built here; both charts share one time axis (the same x domain).
"use strict";

const POLL_MS = 1000;
const SVG_NS = "http://www.w3.org/2000/svg";
const MIN_SPAN_S = 60;
const vg = { updates: 0, failures: 0, state: null, series: null };
window.__vg = vg;

// ---------- formatting ----------
function isNum(v) { return typeof v === "number" && isFinite(v); }
function fmtAge(v) {
  if (!isNum(v)) return "-";
  if (v < 60) return v.toFixed(1) + " s";
  if (v < 3600) return Math.floor(v / 60) + " m " + Math.floor(v % 60) + " s";
  return Math.floor(v / 3600) + " h " + Math.floor((v % 3600) / 60) + " m";
}
function fmtNum(v, digits) {
  if (!isNum(v)) return "-";
  return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
function fmtPrice(v) {
  if (!isNum(v)) return "-";
  if (Math.abs(v) >= 1000) return fmtNum(v, 1);
  if (Math.abs(v) >= 1) return fmtNum(v, 2);
  return String(Number(v.toFixed(6)));  // small prices and spreads: no trailing zeros
}
function fmtTick(step) {
  const digits = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return (v) => fmtNum(v, digits);
}
const FORMATS = {
  text: (v) => (v === null || v === undefined ? "-" : String(v)),
  age: fmtAge,
  int: (v) => (isNum(v) ? Math.round(v).toLocaleString("en-US") : "-"),
  num: (v) => (isNum(v) ? fmtNum(v, Math.abs(v) >= 100 ? 0 : 2) : "-"),
  num1: (v) => fmtNum(v, 1),
  num2: (v) => fmtNum(v, 2),
  ms: (v) => (isNum(v) ? fmtNum(v * 1000, v < 0.01 ? 2 : 1) + " ms" : "-"),
  price: fmtPrice,
  pnl: (v) => (isNum(v) ? (v > 0 ? "+" : "") + fmtNum(v, 2) : "-"),
  kv: (v) => {
    if (!v || typeof v !== "object") return "-";
    const parts = Object.entries(v).filter(([, n]) => isNum(n) && n > 0)
      .sort((a, b) => b[1] - a[1]).map(([k, n]) => k + " " + n);
    return parts.length ? parts.join(", ") : "none";
  },
};

function lookup(obj, path) {
  return path.split(".").reduce((o, k) => (o && typeof o === "object" ? o[k] : undefined), obj);
}

// ---------- cards and badges ----------
const BADGE_CLASS = {
  HEALTHY: "good", DEGRADED: "warn", COOLDOWN: "warn", BLOCKED: "bad",
  NORMAL: "good", CAUTIOUS: "warn", SAFE: "bad", RECOVERING: "info",
};
function setBadge(id, label, value, cls) {
  const el = document.getElementById(id);
  el.textContent = label + " " + (value || "-");
  el.className = "badge " + (cls || BADGE_CLASS[value] || "");
}

function renderState(state) {
  for (const el of document.querySelectorAll("[data-field]")) {
    const value = lookup(state, el.dataset.field);
    el.textContent = (FORMATS[el.dataset.fmt] || FORMATS.text)(value);
    el.classList.remove("v-warn", "v-bad", "v-pos", "v-neg");
    if (isNum(value) && el.dataset.bad !== undefined && value >= Number(el.dataset.bad)) {
      el.classList.add("v-bad");
    } else if (isNum(value) && el.dataset.warn !== undefined && value >= Number(el.dataset.warn)) {
      el.classList.add("v-warn");
    } else if (el.dataset.fmt === "pnl" && isNum(value) && value !== 0) {
      el.classList.add(value > 0 ? "v-pos" : "v-neg");
    }
  }
  let until = "";
  if (state.venue_state === "COOLDOWN" && state.venue_state_until) {
    until = " until " + String(state.venue_state_until).slice(11, 19);
  }
  setBadge("venue-state", "venue", (state.venue_state || "-") + until,
    BADGE_CLASS[state.venue_state]);
  setBadge("regime", "regime", state.regime);
  const fresh = lookup(state, "liveness.fresh");
  setBadge("freshness", "data", fresh === true ? "fresh" : fresh === false ? "STALE" : "-",
    fresh === true ? "good" : fresh === false ? "bad" : "");
}

// ---------- SVG charts ----------
function el(name, attrs, parent) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}
function text(parent, x, y, str, anchor, cls) {
  const t = el("text", { x, y, "text-anchor": anchor || "start" }, parent);
  if (cls) t.setAttribute("class", cls);
  t.textContent = str;
  return t;
}
function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}
function niceTicks(lo, hi, count) {
  if (!(hi > lo)) { hi = lo + 1; }
  const step = niceStep(hi - lo, count);
  const start = Math.floor(lo / step) * step;
  const ticks = [];
  for (let v = start; v <= hi + step * 0.5; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}
const TIME_STEPS_S = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
function timeTicks(x0, x1, count) {
  const step = TIME_STEPS_S.find((s) => (x1 - x0) / s <= count) || 3600;
  const ticks = [];
  for (let t = Math.ceil(x0 / step) * step; t <= x1; t += step) ticks.push(t);
  return ticks;
}
function hhmmss(t) { return new Date(t * 1000).toISOString().slice(11, 19); }

function frame(svg) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const w = Math.max(320, svg.clientWidth || 900);
  const h = Math.max(160, svg.clientHeight || 240);
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  return { w, h, left: 62, right: w - 66, top: 12, bottom: h - 26 };
}
function xAxis(svg, f, x0, x1) {
  const sx = (t) => f.left + ((t - x0) / (x1 - x0)) * (f.right - f.left);
  for (const t of timeTicks(x0, x1, 7)) {
    el("line", { x1: sx(t), x2: sx(t), y1: f.top, y2: f.bottom, class: "grid" }, svg);
    text(svg, sx(t), f.bottom + 16, hhmmss(t), "middle");
  }
  el("line", { x1: f.left, x2: f.right, y1: f.bottom, y2: f.bottom, class: "axis" }, svg);
  return sx;
}
function yAxis(svg, f, lo, hi, side, fmt, title) {
  const ticks = niceTicks(lo, hi, 4);
  fmt = fmt || fmtTick(ticks.length > 1 ? ticks[1] - ticks[0] : 1);
  const y0 = ticks[0], y1 = ticks[ticks.length - 1];
  const sy = (v) => f.bottom - ((v - y0) / (y1 - y0 || 1)) * (f.bottom - f.top);
  const x = side === "left" ? f.left : f.right;
  for (const v of ticks) {
    if (side === "left") el("line", { x1: f.left, x2: f.right, y1: sy(v), y2: sy(v), class: "grid" }, svg);
    text(svg, side === "left" ? x - 6 : x + 6, sy(v) + 4, fmt(v), side === "left" ? "end" : "start");
  }
  el("line", { x1: x, x2: x, y1: f.top, y2: f.bottom, class: "axis" }, svg);
  if (title) {
    const tx = side === "left" ? 12 : f.w - 10;
    const t = text(svg, tx, (f.top + f.bottom) / 2, title, "middle", "axis-title");
    t.setAttribute("transform", "rotate(-90 " + tx + " " + (f.top + f.bottom) / 2 + ")");
  }
  return sy;
}
function linePath(svg, points, sx, sy, cls) {
  const pts = points.filter((p) => isNum(p[1]));
  if (!pts.length) return null;
  let d = "";
  pts.forEach((p, i) => { d += (i ? "L" : "M") + sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1); });
  const path = el("path", { d, class: "line " + cls, "data-points": pts.length }, svg);
  return path;
}
function emptyNote(svg, f, message) {
  text(svg, (f.left + f.right) / 2, (f.top + f.bottom) / 2, message, "middle", "empty");
}

// One x domain for both charts: from the oldest point inside the window to now.
function timeDomain(series) {
  const now = series.now;
  let oldest = now;
  for (const key of ["http_503_per_min", "spread", "latency", "reconnects_per_min"]) {
    const pts = series[key] || [];
    if (pts.length) oldest = Math.min(oldest, pts[0][0]);
  }
  const start = Math.max(now - series.window_s, Math.min(oldest, now - MIN_SPAN_S));
  return [start, now];
}

function drawOutage(svg, series, x0, x1) {
  const f = frame(svg);
  // 10-s bins drawn as a per-minute rate: 503s that began at :45 start their bar at :40, and
  // the current bin ends at now (a whole-minute bar would claim the minute's first 45 s too)
  const fine = series.http_503_per_10s;
  const bin = fine ? 10 : 60;
  const bars = (fine || series.http_503_per_min || []).filter((b) => b[0] + bin > x0)
    .map(([start, count]) => [start, count * 60 / bin]);
  const spread = (series.spread || []).filter((p) => p[0] >= x0);
  const sx = xAxis(svg, f, x0, x1);
  const maxCount = Math.max(1, ...bars.map((b) => b[1]));
  const syL = yAxis(svg, f, 0, maxCount, "left", null, "503s / min");
  const vals = spread.map((p) => p[1]).filter(isNum);
  let lo = vals.length ? Math.min(...vals) : 0, hi = vals.length ? Math.max(...vals) : 1;
  if (hi - lo < 1e-9) { lo = Math.max(0, lo - 0.5 * (Math.abs(lo) || 1)); hi = hi + 0.5 * (Math.abs(hi) || 1); }
  const syR = yAxis(svg, f, Math.max(0, lo), hi, "right", null, "spread");
  for (const [start, count] of bars) {
    if (!(count > 0)) continue;
    const xa = Math.max(f.left, sx(start)), xb = Math.min(f.right, sx(start + bin));
    if (xb <= xa) continue;
    el("rect", { x: xa + 1, y: syL(count), width: Math.max(1, xb - xa - 2),
      height: f.bottom - syL(count), class: "bar-503", "data-count": count }, svg);
  }
  linePath(svg, spread, sx, syR, "line-spread");
  if (!bars.length && !spread.length) emptyNote(svg, f, "waiting for data");
  svg.setAttribute("data-bars", String(svg.querySelectorAll("rect.bar-503").length));
}

function drawLatency(svg, series, x0, x1) {
  const f = frame(svg);
  const lat = (series.latency || []).filter((p) => p[0] >= x0);
  const sx = xAxis(svg, f, x0, x1);
  const all = [];
  for (const p of lat) for (const v of p.slice(1)) if (isNum(v)) all.push(v * 1000);
  const sy = yAxis(svg, f, 0, all.length ? Math.max(...all) : 1, "left", null, "latency (ms)");
  const cols = [["line-p50", 1], ["line-p95", 2], ["line-p99", 3]];
  for (const [cls, i] of cols) linePath(svg, lat.map((p) => [p[0], isNum(p[i]) ? p[i] * 1000 : null]), sx, sy, cls);
  for (const [start, count] of series.reconnects_per_min || []) {
    if (!(count > 0) || start + 60 <= x0) continue;
    const x = sx(Math.max(start, x0));
    el("line", { x1: x, x2: x, y1: f.top, y2: f.bottom, class: "reconnect" }, svg);
    text(svg, x + 3, f.top + 10, count + "x", "start", "reconnect-label");
  }
  if (!lat.length) emptyNote(svg, f, "no REST responses yet");
}

function renderSeries(series) {
  const [x0, x1] = timeDomain(series);
  drawOutage(document.getElementById("chart-outage"), series, x0, x1);
  drawLatency(document.getElementById("chart-latency"), series, x0, x1);
}

// ---------- alerts ----------
function renderAlerts(events) {
  const list = document.getElementById("alerts");
  const latest = events.slice(-8).reverse();
  list.replaceChildren();
  if (!latest.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "none";
    list.appendChild(li);
    return;
  }
  for (const e of latest) {
    const li = document.createElement("li");
    const when = document.createElement("time");
    when.textContent = String(e.ts || "").slice(11, 19);
    const tier = document.createElement("span");
    tier.className = "tier tier-" + String(e.tier || "info");
    tier.textContent = String(e.tier || "");
    const msg = document.createElement("span");
    msg.textContent = String(e.message || "");
    li.append(when, tier, msg);
    list.appendChild(li);
  }
}

// ---------- freshness per channel ----------
// A learned threshold shows its suspicion (phi); a static one (warming up, after a reconnect,
// or learning off) shows "static". The age turns amber past half the threshold.
function renderFreshness(rows) {
  const body = document.querySelector("#freshness-table tbody");
  body.replaceChildren();
  if (!Array.isArray(rows) || !rows.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.className = "muted"; td.colSpan = 4; td.textContent = "no channel yet";
    tr.appendChild(td); body.appendChild(tr);
    return;
  }
  for (const row of rows) {
    const tr = document.createElement("tr");
    const age = row.data_age_s, limit = row.threshold_s;
    const cells = [String(row.channel), fmtAge(age), fmtAge(limit),
      isNum(row.suspicion) ? fmtNum(row.suspicion, 1) : "static"];
    cells.forEach((value, i) => {
      const td = document.createElement("td");
      td.textContent = value;
      if (i === 1 && isNum(age) && isNum(limit)) {
        td.className = age >= limit ? "v-bad" : age >= limit / 2 ? "v-warn" : "";
      }
      if (i === 3 && !isNum(row.suspicion)) td.className = "muted";
      tr.appendChild(td);
    });
    body.appendChild(tr);
  }
}

// ---------- polling ----------
async function fetchJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(url + " -> HTTP " + response.status);
  return response.json();
}

async function tick() {
  const link = document.getElementById("link");
  try {
    const [state, series, alerts] = await Promise.all([
      fetchJson("/api/state"), fetchJson("/api/series"), fetchJson("/api/events?event=alert&n=8"),
    ]);
    vg.state = state; vg.series = series;
    renderState(state);
    renderSeries(series);
    renderAlerts(alerts.events || []);
    renderFreshness(state.freshness);
    vg.updates += 1;
    link.className = "dot ok";
    document.getElementById("updated").textContent = "updated " + hhmmss(Date.now() / 1000) + " UTC";
  } catch (err) {
    vg.failures += 1;
    link.className = "dot down";
    document.getElementById("updated").textContent = "no answer from the monitor (" + err.message + ")";
  } finally {
    setTimeout(tick, POLL_MS);
  }
}

window.addEventListener("resize", () => { if (vg.series) renderSeries(vg.series); });
tick();
